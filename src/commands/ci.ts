// `niks3-gitlab ci`: the build component's job. Prepare (settings, plan, niks3, pull), build every
// installable with --keep-going while uploading what finishes (niks3-hook, else a store diff after
// the build), push the closures of what built (also when others failed), report.

import { runNixBuild } from "../nix/build.ts";
import type { RawSettings } from "../settings.ts";
import type { CommandContext } from "../job/context.ts";
import { finishJob, startMeasuringClosures } from "../job/finish.ts";
import { prepareJob } from "../job/prepare.ts";
import { pushAfterUpload } from "../job/push.ts";
import { beginJobUpload, endJobUpload } from "../job/upload.ts";
import { abortUpload, mergeOutcomes } from "../upload/session.ts";

export async function runCi(flags: RawSettings, context: CommandContext): Promise<number> {
  const job = await prepareJob(flags, context);
  const installables = job.plan.installables.map((planned) => planned.installable);
  // Upload while building where Nix runs a post-build-hook (niks3-hook), else diff the store.
  const upload = await beginJobUpload(job, context, false);
  // The build's section is never folded: a failed build's log must be in sight.
  const results = await job.sections
    .run("build", `building ${installables.join(" ")}`, () =>
      runNixBuild(installables, { cwd: context.cwd, env: { ...job.childEnv, ...upload.nixEnv }, log: context.log }),
    )
    .catch(async (error: unknown) => {
      await abortUpload(upload, context.log);
      throw error;
    });
  // The outputs' closures (for the final push and the summary) are read while the upload finishes.
  const measuring = startMeasuringClosures(job, results);
  const streamed = await endJobUpload(job, upload, context);
  const push = await pushAfterUpload(job, results, streamed?.deferred, measuring, context);
  return finishJob(job, results, mergeOutcomes(streamed, push), context.log, measuring);
}
