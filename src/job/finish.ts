// The end of every job: derive the summary, the reports and the exit code from what happened.

import { describeGitlabError, noteMarker, planMrNote, postMrNote, renderMrNote } from "../gitlab/mr-note.ts";
import type { Logger } from "../log.ts";
import type { PushOutcome } from "../niks3/push.ts";
import type { InstallableResult } from "../nix/build.ts";
import { measureClosures, type Closures } from "../nix/closure-size.ts";
import { exitCodeFor, printResults, type JobSummary } from "../report/summary.ts";
import { writeReports } from "../report/write.ts";
import type { PreparedJob } from "./prepare.ts";

/** What the summary takes besides the results: measured after the build, or kept by the sections. */
export interface SummaryExtras {
  /** Closure size per result (same order), undefined when unknown. */
  closureSizes?: readonly (number | undefined)[];
  /** Milliseconds per step. */
  durations?: Record<string, number>;
}

export function summarize(
  job: PreparedJob,
  results: readonly InstallableResult[],
  push: PushOutcome | undefined,
  extras: SummaryExtras = {},
): JobSummary {
  const exitCode = exitCodeFor(results, push, job.settings.strict);
  const ci = job.ci;
  return {
    schema: 1,
    pipeline: job.plan.kind,
    server_url: job.settings.serverUrl,
    substituter: job.substituter,
    job: {
      name: ci.jobName,
      url: ci.jobUrl,
      pipeline_id: ci.pipelineId,
      pipeline_url: ci.pipelineUrl,
      commit_sha: ci.commitSha,
      merge_request_iid: ci.mergeRequest?.iid || undefined,
    },
    push: {
      planned: job.plan.push,
      attempted: push !== undefined,
      ok: push?.ok ?? false,
      uploaded: push?.uploaded ?? 0,
      cached: push?.cached ?? 0,
      pinned: push?.pinned ?? [],
      error: push?.error,
      runs: push?.runs?.map((run) => ({ paths: run.paths, pin: run.pin, uploaded: run.uploaded, cached: run.cached, ok: run.ok })) ?? [],
    },
    notices: job.plan.notices,
    installables: results.map((result, index) => ({
      installable: result.installable,
      ok: result.ok,
      outputs: result.outputs,
      closure_size: result.ok ? extras.closureSizes?.[index] : undefined,
      pin: result.ok ? job.plan.installables[index]?.pin : undefined,
      error: result.error,
    })),
    durations_ms: extras.durations ?? {},
    exit_code: exitCode,
  };
}

/** postNote keeps the merge request's note up to date when the user asked for one; never fails the job. */
async function postNote(job: PreparedJob, summary: JobSummary, log: Logger): Promise<void> {
  const plan = planMrNote(job.settings.mrNoteTokenVariable, job.settings.mrNoteToken, job.ci);
  if (!plan.post) {
    if (plan.warning) log.warn(plan.warning);
    if (plan.info) log.info(plan.info);
    return;
  }
  const marker = noteMarker(job.ci.jobName);
  try {
    const result = await postMrNote(plan.target, plan.token, renderMrNote(summary, marker), marker);
    log.info(`${result.action} the note on merge request !${plan.target.iid}`);
  } catch (error) {
    log.warn(`could not post the merge request note: ${describeGitlabError(error)}`);
  }
}

/** startMeasuringClosures asks Nix for the outputs' closures (one nix call); start it as soon as the build is done. */
export function startMeasuringClosures(job: PreparedJob, results: readonly InstallableResult[]): Promise<Closures> {
  return measureClosures(
    results.map((result) => (result.ok ? Object.values(result.outputs) : [])),
    { env: job.childEnv },
  );
}

/**
 * finishJob takes the closure sizes (measured meanwhile, or now), prints the closing table, writes
 * the reports, posts the merge request note, and returns the exit code.
 */
export async function finishJob(
  job: PreparedJob,
  results: readonly InstallableResult[],
  push: PushOutcome | undefined,
  log: Logger,
  measuring: Promise<Closures> = startMeasuringClosures(job, results),
): Promise<number> {
  const closureSizes = (await measuring).sizes;
  const summary = summarize(job, results, push, { closureSizes, durations: job.sections.durations() });
  printResults(log, summary);
  writeReports(job.settings.reportDir, summary, log);
  await postNote(job, summary, log);
  if (push && !push.ok && summary.exit_code !== 1) {
    log.warn(`the build succeeded but the push failed: exit code ${summary.exit_code} (set strict: true to fail the job instead)`);
  }
  return summary.exit_code;
}
