// The one place that spawns processes. Arguments go as argv (no shell), secrets never do: a token
// travels in a 0600 file. Every child is tracked so that a cancelled job (SIGTERM) ends them too.

import { execa } from "execa";
import { isCancelled, trackChild } from "./children.ts";

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Called with each line the child writes to stderr (for streaming into the job log). */
  onStderrLine?: (line: string) => void;
  /** Called with each line the child writes to stdout. Stdout is still collected. */
  onStdoutLine?: (line: string) => void;
  /** Kill the child (SIGTERM, then SIGKILL after 5 s) when it runs longer than this. */
  timeoutMs?: number;
  input?: string;
}

export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** The signal that ended the child, if one did. */
  signal: string | undefined;
}

/** runProcess runs a command to completion and returns its exit code instead of throwing on failure. */
export async function runProcess(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  if (isCancelled()) return { exitCode: 143, stdout: "", stderr: "", timedOut: false, signal: "SIGTERM" };
  const child = execa(command, args, {
    cwd: options.cwd,
    env: options.env,
    extendEnv: options.env === undefined,
    reject: false,
    stripFinalNewline: false,
    ...(options.input === undefined ? { stdin: "ignore" as const } : { input: options.input }),
    ...(options.timeoutMs === undefined ? {} : { timeout: options.timeoutMs }),
    forceKillAfterDelay: 5_000,
    lines: false,
  });
  const untrack = trackChild(() => child.kill("SIGTERM"), child);
  forwardLines(child.stderr, options.onStderrLine);
  forwardLines(child.stdout, options.onStdoutLine);
  try {
    const result = await child;
    const spawnFailed = result.failed && result.exitCode === undefined && !result.timedOut && result.signal === undefined;
    return {
      exitCode: result.exitCode ?? (spawnFailed ? 127 : 1),
      stdout: String(result.stdout ?? ""),
      stderr: spawnFailed && !result.stderr ? `${command}: ${result.shortMessage}` : String(result.stderr ?? ""),
      timedOut: result.timedOut,
      signal: result.signal ?? undefined,
    };
  } finally {
    untrack();
  }
}

function forwardLines(stream: NodeJS.ReadableStream | null, onLine: ((line: string) => void) | undefined): void {
  if (!stream || !onLine) return;
  let pending = "";
  stream.on("data", (chunk: Buffer | string) => {
    pending += chunk.toString();
    const lines = pending.split("\n");
    pending = lines.pop() ?? "";
    for (const line of lines) onLine(line);
  });
  stream.on("end", () => {
    if (pending) onLine(pending);
    pending = "";
  });
}

// Background processes (niks3-hook serve): started in a process group of their own so that a drain
// that runs out of time can be ended with everything it started (its token script), and, when
// `detached`, able to outlive the helper (the setup component's before_script) with its output in
// a log file. Stdout and stderr never stay attached to the job log's pipe when detached: the runner
// waits for that pipe to close.

export interface BackgroundOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Append stdout and stderr to this file instead of piping them. */
  logFile?: string;
  /** Called with each stderr line (when not writing to a log file). */
  onStderrLine?: (line: string) => void;
  /** Let the process outlive the helper: not tracked for cancellation, not waited for. */
  detached?: boolean;
}

export interface BackgroundProcess {
  pid: number;
  /** Resolves when the process has ended. */
  exited: Promise<{ exitCode: number | undefined; signal: string | undefined }>;
  /** signalGroup sends a signal to the process group (the process and whatever it started). */
  signalGroup(signal: NodeJS.Signals): void;
}

/** startBackground starts a process in its own process group and returns at once. */
export async function startBackground(command: string, args: readonly string[], options: BackgroundOptions = {}): Promise<BackgroundProcess> {
  const { spawn } = await import("node:child_process");
  const { openSync, closeSync } = await import("node:fs");
  const out = options.logFile === undefined ? undefined : openSync(options.logFile, "a", 0o600);
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env,
    detached: true,
    stdio: ["ignore", out ?? "ignore", out ?? "pipe"],
  });
  if (out !== undefined) closeSync(out);
  const exited = new Promise<{ exitCode: number | undefined; signal: string | undefined }>((resolve) => {
    child.once("error", () => resolve({ exitCode: 127, signal: undefined }));
    child.once("exit", (code, signal) => resolve({ exitCode: code ?? undefined, signal: signal ?? undefined }));
  });
  forwardLines(child.stderr, options.onStderrLine);
  const signalGroup = (signal: NodeJS.Signals): void => {
    if (child.pid !== undefined) signalProcess(child.pid, signal, true);
  };
  if (options.detached) {
    child.unref();
  } else {
    const untrack = trackChild(() => signalGroup("SIGTERM"), exited, () => signalGroup("SIGKILL"));
    void exited.then(untrack);
  }
  return { pid: child.pid ?? -1, exited, signalGroup };
}

/** signalProcess sends a signal to a pid (or its process group); false when there was no such process. */
export function signalProcess(pid: number, signal: NodeJS.Signals | 0, group = false): boolean {
  try {
    process.kill(group ? -pid : pid, signal);
    return true;
  } catch {
    return false;
  }
}

/**
 * processStartTime reads a process's start time (field 22 of /proc/<pid>/stat) so that a pid
 * recorded by one helper run can be recognised by the next and not confused with a reused pid.
 * Undefined where there is no /proc (macOS) or no such process.
 */
export async function processStartTime(pid: number): Promise<string | undefined> {
  const stat = await readProcStat(pid);
  return stat?.fields[19];
}

/**
 * isProcessRunning: the process exists, is not a zombie (a container whose PID 1 does not reap
 * leaves ended processes as zombies, niks3-action#18), and, when given, started at `startTime`.
 */
export async function isProcessRunning(pid: number, startTime?: string): Promise<boolean> {
  if (!signalProcess(pid, 0)) return false;
  const stat = await readProcStat(pid);
  if (stat === undefined) return true; // no /proc: kill(0) is all we can know
  if (stat.fields[0] === "Z" || stat.fields[0] === "X") return false;
  return startTime === undefined || stat.fields[19] === startTime;
}

/** readProcStat splits /proc/<pid>/stat after the command name, which may itself contain spaces. */
async function readProcStat(pid: number): Promise<{ fields: string[] } | undefined> {
  try {
    const { readFile } = await import("node:fs/promises");
    const text = await readFile(`/proc/${pid}/stat`, "utf8");
    return { fields: text.slice(text.lastIndexOf(")") + 2).trim().split(" ") };
  } catch {
    return undefined;
  }
}
