// Running niks3-hook serve: start it and wait (bounded) until its socket exists, since it binds late
// (after opening its queue and asking Nix for the store dir) and a `send` before that is lost; stop
// it with SIGTERM, which makes it drain its queue, within a time limit, with a heartbeat line, then
// SIGKILL its process group; and count what is left in its SQLite queue (`SELECT COUNT(*) FROM
// upload_queue`, as jcollie's Buildkite plugin does), because niks3-hook exits 0 either way.

import { existsSync, readFileSync, rmSync, statSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { plural, type Logger } from "../log.ts";
import { isProcessRunning, signalProcess, startBackground, type BackgroundProcess } from "../edges/proc.ts";

export interface DaemonHandle {
  pid: number;
  /** The process's start time (Linux), to tell it from a later process with a reused pid. */
  startTime: string | undefined;
}

export interface StartDaemonOptions {
  niks3Hook: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
  socket: string;
  /** Where its log goes when it must outlive the helper; otherwise lines go to onLine. */
  logFile?: string;
  detached: boolean;
  onLine?: (line: string) => void;
  /** How long to wait for the socket (niks3-action waits 10 s). */
  waitMs?: number;
}

export type DaemonReady = { ok: true } | { ok: false; why: string };
export type StartedDaemon = { ok: true; process: BackgroundProcess } | { ok: false; why: string };

export interface SpawnedDaemon {
  process: BackgroundProcess;
  /** Settles once the socket exists (ok), or the daemon exited or missed the deadline (killed then). */
  ready: Promise<DaemonReady>;
}

function isSocket(path: string): boolean {
  try {
    return statSync(path).isSocket();
  } catch {
    return false;
  }
}

/** fatalReason pulls the `error=` out of niks3's `Fatal error` line, or returns the last line. */
export function fatalReason(logText: string): string {
  const lines = logText.trim().split("\n").filter(Boolean);
  for (const line of [...lines].reverse()) {
    const match = /Fatal error"? error="((?:[^"\\]|\\.)*)"/.exec(line) ?? /Fatal error"? error=(\S+)/.exec(line);
    if (match?.[1]) return match[1].replace(/\\"/g, '"').replace(/\\n/g, " ").trim();
  }
  return lines.at(-1) ?? "no output";
}

/**
 * spawnDaemon starts niks3-hook serve and returns at once: `ready` says when its socket exists, or
 * why it never will. Nix can start evaluating meanwhile; the post-build-hook waits for the socket.
 */
export async function spawnDaemon(options: StartDaemonOptions): Promise<SpawnedDaemon> {
  // A socket left by a killed niks3-hook would look like this one's before it is bound.
  rmSync(options.socket, { force: true });
  const collected: string[] = [];
  const proc = await startBackground(options.niks3Hook, options.args, {
    cwd: options.cwd,
    env: options.env,
    detached: options.detached,
    ...(options.logFile !== undefined
      ? { logFile: options.logFile }
      : {
          onStderrLine: (line: string) => {
            collected.push(line);
            options.onLine?.(line);
          },
        }),
  });
  let exited = false;
  void proc.exited.then(() => (exited = true));
  const waitMs = options.waitMs ?? 10_000;
  const ready = (async (): Promise<DaemonReady> => {
    const deadline = Date.now() + waitMs;
    while (!isSocket(options.socket)) {
      if (exited) {
        const text = options.logFile !== undefined && existsSync(options.logFile) ? readFileSync(options.logFile, "utf8") : collected.join("\n");
        return { ok: false, why: `niks3-hook serve exited: ${fatalReason(text)}` };
      }
      if (Date.now() > deadline) {
        proc.signalGroup("SIGKILL");
        return { ok: false, why: `niks3-hook serve did not open its socket within ${Math.round(waitMs / 1000)}s` };
      }
      await Promise.race([sleep(10), proc.exited]);
    }
    return { ok: true };
  })();
  return { process: proc, ready };
}

/** startDaemon starts niks3-hook serve and resolves once its socket exists, or says why it did not. */
export async function startDaemon(options: StartDaemonOptions): Promise<StartedDaemon> {
  const spawned = await spawnDaemon(options);
  const ready = await spawned.ready;
  return ready.ok ? { ok: true, process: spawned.process } : ready;
}

/** formatSeconds: 75 → "1m15s", 9 → "9s". */
export function formatSeconds(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  return s >= 60 ? `${Math.floor(s / 60)}m${s % 60 ? `${s % 60}s` : ""}` : `${s}s`;
}

export interface StopDaemonOptions {
  /** How long the drain may take before the daemon is killed. */
  limitMs: number;
  heartbeatMs?: number;
  log: Logger;
  /** Queue size, if it can be read: the daemon is left to empty it before it is told to stop. */
  queued?: () => Promise<number | undefined>;
  /**
   * Its last upload failed, so it is waiting out a backoff (up to 15 min): waiting for an empty
   * queue is over, SIGTERM makes it retry at once (its drain).
   */
  backingOff?: () => boolean;
  /** A daemon this process started: its exit, so no polling is needed. */
  exited?: Promise<unknown>;
}

export interface StopResult {
  /** It exited on its own within the limit (drained, or gave up on the drain). */
  exited: boolean;
  waitedMs: number;
}

/**
 * stopDaemon lets the daemon finish its queue, then sends SIGTERM (niks3-hook drains what is left
 * and exits), all within the limit and with a heartbeat line, then kills its process group. SIGTERM
 * is held back while uploads progress because it cancels the upload in flight, which niks3-hook logs
 * as failed before it uploads the same paths again in its drain.
 */
export async function stopDaemon(handle: DaemonHandle, options: StopDaemonOptions): Promise<StopResult> {
  const started = Date.now();
  let gone = false;
  void options.exited?.then(() => (gone = true));
  const running = async () => !gone && (await isProcessRunning(handle.pid, handle.startTime));
  const heartbeatMs = options.heartbeatMs ?? 30_000;
  let nextBeat = started + heartbeatMs;
  const beat = async (now: number): Promise<void> => {
    if (now < nextBeat) return;
    const queued = await options.queued?.();
    const what = queued === undefined ? "" : `: ${plural(queued, "path")} queued`;
    options.log.info(`still uploading (${formatSeconds((now - started) / 1000)})${what}; giving up in ${formatSeconds((options.limitMs - (now - started)) / 1000)}`);
    nextBeat += heartbeatMs;
  };
  // A daemon this process started wakes the wait the moment it exits.
  const pause = (now: number) => Promise.race([sleep(Math.min(50, Math.max(5, options.limitMs - (now - started)))), ...(options.exited ? [options.exited] : [])]);

  while (options.queued && Date.now() - started < options.limitMs) {
    if (!(await running())) return { exited: true, waitedMs: Date.now() - started };
    const queued = await options.queued();
    if (queued === undefined || queued === 0 || options.backingOff?.()) break;
    await beat(Date.now());
    await pause(Date.now());
  }
  // Only the daemon: a token script it is running at this moment must be allowed to finish.
  if (!signalProcess(handle.pid, "SIGTERM")) return { exited: true, waitedMs: Date.now() - started };
  for (;;) {
    if (!(await running())) return { exited: true, waitedMs: Date.now() - started };
    const now = Date.now();
    if (now - started >= options.limitMs) break;
    await beat(now);
    await pause(now);
  }
  signalProcess(handle.pid, "SIGKILL", true);
  signalProcess(handle.pid, "SIGKILL");
  return { exited: false, waitedMs: Date.now() - started };
}

/** muteSqliteWarning hides node's one-time "SQLite is an experimental feature" line from the job log. */
function muteSqliteWarning(): () => void {
  const original = process.emitWarning;
  const patched = (warning: string | Error, ...rest: unknown[]): void => {
    const text = typeof warning === "string" ? warning : warning.message;
    if (/SQLite is an experimental feature/.test(text)) return;
    (original as (...args: unknown[]) => void).call(process, warning, ...rest);
  };
  process.emitWarning = patched as typeof process.emitWarning;
  return () => {
    process.emitWarning = original;
  };
}

/** countQueue counts niks3-hook's queue; undefined when it cannot be read (no node:sqlite, no file). */
export async function countQueue(dbPath: string): Promise<number | undefined> {
  if (!existsSync(dbPath)) return undefined;
  const restore = muteSqliteWarning();
  try {
    const { DatabaseSync } = await import("node:sqlite");
    const db = new DatabaseSync(dbPath, { readOnly: true });
    try {
      const row = db.prepare("SELECT COUNT(*) AS n FROM upload_queue").get() as { n: number | bigint } | undefined;
      return row === undefined ? undefined : Number(row.n);
    } finally {
      db.close();
    }
  } catch {
    return undefined;
  } finally {
    restore();
  }
}
