// Pushing what a job built: which paths go in which `niks3 push`, and running them with the token
// in a 0600 file that exists only while niks3 runs.

import { plural, type Logger } from "../log.ts";
import { pushFailureHint, runPushes, type PushItem, type PushItems, type PushOutcome } from "../niks3/push.ts";
import type { InstallableResult } from "../nix/build.ts";
import type { Closures } from "../nix/closure-size.ts";
import type { JobPlan } from "../policy.ts";
import { writeTokenFile } from "../token.ts";
import type { CommandContext } from "./context.ts";
import type { PreparedJob } from "./prepare.ts";

/**
 * pushItems: one niks3 push for all unpinned paths, one per pinned path (niks3 allows one path per
 * --pin). `extra` paths (built here, not uploaded yet) join the unpinned push.
 */
export function pushItems(plan: JobPlan, results: readonly InstallableResult[], extra: readonly string[] = []): PushItem[] {
  const unpinned: string[] = [];
  const pinned: PushItem[] = [];
  results.forEach((result, index) => {
    if (!result.ok) return;
    const paths = Object.values(result.outputs);
    const pin = plan.installables[index]?.pin;
    const [first, ...rest] = paths;
    if (pin && first) {
      pinned.push({ paths: [first], pin });
      unpinned.push(...rest);
    } else {
      unpinned.push(...paths);
    }
  });
  const unique = [...new Set([...unpinned, ...extra])];
  return [...(unique.length ? [{ paths: unique, pin: undefined }] : []), ...pinned];
}

/**
 * outsideClosures: the paths a push of the outputs' closures would not carry (all of them when
 * the closures are unknown).
 */
export function outsideClosures(paths: readonly string[], closures: ReadonlySet<string> | undefined): string[] {
  return closures === undefined ? [...paths] : paths.filter((path) => !closures.has(path));
}

/**
 * pushResults pushes the closures of what was built, as the plan allows, one `niks3 push` per item
 * as the items come. Returns undefined when nothing was to be pushed (the plan says no, or nothing
 * built).
 */
async function pushResults(job: PreparedJob, items: PushItems, cwd: string, log: Logger): Promise<PushOutcome | undefined> {
  if (!job.plan.push) return undefined;
  if (job.blockedPush) return { ok: false, uploaded: 0, cached: 0, pinned: [], error: job.blockedPush };
  const install = job.install;
  if (!install || !job.settings.token) return undefined;
  const tokenFile = writeTokenFile(job.settings.token);
  let outcome: PushOutcome;
  try {
    outcome = await runPushes(announced(items, install.niks3, log), {
      niks3: install.niks3,
      serverUrl: job.settings.serverUrl,
      tokenPath: tokenFile.path,
      debug: job.settings.debug,
      timeoutSeconds: job.settings.pushTimeoutSeconds,
      env: job.childEnv,
      cwd,
      log,
    });
  } finally {
    tokenFile.remove();
  }
  if (outcome.ok && outcome.runs?.length === 0) return undefined;
  const hint = outcome.error ? pushFailureHint(outcome.error) : undefined;
  if (hint) log.warn(hint);
  return outcome;
}

/** announced says what each push carries as it starts. */
async function* announced(items: PushItems, niks3: string, log: Logger): AsyncGenerator<PushItem> {
  for await (const item of items) {
    if (item.paths.length === 0) continue;
    log.info(`pushing ${plural(item.paths.length, "store path")}${item.pin ? ` pinned as ${item.pin}` : ""} with ${niks3}`);
    yield item;
  }
}

/**
 * pushAfterUpload is the final push: the plan's items plus what Nix built that nothing has uploaded
 * yet (`deferred`), unless an output's closure carries it anyway (`closures`, read after the build).
 * The pinned pushes need no closures, so they go first and start at once; the unpinned one, which
 * takes the rest of `deferred`, follows.
 */
export async function pushAfterUpload(
  job: PreparedJob,
  results: readonly InstallableResult[],
  deferred: Promise<readonly string[]> | undefined,
  closures: Promise<Closures>,
  context: CommandContext,
): Promise<PushOutcome | undefined> {
  const planned = pushItems(job.plan, results);
  async function* items(): AsyncGenerator<PushItem> {
    yield* planned.filter((item) => item.pin !== undefined);
    const extra = deferred ? outsideClosures(await deferred, (await closures).paths) : [];
    yield* pushItems(job.plan, results, extra).filter((item) => item.pin === undefined);
  }
  const push = () => pushResults(job, items(), context.cwd, context.log);
  const anything = planned.length > 0 || deferred !== undefined;
  return job.plan.push && anything ? job.sections.run("push", `pushing to ${job.settings.serverUrl}`, push, { collapsed: true }) : push();
}
