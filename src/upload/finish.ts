// The end of uploading (see session.ts): wait for the post-build-hook's sends, drain niks3-hook
// within the time limit and report what it left in its queue (and push what it never got: niks3-hook
// did not start, or a send failed), or push the store diff; then remove the private state dir and
// its token file.

import { rmSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { isProcessRunning } from "../edges/proc.ts";
import { plural, type Logger } from "../log.ts";
import { parseNiks3Log, runPushes, type PushOutcome, type PushRun } from "../niks3/push.ts";
import { writeTokenFile } from "../token.ts";
import { countQueue, formatSeconds, startDaemon, stopDaemon, type StopResult } from "./daemon.ts";
import { builtPaths, hasBuilt, pendingSends, sendErrors } from "./hook.ts";
import type { UploadMode } from "./mode.ts";
import { DAEMON_START_DELAY_MS, readDaemonLog, type UploadJob, type UploadSession } from "./session.ts";
import { listStore, loadListing, newEntries, storeDirOf, validPaths } from "./store-diff.ts";

export interface UploadOutcome {
  mode: UploadMode;
  ok: boolean;
  /** Paths uploaded (N of niks3's "Uploading N paths", summed). */
  uploaded: number;
  /** Paths of the store diff's closures the cache already had (0 in daemon mode). */
  cached: number;
  /** Built paths still in niks3-hook's queue when it stopped; undefined when unknown. */
  leftover: number | undefined;
  error: string | undefined;
  runs: PushRun[];
  /**
   * Paths Nix built that nothing has uploaded yet, for the final push to take along: the build was
   * over before niks3-hook was needed, and one push is cheaper than niks3-hook's batches. A promise,
   * so that the pinned pushes need not wait for Nix to name the outputs of what was recorded.
   */
  deferred?: Promise<string[]>;
}

export interface EndOptions {
  cwd: string;
  log: Logger;
  /** Time limit for the drain or the store-diff push. */
  limitSeconds: number;
  heartbeatMs?: number;
  /** Print the daemon's log at the end (it ran detached, so nobody has seen it). */
  printDaemonLog: boolean;
}

const UPLOAD_FAILED = /msg="(?:Drain upload failed[^"]*|Upload failed)" error="((?:[^"\\]|\\.)*)"/;

/** lastUploadError: the error of niks3-hook's last failed upload, from its log. */
export function lastUploadError(logText: string): string | undefined {
  let last: string | undefined;
  for (const line of logText.split("\n")) {
    const match = UPLOAD_FAILED.exec(line);
    if (match?.[1] !== undefined) last = match[1].replace(/\\n/g, " ").replace(/\\"/g, '"').trim();
  }
  return last;
}

/** isBackingOff: niks3-hook's last upload attempt failed (it now waits 1 s … 15 min before the next). */
export function isBackingOff(logText: string): boolean {
  const last = [...logText.matchAll(/msg="(Uploading batch|Upload complete[^"]*|Upload failed)"/g)].at(-1)?.[1];
  return last === "Upload failed";
}

type DaemonState = NonNullable<UploadSession["state"]["daemon"]>;

async function drainDaemon(session: UploadSession, daemon: DaemonState, job: UploadJob, options: EndOptions): Promise<UploadOutcome> {
  const limitMs = options.limitSeconds * 1000;
  const stopOptions = {
    limitMs,
    log: options.log,
    queued: () => countQueue(daemon.dbPath),
    backingOff: () => isBackingOff(readDaemonLog(session)),
    // Every 30 s (niks3-action's interval), more often under a short limit.
    heartbeatMs: options.heartbeatMs ?? Math.min(30_000, Math.max(1_000, limitMs / 10)),
  };
  let stop: StopResult | undefined;
  if (await isProcessRunning(daemon.pid, daemon.startTime)) {
    const queued = await countQueue(daemon.dbPath);
    options.log.info(
      queued === 0
        ? "stopping niks3-hook: everything built is uploaded"
        : `waiting up to ${formatSeconds(options.limitSeconds)} for niks3-hook to upload ${queued === undefined ? "what is queued" : `the ${plural(queued, "queued path")}`}`,
    );
    stop = await stopDaemon(daemon, { ...stopOptions, ...(session.process ? { exited: session.process.exited } : {}) });
  } else {
    const queued = await countQueue(daemon.dbPath);
    if (queued !== undefined && queued > 0) {
      // Some executors end background processes when the script ends; the queue survived on disk.
      options.log.warn(`niks3-hook was no longer running; starting it again to upload the ${plural(queued, "queued path")}`);
      const restarted = await startDaemon({
        niks3Hook: daemon.niks3Hook,
        args: daemon.args,
        env: job.childEnv,
        cwd: options.cwd,
        socket: daemon.socket,
        detached: false,
        ...(daemon.logFile !== undefined ? { logFile: daemon.logFile } : { onLine: (line: string) => session.lines.push(line) }),
      });
      if (restarted.ok) {
        // Told to stop at once: a fresh niks3-hook looks at its queue only when told to drain (or
        // after its 30 s poll).
        const { queued: _queued, backingOff: _backingOff, ...drainNow } = stopOptions;
        stop = await stopDaemon({ pid: restarted.process.pid, startTime: undefined }, { ...drainNow, exited: restarted.process.exited });
      } else options.log.warn(`niks3-hook did not start again: ${restarted.why}`);
    }
  }
  const logText = readDaemonLog(session);
  if (options.printDaemonLog && logText.trim() !== "") options.log.raw(logText.endsWith("\n") ? logText : `${logText}\n`);
  const parsed = parseNiks3Log(logText);
  const leftover = await countQueue(daemon.dbPath);
  const failure = lastUploadError(logText);
  let error: string | undefined;
  if (stop && !stop.exited) {
    error = `niks3-hook did not finish uploading within ${formatSeconds(options.limitSeconds)}: ${leftover === undefined ? "some" : leftover} built paths were not uploaded`;
  } else if (leftover !== undefined && leftover > 0) {
    error = `${plural(leftover, "built path")} could not be uploaded: ${failure ?? "niks3-hook stopped"}`;
  } else if (leftover === undefined && failure !== undefined && /Drain upload failed/.test(logText)) {
    error = `niks3-hook could not upload everything: ${failure}`;
  }
  if (error) options.log.warn(error);
  else options.log.info(`uploaded while building: ${plural(parsed.uploaded, "path")}${leftover === 0 ? ", nothing left in the queue" : ""}`);
  return { mode: "daemon", ok: error === undefined, uploaded: parsed.uploaded, cached: 0, leftover, error, runs: [] };
}

/** pushNow pushes `paths` (their closures) with niks3, in chunks, within the time limit. */
export async function pushNow(paths: readonly string[], job: UploadJob, options: Pick<EndOptions, "cwd" | "log" | "limitSeconds">): Promise<PushOutcome> {
  if (!job.install || !job.settings.token) {
    return { ok: false, uploaded: 0, cached: 0, pinned: [], error: "no niks3 or no NIKS3_TOKEN to push with", runs: [] };
  }
  const tokenFile = writeTokenFile(job.settings.token);
  try {
    const items = [];
    for (let i = 0; i < paths.length; i += 500) items.push({ paths: paths.slice(i, i + 500), pin: undefined });
    return await runPushes(items, {
      niks3: job.install.niks3,
      serverUrl: job.settings.serverUrl,
      tokenPath: tokenFile.path,
      debug: job.settings.debug,
      timeoutSeconds: options.limitSeconds,
      env: job.childEnv,
      cwd: options.cwd,
      log: options.log,
    });
  } finally {
    tokenFile.remove();
  }
}

async function pushStoreDiff(session: UploadSession, job: UploadJob, options: EndOptions): Promise<UploadOutcome> {
  const none = { mode: "store-diff" as const, uploaded: 0, cached: 0, leftover: undefined, runs: [] };
  const storeDir = storeDirOf(job.childEnv);
  if (session.state.listing === undefined) return { ...none, ok: false, error: "no store listing from before the build" };
  const fresh = newEntries(storeDir, await loadListing(session.state.listing), await listStore(storeDir));
  const valid = await validPaths(fresh, job.childEnv);
  const skipped = fresh.length - valid.length;
  options.log.info(`${plural(valid.length, "new store path")} since the start of the job${skipped ? ` (${skipped} not valid, skipped)` : ""}`);
  if (valid.length === 0) return { ...none, ok: true, error: undefined };
  const outcome = await pushNow(valid, job, options);
  if (outcome.error) options.log.warn(`the store diff push failed: ${outcome.error}`);
  return { ...none, ok: outcome.ok, uploaded: outcome.uploaded, cached: outcome.cached, error: outcome.error, runs: outcome.runs ?? [] };
}

/** How long the hook's sends may run after the build: send's own timeout (5 s), twice over. */
const SENDS_LIMIT_MS = 10_000;

/**
 * waitForSends waits until the post-build-hook's background sends are done, or dead (an executor
 * that ends background processes with the script); then returns how many never finished.
 */
async function waitForSends(stateDir: string, limitMs: number): Promise<number> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const alive = await Promise.all(pendingSends(stateDir).map((pid) => (pid === undefined ? true : isProcessRunning(pid))));
    const running = alive.filter(Boolean).length;
    if (running === 0 || Date.now() >= deadline) return pendingSends(stateDir).length;
    await sleep(10);
  }
}

/**
 * finishHookUpload ends daemon mode: the hook's sends, then niks3-hook's drain. What Nix built but
 * niks3-hook never got (it did not start, or a send failed: `niks3-hook send` exits 0 and only
 * prints why) is pushed from the hook's record. Where niks3-hook was never needed (the build was
 * quick), the record is handed to the push that follows instead.
 */
async function finishHookUpload(session: UploadSession, job: UploadJob, options: EndOptions): Promise<UploadOutcome> {
  session.buildEnded();
  await session.daemonReady;
  const stateDir = session.state.stateDir ?? "";
  const unfinished = await waitForSends(stateDir, SENDS_LIMIT_MS);
  const daemon = session.state.daemon;
  const drained = daemon ? await drainDaemon(session, daemon, job, options) : undefined;
  const errors = sendErrors(stateDir);
  let lost: string | undefined;
  if (errors.length > 0) lost = `${errors[0]}${errors.length > 1 ? ` (and ${plural(errors.length - 1, "more error")})` : ""}`;
  else if (unfinished > 0) lost = `${plural(unfinished, "send")} of the post-build-hook never finished`;
  if (drained && lost === undefined) return drained;
  if (!drained && session.state.daemonFailure === undefined) {
    // niks3-hook was never started: the final push takes what Nix built along (the hook recorded
    // each path once Nix had registered it, so they are valid).
    const idle = { mode: "daemon" as const, ok: true, uploaded: 0, cached: 0, leftover: undefined, error: undefined, runs: [] };
    if (!hasBuilt(stateDir)) {
      options.log.info("Nix built nothing in this job: nothing to upload while building");
      return idle;
    }
    options.log.info(`the build was over within ${formatSeconds(DAEMON_START_DELAY_MS / 1000)}: what Nix built goes up with the push that follows`);
    return { ...idle, deferred: builtPaths(stateDir, job.childEnv) };
  }
  const built = await validPaths(await builtPaths(stateDir, job.childEnv), job.childEnv);
  if (drained) options.log.warn(`niks3-hook did not get every path Nix built (${lost}); pushing the ${plural(built.length, "path")} now`);
  else options.log.info(`pushing the ${plural(built.length, "path")} Nix built`);
  const pushed = built.length > 0 ? await pushNow(built, job, options) : undefined;
  if (pushed?.error) options.log.warn(`the push of what Nix built failed: ${pushed.error}`);
  return {
    mode: "daemon",
    ok: (drained?.ok ?? true) && (pushed?.ok ?? true),
    uploaded: (drained?.uploaded ?? 0) + (pushed?.uploaded ?? 0),
    cached: pushed?.cached ?? 0,
    leftover: drained?.leftover,
    error: pushed?.error ?? drained?.error,
    runs: pushed?.runs ?? [],
  };
}

/** endUpload finishes what beginUpload started; never throws for upload failures (they are data). */
export async function endUpload(session: UploadSession, job: UploadJob, options: EndOptions): Promise<UploadOutcome | undefined> {
  try {
    if (session.state.mode === "daemon") return await finishHookUpload(session, job, options);
    if (session.state.mode === "store-diff") return await pushStoreDiff(session, job, options);
    return undefined;
  } finally {
    if (session.state.stateDir) rmSync(session.state.stateDir, { recursive: true, force: true });
  }
}

/**
 * abortUpload stops uploading when the job cannot go on (an internal error between beginUpload and
 * endUpload): niks3-hook gets 10 s to drain, then is killed, so that it never holds the job open.
 */
export async function abortUpload(session: UploadSession, log: Logger): Promise<void> {
  try {
    session.buildEnded();
    await session.daemonReady;
    const daemon = session.state.daemon;
    if (daemon && session.process) {
      await stopDaemon(daemon, { limitMs: 10_000, log, exited: session.process.exited });
    }
  } finally {
    if (session.state.stateDir) rmSync(session.state.stateDir, { recursive: true, force: true });
  }
}

/**
 * mergeOutcomes adds what was uploaded while (or right after) building to the push of the requested
 * closures, for the summary. That push finds the streamed paths already cached, so they count once.
 */
export function mergeOutcomes(stream: UploadOutcome | undefined, push: PushOutcome | undefined): PushOutcome | undefined {
  if (!stream || stream.mode === "none") return push;
  if (!push) return { ok: stream.ok, uploaded: stream.uploaded, cached: stream.cached, pinned: [], error: stream.error, runs: stream.runs };
  return {
    ok: stream.ok && push.ok,
    uploaded: stream.uploaded + push.uploaded,
    cached: Math.max(push.cached - stream.uploaded, stream.cached, 0),
    pinned: push.pinned,
    error: push.error ?? stream.error,
    runs: [...stream.runs, ...(push.runs ?? [])],
  };
}
