// What the setup component's before_script leaves for its after_script, which runs in a shell of
// its own: the upload state (a JSON file in the report dir; no secrets, only paths and a pid) and
// the env file the before_script sources so that the user's `nix` reads our nix.conf.

import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { UploadMode } from "./mode.ts";

export interface DaemonState {
  pid: number;
  startTime: string | undefined;
  niks3Hook: string;
  /** The argv it was started with (no secrets: the token is behind --auth-token-script). */
  args: string[];
  socket: string;
  dbPath: string;
  /** Its stdout and stderr, when it outlives the helper. */
  logFile: string | undefined;
}

export interface UploadState {
  schema: 1;
  mode: UploadMode;
  reason: string;
  startedAt: number;
  /** Private 0700 temp dir holding the token file, socket, queue, hook (and its records) and store listing. */
  stateDir: string | undefined;
  /** The token file's directory (inside stateDir), removed once uploading is over. */
  tokenDir: string | undefined;
  niks3: string | undefined;
  daemon: DaemonState | undefined;
  /** Why niks3-hook did not start, if it did not: what the hook recorded is pushed after the build. */
  daemonFailure: string | undefined;
  /** The store listing taken before the build (store-diff). */
  listing: string | undefined;
}

export const STATE_FILE = "upload-state.json";
export const ENV_FILE = "setup.env";

export function saveUploadState(reportDir: string, state: UploadState): string {
  mkdirSync(reportDir, { recursive: true });
  const path = join(reportDir, STATE_FILE);
  writeFileSync(path, JSON.stringify(state, null, 2) + "\n", { mode: 0o600 });
  return path;
}

/** loadUploadState returns the state the before_script saved, or undefined when there is none. */
export function loadUploadState(reportDir: string): UploadState | undefined {
  try {
    const state = JSON.parse(readFileSync(join(reportDir, STATE_FILE), "utf8")) as UploadState;
    return state.schema === 1 ? state : undefined;
  } catch {
    return undefined;
  }
}

export function removeUploadState(reportDir: string): void {
  rmSync(join(reportDir, STATE_FILE), { force: true });
}

/** shellQuote quotes a value for `export NAME='value'` in a POSIX shell. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** envFileText renders `export` lines; names must be shell identifiers. */
export function envFileText(vars: Record<string, string>): string {
  const lines = Object.entries(vars).map(([name, value]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`not a variable name: ${name}`);
    return `export ${name}=${shellQuote(value)}`;
  });
  return `# written by niks3-gitlab setup: sourced by the setup component's before_script\n${lines.join("\n")}\n`;
}

/** writeEnvFile writes the env file (always, possibly with no exports, so sourcing it never fails). */
export function writeEnvFile(reportDir: string, vars: Record<string, string>): string {
  mkdirSync(reportDir, { recursive: true });
  const path = join(reportDir, ENV_FILE);
  writeFileSync(path, envFileText(vars), { mode: 0o644 });
  return path;
}
