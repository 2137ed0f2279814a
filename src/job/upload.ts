// Uploading around a job's build, as the ci and warm commands run it in one process (and the
// setup component starts it in its before_script): src/upload/session.ts does the work, this says
// how a job calls it and puts its end in the job log's "upload" section.

import type { CommandContext } from "./context.ts";
import type { PreparedJob } from "./prepare.ts";
import { beginUpload, endUpload, helperCommand, type UploadOutcome, type UploadSession } from "../upload/session.ts";

/**
 * beginJobUpload picks the upload mode and starts uploading: niks3-hook where Nix runs a
 * post-build-hook, else the store listing for a diff. `detached`: niks3-hook outlives this process
 * (setup). It exits after the job's timeout without a build, so never within the job.
 */
export function beginJobUpload(job: PreparedJob, context: CommandContext, detached: boolean): Promise<UploadSession> {
  return beginUpload(job, {
    cwd: context.cwd,
    log: context.log,
    helper: helperCommand(process.execPath, process.argv[1]),
    detached,
    idleExitSeconds: job.ci.jobTimeoutSeconds ?? 0,
  });
}

/** endJobUpload finishes uploading in a collapsed "upload" section; undefined when nothing uploads. */
export async function endJobUpload(job: PreparedJob, upload: UploadSession, context: CommandContext): Promise<UploadOutcome | undefined> {
  if (upload.state.mode === "none") return undefined;
  return job.sections.run(
    "upload",
    upload.state.mode === "daemon" ? "finishing the upload (niks3-hook)" : "pushing the store diff",
    () => endUpload(upload, job, { cwd: context.cwd, log: context.log, limitSeconds: job.settings.pushTimeoutSeconds, printDaemonLog: false }),
    { collapsed: true },
  );
}
