// The job's results, derived from what happened: the summary (written as summary.json by
// ./write.ts, its schema documented in the README), the plan block and the closing table in the
// log, and the exit code.

import type { InstallableResult } from "../nix/build.ts";
import type { PushOutcome } from "../niks3/push.ts";
import type { JobPlan } from "../policy.ts";
import { ExitCode, type ExitCodeValue } from "../errors.ts";
import type { Logger } from "../log.ts";
import { formatBytes } from "../nix/closure-size.ts";
import { formatDuration } from "./sections.ts";

export interface InstallableSummary {
  installable: string;
  ok: boolean;
  outputs: Record<string, string>;
  /** Bytes of the closure of all its outputs (sum of NAR sizes); omitted when unknown. */
  closure_size?: number | undefined;
  pin: string | undefined;
  error: string | undefined;
}

/** One `niks3 push`: the store paths it was given, its pin, and niks3's own count of new and cached paths. */
export interface PushRunSummary {
  paths: string[];
  pin?: string | undefined;
  uploaded: number;
  cached: number;
  ok: boolean;
}

/** Where the job ran, from GitLab's predefined variables (each omitted outside GitLab). */
export interface JobInfo {
  name?: string | undefined;
  url?: string | undefined;
  pipeline_id?: string | undefined;
  pipeline_url?: string | undefined;
  commit_sha?: string | undefined;
  merge_request_iid?: string | undefined;
}

export interface JobSummary {
  schema: 1;
  pipeline: JobPlan["kind"];
  server_url: string;
  substituter: string | undefined;
  job?: JobInfo;
  push: {
    planned: boolean;
    attempted: boolean;
    ok: boolean;
    uploaded: number;
    cached: number;
    pinned: string[];
    error: string | undefined;
    runs?: PushRunSummary[];
  };
  notices: string[];
  installables: InstallableSummary[];
  /** Milliseconds per step (install, configure, build, push) that ran. */
  durations_ms?: Record<string, number>;
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
  // No installables: the setup component, whose job's own script decides what to build.
  const own = plan.installables.length === 0;
  log.info(`build: ${own ? "whatever the job's script builds" : plan.installables.map((i) => i.installable).join(" ")}`);
  log.info(`push: ${plan.push ? (own ? "yes, what the job's script builds" : "yes, the closure of every installable built") : "no"}`);
  const pins = plan.installables.filter((i) => i.pin);
  log.info(`pin: ${pins.length ? pins.map((i) => `${i.installable} as ${i.pin}`).join(", ") : "no"}`);
  for (const notice of plan.notices) log.info(`notice: ${notice}`);
}

/** failuresFirst orders installables as every report lists them: failed ones first, then in input order. */
export function failuresFirst(rows: readonly InstallableSummary[]): InstallableSummary[] {
  return [...rows].sort((a, b) => Number(a.ok) - Number(b.ok));
}

/** wasPushed: every output of this installable went up in a niks3 push that succeeded. */
export function wasPushed(row: InstallableSummary, summary: JobSummary): boolean {
  if (!row.ok || !summary.push.attempted) return false;
  const runs = summary.push.runs;
  if (runs === undefined) return summary.push.ok;
  const paths = Object.values(row.outputs);
  return paths.length > 0 && paths.every((path) => runs.some((run) => run.ok && run.paths.includes(path)));
}

/** pushRunLabel names a push by the installables whose outputs it carried (`.#a .#b`). */
export function pushRunLabel(run: PushRunSummary, installables: readonly InstallableSummary[]): string {
  const names = installables
    .filter((row) => Object.values(row.outputs).some((path) => run.paths.includes(path)))
    .map((row) => row.installable);
  return names.length > 0 ? names.join(" ") : `${run.paths.length} paths`;
}

function table(rows: readonly string[][]): string[] {
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => row[column]?.length ?? 0))) ?? [];
  return rows.map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column] ?? 0))).join("  "));
}

/**
 * printResults prints the closing table: one row per output (failures first) with status, closure
 * size, pin and store path; then what each niks3 push uploaded and found already cached; then how
 * long each step took.
 */
export function printResults(log: Logger, summary: JobSummary): void {
  const rows: string[][] = [["installable", "status", "closure", "pin", "out path"]];
  for (const row of failuresFirst(summary.installables)) {
    const paths = Object.values(row.outputs);
    const size = row.closure_size === undefined ? "-" : formatBytes(row.closure_size);
    rows.push([row.installable, row.ok ? "built" : "FAILED", row.ok ? size : "-", row.pin ?? "-", (row.ok ? paths[0] : undefined) ?? "-"]);
    if (row.ok) for (const path of paths.slice(1)) rows.push(["", "", "", "", path]);
  }
  for (const line of table(rows)) log.info(line.trimEnd());

  const push = summary.push;
  if (push.attempted) {
    log.info(
      push.ok
        ? `pushed: ${push.uploaded} new paths uploaded, ${push.cached} already cached${push.pinned.length ? `, pinned ${push.pinned.join(", ")}` : ""}`
        : `push failed: ${push.error ?? "unknown error"}`,
    );
    const runs = push.runs ?? [];
    if (runs.length > 1 || (runs.length === 1 && runs[0]?.pin)) {
      for (const run of runs) {
        const what = pushRunLabel(run, summary.installables);
        const pin = run.pin ? ` (pin ${run.pin})` : "";
        log.info(`  ${what}${pin}: ${run.ok ? "" : "failed, "}${run.uploaded} new, ${run.cached} already cached`);
      }
    }
  } else {
    log.info("pushed: nothing");
  }
  const order = ["install", "configure", "build", "upload", "push"];
  const rank = (step: string) => (order.includes(step) ? order.indexOf(step) : order.length);
  const steps = Object.entries(summary.durations_ms ?? {}).sort(([a], [b]) => rank(a) - rank(b));
  if (steps.length > 0) log.info(`steps: ${steps.map(([step, ms]) => `${step} ${formatDuration(ms)}`).join(", ")}`);
}
