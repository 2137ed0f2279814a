// Runs `niks3-gitlab <command>` from the bundle as a GitLab job would (real Nix, the niks3 double
// on PATH, a fake niks3 server), and collects what the job leaves behind: its log, the double's
// calls, and every file in the report directory.
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { nixEnv } from "./nix.ts";
import { runHelper, type HelperRun } from "./run-helper.ts";

export interface JobRun {
  run: HelperRun;
  flakeDir: string;
  reportDir: string;
  doubleCalls: { argv: string[] }[];
  /** report file name → its text (files under 5 MB, sub-directories included). */
  reports: Record<string, string>;
  /** summary.json, parsed (undefined when the job wrote none). */
  summary: Record<string, unknown> | undefined;
}

export interface JobSetup {
  command?: string[];
  /** NIX_CONF_DIR from testNixConfDir(). */
  confDir: string;
  /** Directory holding the niks3 shims (writeNiks3Bin). */
  binDir: string;
  flakeDir: string;
  env: Record<string, string>;
  /** Replace PATH entirely (e.g. to hide Nix). */
  path?: string;
  /** Run this bundle instead of the repository's dist/. */
  bundle?: string;
}

function walk(dir: string, prefix = ""): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? walk(join(dir, entry.name), `${prefix}${entry.name}/`) : [`${prefix}${entry.name}`],
  );
}

export async function runJob(setup: JobSetup): Promise<JobRun> {
  const doubleLog = join(mkdtempSync(join(tmpdir(), "niks3-double-log-")), "calls.jsonl");
  const reportDir = join(setup.flakeDir, ".niks3-gitlab");
  const env = {
    ...nixEnv(setup.confDir),
    PATH: setup.path ?? `${setup.binDir}:${process.env.PATH}`,
    HOME: setup.flakeDir,
    CI_PROJECT_DIR: setup.flakeDir,
    NIKS3_DOUBLE_LOG: doubleLog,
    ...setup.env,
  };
  const run = await runHelper(setup.command ?? ["ci"], { env, cwd: setup.flakeDir, ...(setup.bundle ? { bundle: setup.bundle } : {}) });
  const doubleCalls = existsSync(doubleLog)
    ? readFileSync(doubleLog, "utf8").split("\n").filter(Boolean).map((line) => JSON.parse(line) as { argv: string[] })
    : [];
  const reports: Record<string, string> = {};
  if (existsSync(reportDir)) {
    for (const file of walk(reportDir)) {
      const path = join(reportDir, file);
      if (statSync(path).size < 5_000_000) reports[file] = readFileSync(path, "utf8");
    }
  }
  const summaryText = reports["summary.json"];
  const summary = summaryText === undefined ? undefined : (JSON.parse(summaryText) as Record<string, unknown>);
  return { run, flakeDir: setup.flakeDir, reportDir, doubleCalls, reports, summary };
}

/** secretLeaks names where a secret shows up: the job log, the argv niks3 got, or a report file (empty: nowhere). */
export function secretLeaks(job: JobRun, secret: string): string[] {
  const leaks: string[] = [];
  if (job.run.all.includes(secret)) leaks.push("the job log");
  if (JSON.stringify(job.doubleCalls).includes(secret)) leaks.push("niks3's argv");
  for (const [file, text] of Object.entries(job.reports)) if (text.includes(secret)) leaks.push(file);
  return leaks;
}
