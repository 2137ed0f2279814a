// Listing and deleting pins with the niks3 CLI (`niks3 pins list|delete`, niks3 ≥ 1.7.0): argv
// builders and the list parser (pure), plus thin runners. As with push, the token reaches niks3 as
// --auth-token-path to a 0600 file. The subcommand is argv[1..2] and flags follow it (Go flag rules).

import type { Logger } from "../log.ts";
import { runProcess } from "../edges/proc.ts";
import { niks3CommonArgs, parseNiks3Log } from "./push.ts";

export interface PinsCallInput {
  serverUrl: string;
  tokenPath: string;
  debug?: boolean;
}

export function niks3PinsListArgs(input: PinsCallInput): string[] {
  return ["pins", "list", ...niks3CommonArgs(input), "--json"];
}

export function niks3PinsDeleteArgs(input: PinsCallInput & { name: string }): string[] {
  return ["pins", "delete", ...niks3CommonArgs(input), input.name];
}

export interface PinInfo {
  name: string;
  storePath: string;
}

/** parsePinList reads `niks3 pins list --json`: an array of {name, store_path, …}, or null when there are none. */
export function parsePinList(text: string): PinInfo[] {
  const data: unknown = JSON.parse(text);
  if (data === null) return [];
  if (!Array.isArray(data)) throw new Error("niks3 pins list --json did not print an array");
  return data.flatMap((entry: { name?: unknown; store_path?: unknown }) =>
    typeof entry.name === "string" ? [{ name: entry.name, storePath: typeof entry.store_path === "string" ? entry.store_path : "" }] : [],
  );
}

export interface PinsRunOptions extends PinsCallInput {
  niks3: string;
  env: NodeJS.ProcessEnv;
  cwd: string;
  log: Logger;
}

export type PinsResult<T> = { ok: true; value: T } | { ok: false; error: string };

function failure(stderr: string, exitCode: number): { ok: false; error: string } {
  const error = parseNiks3Log(stderr).error ?? (stderr.trimEnd().split("\n").at(-1) || `niks3 exited with code ${exitCode}`);
  return { ok: false, error };
}

/** listPins returns every pin on the server. */
export async function listPins(options: PinsRunOptions): Promise<PinsResult<PinInfo[]>> {
  const result = await runProcess(options.niks3, niks3PinsListArgs(options), { cwd: options.cwd, env: options.env });
  if (result.exitCode !== 0) {
    for (const line of result.stderr.trimEnd().split("\n").filter(Boolean)) options.log.raw(`${line}\n`);
    return failure(result.stderr, result.exitCode);
  }
  try {
    return { ok: true, value: parsePinList(result.stdout) };
  } catch (error) {
    return { ok: false, error: (error as Error).message };
  }
}

/** deletePin deletes one pin; niks3's log line goes to the job log. */
export async function deletePin(name: string, options: PinsRunOptions): Promise<PinsResult<undefined>> {
  const result = await runProcess(options.niks3, niks3PinsDeleteArgs({ ...options, name }), {
    cwd: options.cwd,
    env: options.env,
    onStderrLine: (line) => options.log.raw(`${line}\n`),
  });
  return result.exitCode === 0 ? { ok: true, value: undefined } : failure(result.stderr, result.exitCode);
}
