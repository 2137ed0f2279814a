// The pieces of daemon mode that are files and argv: the post-build-hook Nix runs after each build,
// the nix.conf that registers it, and `niks3-hook serve`'s argv. Pure except for the file helpers
// (builtPaths also asks nix-store).
//
// The hook is a fixed script (never generated from data): it reads the absolute paths it needs from
// a file beside it, because Nix may run it with a stripped environment (a daemon passes only
// DRV_PATH and OUT_PATHS). Nix 2.8 passes an empty OUT_PATHS: the hook then records the derivation,
// and asks `nix-store -q --outputs` (works on every Nix) only to send; the helper reads the outputs
// of what was only recorded in one call. It always exits 0: when a post-build-hook fails, Nix
// builds nothing more.
// And it returns at once: Nix runs the hook synchronously and builds nothing else until it exits
// (the Nix manual warns of exactly this), so the send runs in the background.
//
// Every build is recorded first (its paths in built.txt, or its derivation in built-drvs.txt).
// Where niks3-hook is not listening yet (the ci command starts it once the build has run for a
// second and built something, so a quick job never starts it), the hook only records: the helper
// sends what was recorded once the socket exists. A build recorded before the hook looked for the
// socket is either sent by the hook or read by the helper after the socket appeared; sent twice at
// worst, which niks3-hook's queue absorbs.

import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runProcess } from "../edges/proc.ts";

/** The files the hook shares with the helper, in the state dir beside it. */
export const HOOK_FILES = {
  conf: "post-build-hook.conf",
  /** Every path the hook was given, one a line. */
  built: "built.txt",
  /** The derivations built where Nix gave no OUT_PATHS (2.8), one a line. */
  builtDrvs: "built-drvs.txt",
  /** What the background sends printed (niks3-hook send prints only errors). */
  sendLog: "send.log",
  /** One marker per send still running. */
  pending: "pending",
} as const;

export const HOOK_SCRIPT = `#!/bin/sh
# niks3-gitlab post-build-hook: records the paths Nix just built and hands them to niks3-hook
# serve, which uploads them to the niks3 cache. Reads its settings from post-build-hook.conf beside
# it (three lines: niks3-hook, nix-store, socket). Nix builds nothing else until this exits, so the
# send runs in the background: its marker in pending/ lives until it is done, and the helper waits
# for pending/ to empty (or hold only dead sends) before it stops niks3-hook. Without a socket yet,
# it only records: the helper sends what it recorded once niks3-hook listens (and pushes it itself
# if niks3-hook never does, or a send failed). Never fails: a failing hook would stop Nix building.
set -f
dir="\${0%/*}"
{ read -r niks3_hook; read -r nix_store; read -r socket; } < "$dir/${HOOK_FILES.conf}" || exit 0
if [ -n "$OUT_PATHS" ]; then
  printf '%s\\n' $OUT_PATHS >> "$dir/${HOOK_FILES.built}"
  [ -S "$socket" ] || exit 0
else
  # Old Nix: the derivation stands for its outputs; nix-store is asked for them only to send now.
  [ -n "$DRV_PATH" ] || exit 0
  printf '%s\\n' "$DRV_PATH" >> "$dir/${HOOK_FILES.builtDrvs}"
  [ -S "$socket" ] && [ -n "$nix_store" ] || exit 0
  OUT_PATHS=$("$nix_store" -q --outputs "$DRV_PATH" 2>/dev/null)
  [ -n "$OUT_PATHS" ] || exit 0
fi
pending=$(mktemp "$dir/${HOOK_FILES.pending}/send.XXXXXX" 2>/dev/null) || pending=
(
  # The marker holds this subshell's pid, then the send's: a send killed with the job's other
  # background processes is not waited for, and a cancelled job stops both.
  [ -z "$pending" ] || sh -c 'echo "$PPID"' > "$pending"
  OUT_PATHS=$OUT_PATHS "$niks3_hook" send --socket "$socket" &
  [ -z "$pending" ] || echo "$!" >> "$pending"
  wait "$!"
  [ -z "$pending" ] || rm -f "$pending"
) >> "$dir/${HOOK_FILES.sendLog}" 2>&1 < /dev/null &
exit 0
`;

export interface HookFiles {
  niks3Hook: string;
  /** Absolute nix-store, for Nix versions that leave OUT_PATHS empty; "" when not found. */
  nixStore: string;
  socket: string;
}

/** writeHookFiles writes the hook and its settings into `dir` and returns the hook's path. */
export function writeHookFiles(dir: string, files: HookFiles): string {
  const lines = [files.niks3Hook, files.nixStore, files.socket];
  if (lines.some((line) => line.includes("\n"))) throw new Error("a path for the post-build-hook contains a newline");
  const hook = join(dir, "post-build-hook");
  mkdirSync(join(dir, HOOK_FILES.pending), { recursive: true });
  writeFileSync(join(dir, HOOK_FILES.conf), lines.join("\n") + "\n", { mode: 0o644 });
  writeFileSync(hook, HOOK_SCRIPT, { mode: 0o755 });
  chmodSync(hook, 0o755);
  return hook;
}

/** sendMarkers: the pids in each running send's marker (its subshell's, then the send's). */
function sendMarkers(dir: string): number[][] {
  let markers: string[];
  try {
    markers = readdirSync(join(dir, HOOK_FILES.pending));
  } catch {
    return [];
  }
  return markers.map((marker) =>
    readHookFile(join(dir, HOOK_FILES.pending), marker)
      .split("\n")
      .map((line) => Number.parseInt(line, 10))
      .filter((pid) => Number.isInteger(pid) && pid > 0),
  );
}

/** pendingSends lists the hook's sends still running, by pid (undefined: not written yet). */
export function pendingSends(dir: string): (number | undefined)[] {
  return sendMarkers(dir).map((pids) => pids[0]);
}

/** pendingSendPids: every process of the running sends, for a cancelled job to stop. */
export function pendingSendPids(dir: string): number[] {
  return sendMarkers(dir).flat();
}

/** readHookFile reads one of the hook's files; "" when it does not exist. */
function readHookFile(dir: string, name: string): string {
  try {
    return readFileSync(join(dir, name), "utf8");
  } catch {
    return "";
  }
}

/**
 * builtPaths: the paths the hook recorded, in order, each once; the outputs of the derivations it
 * recorded (Nix 2.8) are asked of the nix-store in its settings, in one call per thousand. The files
 * are read during the call itself, so `dir` may be removed while Nix answers.
 */
export async function builtPaths(dir: string, env: NodeJS.ProcessEnv): Promise<string[]> {
  const lines = (name: string) => readHookFile(dir, name).split("\n").filter(Boolean);
  const paths = lines(HOOK_FILES.built);
  const drvs = [...new Set(lines(HOOK_FILES.builtDrvs))];
  const outputs: string[] = [];
  if (drvs.length > 0) {
    const nixStore = readHookFile(dir, HOOK_FILES.conf).split("\n")[1] || "nix-store";
    for (let i = 0; i < drvs.length; i += 1000) {
      const result = await runProcess(nixStore, ["-q", "--outputs", ...drvs.slice(i, i + 1000)], { env });
      if (result.exitCode === 0) outputs.push(...result.stdout.split("\n").filter(Boolean));
    }
  }
  return [...new Set([...paths, ...outputs])];
}

/** sendErrors: what the sends printed (only errors: the paths of such a send were lost). */
export function sendErrors(dir: string): string[] {
  return [...new Set(readHookFile(dir, HOOK_FILES.sendLog).split("\n").map((line) => line.trim()).filter(Boolean))];
}

/** hasBuilt: the hook has recorded at least one build. */
export function hasBuilt(dir: string): boolean {
  return existsSync(join(dir, HOOK_FILES.built)) || existsSync(join(dir, HOOK_FILES.builtDrvs));
}

/** recordSendOutput adds what a send the helper ran printed to the hook's send log. */
export function recordSendOutput(dir: string, text: string): void {
  if (text.trim() !== "") writeFileSync(join(dir, HOOK_FILES.sendLog), text.endsWith("\n") ? text : `${text}\n`, { flag: "a" });
}

/** hookConfText is the nix.conf that makes Nix run the hook. */
export function hookConfText(hookPath: string): string {
  return `# written by niks3-gitlab: upload each build's outputs as soon as it finishes\npost-build-hook = ${hookPath}\n`;
}

/**
 * shellWord quotes a word for niks3's --auth-token-script, which splits POSIX-like (quotes and
 * backslashes, no expansion) and execs the result without a shell.
 */
export function shellWord(word: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** tokenScriptCommand: niks3 runs this (our `token-script` command) whenever it needs the token. */
export function tokenScriptCommand(helper: readonly string[], tokenFile: string): string {
  return [...helper, "token-script", "--file", tokenFile].map(shellWord).join(" ");
}

export interface ServeArgsInput {
  serverUrl: string;
  tokenScript: string;
  socket: string;
  dbPath: string;
  /** Seconds; 0 keeps the daemon until it is told to stop. */
  idleExitSeconds: number;
  debug: boolean;
}

/** niks3HookServeArgs builds `niks3-hook serve` argv (Go flags, so all flags and no positionals). */
export function niks3HookServeArgs(input: ServeArgsInput): string[] {
  return [
    "serve",
    "--server-url",
    input.serverUrl,
    "--auth-token-script",
    input.tokenScript,
    "--socket",
    input.socket,
    "--db-path",
    input.dbPath,
    "--idle-exit-timeout",
    input.idleExitSeconds > 0 ? `${Math.ceil(input.idleExitSeconds)}s` : "0",
    ...(input.debug ? ["--debug"] : []),
  ];
}
