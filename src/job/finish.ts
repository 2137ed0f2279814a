// The end of every job: derive the summary, the reports and the exit code from what happened.

import type { Logger } from "../log.ts";
import type { PushOutcome } from "../niks3/push.ts";
import type { InstallableResult } from "../nix/build.ts";
import { exitCodeFor, printResults, writeSummary, type JobSummary } from "../report/summary.ts";
import type { PreparedJob } from "./prepare.ts";

export function summarize(job: PreparedJob, results: readonly InstallableResult[], push: PushOutcome | undefined): JobSummary {
  const exitCode = exitCodeFor(results, push, job.settings.strict);
  return {
    schema: 1,
    pipeline: job.plan.kind,
    server_url: job.settings.serverUrl,
    substituter: job.substituter,
    push: {
      planned: job.plan.push,
      attempted: push !== undefined,
      ok: push?.ok ?? false,
      uploaded: push?.uploaded ?? 0,
      cached: push?.cached ?? 0,
      pinned: push?.pinned ?? [],
      error: push?.error,
    },
    notices: job.plan.notices,
    installables: results.map((result, index) => ({
      installable: result.installable,
      ok: result.ok,
      outputs: result.outputs,
      pin: result.ok ? job.plan.installables[index]?.pin : undefined,
      error: result.error,
    })),
    exit_code: exitCode,
  };
}

/** finishJob prints the closing table, writes the reports and returns the exit code. */
export function finishJob(job: PreparedJob, results: readonly InstallableResult[], push: PushOutcome | undefined, log: Logger): number {
  const summary = summarize(job, results, push);
  printResults(log, summary);
  writeSummary(job.settings.reportDir, summary, log);
  if (push && !push.ok && summary.exit_code !== 1) {
    log.warn(`the build succeeded but the push failed: exit code ${summary.exit_code} (set strict: true to fail the job instead)`);
  }
  return summary.exit_code;
}
