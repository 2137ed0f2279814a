// `niks3-gitlab warm`: the warm component's job. Discover the flake's packages, checks, devShells
// and formatter for this system (one nix eval), filter them, build each derivation once with
// --keep-going, push what built (also when some outputs failed), pin every output on the default
// branch and on tags, optionally prune pins of outputs that are gone, and report which failed.

import { finishJob, startMeasuringClosures } from "../job/finish.ts";
import { childEnvOf, prepareJob, type PreparedJob } from "../job/prepare.ts";
import { pushAfterUpload } from "../job/push.ts";
import { beginJobUpload, endJobUpload } from "../job/upload.ts";
import type { CommandContext } from "../job/context.ts";
import { plural, type Logger } from "../log.ts";
import type { PushOutcome } from "../niks3/push.ts";
import { runNixBuild, type InstallableResult } from "../nix/build.ts";
import { discoverOutputs } from "../nix/discover.ts";
import { pinNames } from "../policy.ts";
import type { RawSettings, Settings } from "../settings.ts";
import { selectOutputs, toWarmOutput, uniqueBuilds, warmResults, type WarmOutput } from "../warm/outputs.ts";
import { mergeOutcomes } from "../upload/session.ts";
import { prunePins, type PruneOutcome } from "../warm/prune.ts";

interface Discovered {
  system: string;
  /** Every output of the flake for this system, filtered out or not (prune keeps their pins). */
  all: WarmOutput[];
  /** The outputs the filter keeps, in plan order. */
  selected: WarmOutput[];
  /** Categories whose outputs could not be listed at all. */
  unlisted: string[];
}

/** discover evaluates the flake once and applies the filter, saying what it found in a few lines. */
async function discover(settings: Settings, context: CommandContext): Promise<Discovered> {
  const { log } = context;
  const env = childEnvOf(context.env, {}, settings.mrNoteTokenVariable);
  const found = await discoverOutputs(settings.warmFlake, settings.warmSystem || undefined, { cwd: context.cwd, env });
  if (found.system !== found.nativeSystem) {
    log.warn(`building ${found.system} outputs with a ${found.nativeSystem} Nix: this needs a remote builder or emulation for ${found.system} (are the runner tags right?)`);
  }
  const all = found.outputs.map((output) => toWarmOutput(settings.warmFlake, found.system, output));
  const { selected, excluded, unmatched } = selectOutputs(all, settings.warmInclude, settings.warmExclude);
  for (const glob of unmatched) log.warn(`include pattern ${glob} matches no output of ${settings.warmFlake} for ${found.system}`);
  const builds = uniqueBuilds(selected).length;
  log.info(
    `warm: the flake ${settings.warmFlake} has ${all.length} outputs for ${found.system}; ${selected.length} selected` +
      (excluded.length ? ` (left out: ${excluded.join(", ")})` : "") +
      `, ${plural(builds, "distinct derivation")} to build`,
  );
  for (const output of selected.filter((o) => !o.ok)) log.warn(`${output.name} does not evaluate: ${output.error ?? "unknown error"}`);
  const unlisted = found.outputs.filter((o) => !o.ok && o.attr === undefined && o.category !== "formatter").map((o) => o.category);
  return { system: found.system, all, selected, unlisted };
}

/** prune deletes stale warm pins when asked and when this job may: it pins, and its push went well. */
async function prune(job: PreparedJob, found: Discovered, push: PushOutcome | undefined, context: CommandContext): Promise<PruneOutcome | undefined> {
  const { log } = context;
  const base = job.plan.pinBase;
  if (!job.settings.warmPrune) return undefined;
  if (!job.plan.push || base === undefined) {
    log.info(`prune: skipped, this ${job.plan.push ? "pipeline sets no pins" : "job does not push"}`);
    return undefined;
  }
  if (job.blockedPush || (push && !push.ok)) {
    log.warn("prune: skipped because the push failed");
    return undefined;
  }
  const current = new Set(pinNames(base, found.all.map((output) => output.installable), { each: true }).filter((n): n is string => n !== undefined));
  return job.sections.run(
    "prune",
    "deleting pins of outputs that are no longer in the flake",
    () => prunePins(job, { base, system: found.system, current, unlisted: found.unlisted }, context.cwd, log),
    { collapsed: true },
  );
}

/** withPrune folds a failed prune into the push outcome: like a failed push, a warning (exit 3) unless strict. */
function withPrune(push: PushOutcome | undefined, pruned: PruneOutcome | undefined): PushOutcome | undefined {
  if (!pruned || pruned.ok) return push;
  const base: PushOutcome = push ?? { ok: true, uploaded: 0, cached: 0, pinned: [], error: undefined };
  return { ...base, ok: false, error: `prune: ${pruned.error ?? "failed"}` };
}

/** reportFailures: one line naming every output that failed and how. */
function reportFailures(outputs: readonly WarmOutput[], results: readonly InstallableResult[], log: Logger): void {
  const failed = results.flatMap((result, index) => {
    if (result.ok) return [];
    const output = outputs[index];
    const how = output && !output.ok ? "does not evaluate" : "build failed";
    return [`${output?.name ?? result.installable} (${how})`];
  });
  if (failed.length) log.info(`warm: ${failed.length} of ${results.length} outputs failed: ${failed.join(", ")}`);
}

export async function runWarm(flags: RawSettings, context: CommandContext): Promise<number> {
  let found: Discovered | undefined;
  const job = await prepareJob(flags, context, {
    pinEach: true,
    installables: async (settings) => {
      found = await discover(settings, context);
      return found.selected.map((output) => output.installable);
    },
  });
  if (!found) throw new Error("warm: discovery did not run");
  const { selected } = found;

  const builds = uniqueBuilds(selected);
  if (selected.length === 0) context.log.warn("warm: no outputs to build (check include, exclude and the system)");
  // As in ci: upload while building where Nix runs a post-build-hook, so that what built before a
  // failing check is cached too; else the store diff after the build.
  const upload = await beginJobUpload(job, context, false);
  const built = builds.length
    ? await job.sections.run("build", `building ${builds.length} derivations for ${found.system}`, () =>
        runNixBuild(
          builds.map((output) => output.installable),
          { cwd: context.cwd, env: { ...job.childEnv, ...upload.nixEnv }, log: context.log, drvPaths: builds.map((output) => output.drvPath) },
        ),
      )
    : [];
  const results = warmResults(selected, built);
  // As in ci: the outputs' closures are read while the upload finishes.
  const measuring = startMeasuringClosures(job, results);
  const streamed = await endJobUpload(job, upload, context);

  const pushed = mergeOutcomes(streamed, await pushAfterUpload(job, results, streamed?.deferred, measuring, context));
  const push = withPrune(pushed, await prune(job, found, pushed, context));

  const code = await finishJob(job, results, push, context.log, measuring);
  reportFailures(selected, results, context.log);
  return code;
}
