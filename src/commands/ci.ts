// `niks3-gitlab ci`: the build component's job. Prepare (settings, plan, niks3, pull), build every
// installable with --keep-going, push the closures of what built (also when others failed), report.

import { runNixBuild } from "../nix/build.ts";
import type { RawSettings } from "../settings.ts";
import type { CommandContext } from "../job/context.ts";
import { finishJob } from "../job/finish.ts";
import { prepareJob } from "../job/prepare.ts";
import { pushItems, pushResults } from "../job/push.ts";

export async function runCi(flags: RawSettings, context: CommandContext): Promise<number> {
  const job = await prepareJob(flags, context);
  const installables = job.plan.installables.map((planned) => planned.installable);
  const results = await runNixBuild(installables, { cwd: context.cwd, env: job.childEnv, log: context.log });
  const push = await pushResults(job, pushItems(job.plan, results), context.cwd, context.log);
  return finishJob(job, results, push, context.log);
}
