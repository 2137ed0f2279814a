// The one place that spawns processes. Arguments go as argv (no shell), secrets never do: a token
// travels in a 0600 file. Every child is tracked so that a cancelled job (SIGTERM) ends them too.

import { execa } from "execa";
import { trackChild } from "./children.ts";

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
  const untrack = trackChild(() => child.kill("SIGTERM"));
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
