// The pieces of daemon mode that are files and argv: the post-build-hook Nix runs after each build,
// the nix.conf that registers it, and `niks3-hook serve`'s argv. Pure except for writeHookFiles.
//
// The hook is a fixed script (never generated from data): it reads the absolute paths it needs from
// a file beside it, because Nix may run it with a stripped environment (a daemon passes only
// DRV_PATH and OUT_PATHS). Nix 2.8 passes an empty OUT_PATHS, so it asks `nix-store -q --outputs`
// (works on every Nix). It always exits 0: when a post-build-hook fails, Nix builds nothing more.

import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const HOOK_SCRIPT = `#!/bin/sh
# niks3-gitlab post-build-hook: hands the paths Nix just built to niks3-hook serve, which uploads
# them to the niks3 cache. Reads its settings from post-build-hook.conf beside it (three lines:
# niks3-hook, nix-store, socket). Never fails: a failing hook would stop Nix from building more.
conf="\${0%/*}/post-build-hook.conf"
{ read -r niks3_hook; read -r nix_store; read -r socket; } < "$conf" || exit 0
if [ -z "$OUT_PATHS" ] && [ -n "$DRV_PATH" ] && [ -n "$nix_store" ]; then
  OUT_PATHS=$("$nix_store" -q --outputs "$DRV_PATH" 2>/dev/null)
fi
[ -n "$OUT_PATHS" ] || exit 0
OUT_PATHS=$OUT_PATHS "$niks3_hook" send --socket "$socket"
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
  writeFileSync(join(dir, "post-build-hook.conf"), lines.join("\n") + "\n", { mode: 0o644 });
  writeFileSync(hook, HOOK_SCRIPT, { mode: 0o755 });
  chmodSync(hook, 0o755);
  return hook;
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
