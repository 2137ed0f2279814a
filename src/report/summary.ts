// The job's results, derived from what happened: the summary JSON (its schema is documented in the
// README), the plan block and the closing table in the log, and the exit code.

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { InstallableResult } from "../nix/build.ts";
import type { PushOutcome } from "../niks3/push.ts";
import type { JobPlan } from "../policy.ts";
import { ExitCode, type ExitCodeValue } from "../errors.ts";
import type { Logger } from "../log.ts";

export interface InstallableSummary {
  installable: string;
  ok: boolean;
  outputs: Record<string, string>;
  pin: string | undefined;
  error: string | undefined;
}

export interface JobSummary {
  schema: 1;
  pipeline: JobPlan["kind"];
  server_url: string;
  substituter: string | undefined;
  push: {
    planned: boolean;
    attempted: boolean;
    ok: boolean;
    uploaded: number;
    cached: number;
    pinned: string[];
    error: string | undefined;
  };
  notices: string[];
  installables: InstallableSummary[];
  exit_code: ExitCodeValue;
}

/** exitCodeFor: a failed build wins; a failed push after a good build is its own code unless strict. */
export function exitCodeFor(results: readonly InstallableResult[], push: PushOutcome | undefined, strict: boolean): ExitCodeValue {
  if (results.some((result) => !result.ok)) return ExitCode.failure;
  if (push && !push.ok) return strict ? ExitCode.failure : ExitCode.pushFailed;
  return ExitCode.ok;
}

export function describePipeline(kind: JobPlan["kind"]): string {
  return {
    "default-branch": "default branch",
    "protected-branch": "protected branch",
    branch: "branch",
    tag: "tag",
    "merge-request": "merge request",
    "fork-merge-request": "merge request from a fork",
    local: "outside GitLab CI",
  }[kind];
}

/** printPlan: one short block saying what will be built, pushed and pinned, and why. */
export function printPlan(log: Logger, plan: JobPlan, serverUrl: string): void {
  log.info(`pipeline: ${describePipeline(plan.kind)}; cache: ${serverUrl}`);
  log.info(`build: ${plan.installables.map((i) => i.installable).join(" ")}`);
  log.info(`push: ${plan.push ? "yes, the closure of every installable built" : "no"}`);
  const pins = plan.installables.filter((i) => i.pin);
  log.info(`pin: ${pins.length ? pins.map((i) => `${i.installable} as ${i.pin}`).join(", ") : "no"}`);
  for (const notice of plan.notices) log.info(`notice: ${notice}`);
}

/** printResults: the closing table, failures first. */
export function printResults(log: Logger, summary: JobSummary): void {
  const rows = [...summary.installables].sort((a, b) => Number(a.ok) - Number(b.ok));
  for (const row of rows) {
    const paths = Object.values(row.outputs).join(" ") || "-";
    log.info(`${row.ok ? "built " : "FAILED"} ${row.installable}  ${paths}${row.pin ? `  pin ${row.pin}` : ""}`);
  }
  const push = summary.push;
  if (push.attempted) {
    log.info(
      push.ok
        ? `pushed: ${push.uploaded} paths uploaded, ${push.cached} already cached${push.pinned.length ? `, pinned ${push.pinned.join(", ")}` : ""}`
        : `push failed: ${push.error ?? "unknown error"}`,
    );
  } else {
    log.info("pushed: nothing");
  }
}

/** writeSummary writes summary.json; failing to write a report is a warning, never a job failure. */
export function writeSummary(dir: string, summary: JobSummary, log: Logger): string | undefined {
  try {
    mkdirSync(dir, { recursive: true });
    const path = join(dir, "summary.json");
    writeFileSync(path, `${JSON.stringify(summary, null, 2)}\n`);
    return path;
  } catch (error) {
    log.warn(`could not write the summary: ${(error as Error).message}`);
    return undefined;
  }
}
