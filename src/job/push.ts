// Pushing what a job built: which paths go in which `niks3 push` (none for what the upload step
// already put in the cache: only its pin is set), and running them with the token in a 0600 file that exists only
// while niks3 runs.

import type { Logger } from "../log.ts";
import { createPin, type PinsRunOptions } from "../niks3/pins.ts";
import { pushFailureHint, runPushes, type PushItem, type PushOutcome } from "../niks3/push.ts";
import type { InstallableResult } from "../nix/build.ts";
import type { JobPlan } from "../policy.ts";
import { writeTokenFile } from "../token.ts";
import type { CommandContext } from "./context.ts";
import type { PreparedJob } from "./prepare.ts";

/**
 * pushItems: one niks3 push for all unpinned paths, one per pinned path (niks3 allows one path per
 * --pin). Paths whose closures the upload step already put in the cache (`uploadedClosures`) need
 * no push: they go in items marked `alreadyUploaded`, which only set their pin.
 */
export function pushItems(plan: JobPlan, results: readonly InstallableResult[], uploadedClosures: Iterable<string> = []): PushItem[] {
  const uploaded = new Set(uploadedClosures);
  const unpinned: string[] = [];
  const pinned: PushItem[] = [];
  results.forEach((result, index) => {
    if (!result.ok) return;
    const paths = Object.values(result.outputs);
    const pin = plan.installables[index]?.pin;
    const [first, ...rest] = paths;
    if (pin && first) {
      pinned.push({ paths: [first], pin, alreadyUploaded: uploaded.has(first) });
      unpinned.push(...rest);
    } else {
      unpinned.push(...paths);
    }
  });
  const unique = [...new Set(unpinned)];
  const groups = [unique.filter((path) => !uploaded.has(path)), unique.filter((path) => uploaded.has(path))];
  return [
    ...groups.flatMap((paths, index) => (paths.length ? [{ paths, pin: undefined, alreadyUploaded: index === 1 }] : [])),
    ...pinned,
  ];
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

/**
 * pinUploaded records what the upload step already put in the cache as pushed, and sets the pins
 * of those paths (`niks3 pins create`), stopping at the first failure as runPushes does.
 */
async function pinUploaded(items: readonly PushItem[], outcome: PushOutcome, options: PinsRunOptions): Promise<PushOutcome> {
  const pins = items.filter((item) => item.pin !== undefined);
  const outputs = items.reduce((n, item) => n + item.paths.length, 0);
  options.log.info(
    `${plural(outputs, "output")} and ${outputs === 1 ? "its closure are" : "their closures are"} in the cache already` +
      (pins.length ? `; setting ${plural(pins.length, "pin")}` : ""),
  );
  const result: PushOutcome = { ...outcome, pinned: [...outcome.pinned], runs: [...(outcome.runs ?? [])] };
  for (const item of items) {
    const pinned = item.pin === undefined ? undefined : await createPin(item.pin, item.paths[0] ?? "", options);
    result.runs?.push({ paths: [...item.paths], pin: item.pin, uploaded: 0, cached: 0, ok: pinned?.ok ?? true, alreadyUploaded: true });
    if (pinned && !pinned.ok) return { ...result, ok: false, error: pinned.error };
    if (item.pin !== undefined) result.pinned.push(item.pin);
  }
  return result;
}

/**
 * pushResults pushes the closures of what was built, as the plan allows, and sets the pins of what
 * the upload step already put in the cache. Returns undefined when nothing was to be pushed (the plan says no,
 * or nothing built).
 */
export async function pushResults(job: PreparedJob, items: readonly PushItem[], cwd: string, log: Logger): Promise<PushOutcome | undefined> {
  if (!job.plan.push) return undefined;
  if (job.blockedPush) return { ok: false, uploaded: 0, cached: 0, pinned: [], error: job.blockedPush };
  if (!job.install || !job.settings.token || items.length === 0) return undefined;
  const toPush = items.filter((item) => !item.alreadyUploaded);
  const uploaded = items.filter((item) => item.alreadyUploaded);
  const tokenFile = writeTokenFile(job.settings.token);
  const niks3 = { niks3: job.install.niks3, serverUrl: job.settings.serverUrl, tokenPath: tokenFile.path, debug: job.settings.debug, env: job.childEnv, cwd, log };
  let outcome: PushOutcome = { ok: true, uploaded: 0, cached: 0, pinned: [], error: undefined, runs: [] };
  try {
    if (toPush.length > 0) {
      log.info(`pushing ${plural(toPush.reduce((n, item) => n + item.paths.length, 0), "store path")} with ${job.install.niks3}`);
      outcome = await runPushes(toPush, { ...niks3, timeoutSeconds: job.settings.pushTimeoutSeconds });
    }
    if (outcome.ok && uploaded.length > 0) outcome = await pinUploaded(uploaded, outcome, niks3);
  } finally {
    tokenFile.remove();
  }
  const hint = outcome.error ? pushFailureHint(outcome.error) : undefined;
  if (hint) log.warn(hint);
  return outcome;
}

/** pushInSection runs pushResults in a collapsed "push" section when there is something to push. */
export async function pushInSection(job: PreparedJob, items: readonly PushItem[], context: CommandContext): Promise<PushOutcome | undefined> {
  const push = () => pushResults(job, items, context.cwd, context.log);
  return job.plan.push && items.length > 0 ? job.sections.run("push", `pushing to ${job.settings.serverUrl}`, push, { collapsed: true }) : push();
}
