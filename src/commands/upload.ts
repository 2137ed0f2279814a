// `niks3-gitlab upload`: the setup component's after_script, a shell of its own that GitLab runs
// also when the script failed or the job was cancelled, within RUNNER_AFTER_SCRIPT_TIMEOUT (5 min by
// default). Finishes what `setup` started within that limit (drain niks3-hook, or push the store
// diff), then pushes the closures of the `result*` links the user's `nix build` left in the project
// dir, so outputs that were already in a warm store are cached too. Its exit code cannot fail the
// job (GitLab ignores after_script's); a failed upload is a warning line and exit code 3.

import { lstat, readdir, readlink } from "node:fs/promises";
import { isAbsolute, join, resolve } from "node:path";
import { readCiContext } from "../ci-context.ts";
import { ExitCode } from "../errors.ts";
import type { CommandContext } from "../job/context.ts";
import { childEnvOf } from "../job/prepare.ts";
import { plural } from "../log.ts";
import type { PushOutcome } from "../niks3/push.ts";
import { resolveSettings, type RawSettings } from "../settings.ts";
import { formatSeconds } from "../upload/daemon.ts";
import { pushNow } from "../upload/finish.ts";
import { endUpload, mergeOutcomes, sessionOf, type UploadJob } from "../upload/session.ts";
import { loadUploadState, removeUploadState } from "../upload/state.ts";
import { storeDirOf, validPaths } from "../upload/store-diff.ts";

/** GitLab's default after_script limit (RUNNER_AFTER_SCRIPT_TIMEOUT). */
const AFTER_SCRIPT_SECONDS = 300;
/** Kept for reporting and for the runner: the upload stops this long before the limit. */
const MARGIN_SECONDS = 30;

/** parseGoDuration reads RUNNER_AFTER_SCRIPT_TIMEOUT ("5m", "1h30m", "90s"); undefined if it is not one. */
export function parseGoDuration(text: string | undefined): number | undefined {
  if (!text || !/^(\d+(\.\d+)?(h|m|s|ms))+$/.test(text.trim())) return undefined;
  let seconds = 0;
  for (const [, amount, unit] of text.trim().matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s)/g)) {
    seconds += Number(amount) * (unit === "h" ? 3600 : unit === "m" ? 60 : unit === "ms" ? 0.001 : 1);
  }
  return seconds;
}

/** uploadLimitSeconds: push_timeout, but never past the after_script's own limit. */
export function uploadLimitSeconds(pushTimeoutSeconds: number, afterScriptTimeout: string | undefined): number {
  const budget = (parseGoDuration(afterScriptTimeout) ?? AFTER_SCRIPT_SECONDS) - MARGIN_SECONDS;
  return Math.max(10, Math.min(pushTimeoutSeconds, budget));
}

/** resultLinks: the store paths the project dir's `result`, `result-*` links point to (valid ones). */
async function resultLinks(projectDir: string, env: NodeJS.ProcessEnv): Promise<string[]> {
  const storeDir = storeDirOf(env);
  const targets: string[] = [];
  for (const name of (await readdir(projectDir).catch(() => [] as string[])).filter((n) => /^result(-.+)?$/.test(n))) {
    const path = join(projectDir, name);
    if (!(await lstat(path)).isSymbolicLink()) continue;
    const target = await readlink(path);
    const absolute = isAbsolute(target) ? target : resolve(projectDir, target);
    if (absolute.startsWith(`${storeDir}/`)) targets.push(absolute.split("/").slice(0, storeDir.split("/").length + 1).join("/"));
  }
  return targets.length ? validPaths([...new Set(targets)], env) : [];
}

export async function runUpload(flags: RawSettings, context: CommandContext): Promise<number> {
  const { env, log } = context;
  const ci = readCiContext(env, context.cwd);
  const settings = resolveSettings(flags, env, { projectDir: ci.projectDir, required: ["serverUrl"] });
  const state = loadUploadState(settings.reportDir);
  if (!state) {
    log.warn("niks3-gitlab setup left no state (did the before_script run?): nothing to upload");
    return ExitCode.ok;
  }
  removeUploadState(settings.reportDir);
  if (state.mode === "none") {
    log.info("nothing to upload");
    return ExitCode.ok;
  }
  const limitSeconds = uploadLimitSeconds(settings.pushTimeoutSeconds, env.RUNNER_AFTER_SCRIPT_TIMEOUT);
  const job: UploadJob = {
    settings,
    plan: { push: true },
    install: state.niks3 ? { niks3: state.niks3, source: "path", dir: "" } : undefined,
    blockedPush: undefined,
    childEnv: childEnvOf(env, {}),
  };
  const started = Date.now();
  const stream = await endUpload(sessionOf(state), job, { cwd: context.cwd, log, limitSeconds, printDaemonLog: true });

  let push: PushOutcome | undefined;
  const links = await resultLinks(ci.projectDir, job.childEnv);
  const remaining = limitSeconds - (Date.now() - started) / 1000;
  if (links.length > 0 && job.install && settings.token && remaining > 1) {
    log.info(`pushing the closures of ${plural(links.length, "result link")} (${formatSeconds(remaining)} left)`);
    push = await pushNow(links, job, { cwd: context.cwd, log, limitSeconds: remaining });
  }
  const total = mergeOutcomes(stream, push);
  if (!total || total.ok) {
    log.info(`pushed: ${total?.uploaded ?? 0} paths uploaded, ${total?.cached ?? 0} already cached`);
    return ExitCode.ok;
  }
  log.warn(`push failed: ${total.error ?? "unknown error"} (after_script: the job's status is not changed)`);
  return ExitCode.pushFailed;
}
