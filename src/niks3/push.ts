// Pushing with the niks3 CLI: argv builder and log parser (pure) plus runPushes. The token reaches
// niks3 as --auth-token-path to a 0600 file, never as argv. niks3 prints nothing on stdout; what it
// did is read from its slog lines on stderr, which are streamed into the job log.

import type { Logger } from "../log.ts";
import { runProcess } from "../edges/proc.ts";

export interface PushArgsInput {
  serverUrl: string;
  tokenPath: string;
  paths: readonly string[];
  pin?: string | undefined;
  debug?: boolean;
}

/**
 * niks3CommonArgs: the flags every niks3 subcommand takes. The token goes as a file path, never as
 * a value; --debug only when asked, since niks3 then logs HTTP headers, the bearer token included.
 */
export function niks3CommonArgs(input: { serverUrl: string; tokenPath: string; debug?: boolean | undefined }): string[] {
  return ["--server-url", input.serverUrl, "--auth-token-path", input.tokenPath, ...(input.debug ? ["--debug"] : [])];
}

/** niks3PushArgs builds `niks3 push` argv. Go's flag package stops at the first path, so flags go first. */
export function niks3PushArgs(input: PushArgsInput): string[] {
  return ["push", ...niks3CommonArgs(input), ...(input.pin ? ["--pin", input.pin] : []), ...input.paths];
}

export interface PushLog {
  /** Paths niks3 uploaded (N in "Uploading N paths … (M already cached)"), summed over closures. */
  uploaded: number;
  /** Paths the cache already had. */
  cached: number;
  pinned: string[];
  /** The `error=` of niks3's `Fatal error` line. */
  error: string | undefined;
}

const UPLOADING = /msg="Uploading (\d+) paths to [^"]*\((\d+) already cached\)"/;
const PINNED = /msg="Created pin" name=(\S+)/;
const FATAL = /msg="Fatal error" error="((?:[^"\\]|\\.)*)"/;

/** parseNiks3Log reads niks3's stderr (slog text format). */
export function parseNiks3Log(text: string): PushLog {
  const result: PushLog = { uploaded: 0, cached: 0, pinned: [], error: undefined };
  for (const line of text.split("\n")) {
    const uploading = UPLOADING.exec(line);
    if (uploading) {
      result.uploaded += Number(uploading[1]);
      result.cached += Number(uploading[2]);
    }
    const pinned = PINNED.exec(line);
    if (pinned?.[1]) result.pinned.push(pinned[1].replace(/^"|"$/g, ""));
    const fatal = FATAL.exec(line);
    if (fatal?.[1] !== undefined) result.error = fatal[1].replace(/\\n/g, " ").replace(/\\"/g, '"').trim();
  }
  return result;
}

/** pushFailureHint adds the next step for failures whose cause is usually on the user's side. */
export function pushFailureHint(error: string): string | undefined {
  if (/server returned 401/.test(error)) {
    return (
      "the server refused the token (401): check that the component input audience equals the server's " +
      "oidc_audience, that the server's OIDC provider issuer equals CI_SERVER_URL, and that the job's claims " +
      "match its bound_claims (niks3-gitlab doctor checks the first two)"
    );
  }
  if (/server returned 403/.test(error)) return "the server refused the request (403): check its bound claims";
  return undefined;
}

export interface PushItem {
  paths: string[];
  pin: string | undefined;
}

/** PushItems: the pushes to run, known at once or as they become known. */
export type PushItems = Iterable<PushItem> | AsyncIterable<PushItem>;

/** PushRun: what one `niks3 push` did, from its "Uploading N paths … (M already cached)" line. */
export interface PushRun {
  paths: string[];
  pin: string | undefined;
  uploaded: number;
  cached: number;
  ok: boolean;
}

export interface PushOutcome {
  ok: boolean;
  uploaded: number;
  cached: number;
  pinned: string[];
  /** One line saying why the push failed. */
  error: string | undefined;
  /** Each `niks3 push` that ran, in order (for the summary's per-push counts). */
  runs?: PushRun[];
}

export interface PushRunOptions {
  niks3: string;
  serverUrl: string;
  tokenPath: string;
  debug: boolean;
  timeoutSeconds: number;
  env: NodeJS.ProcessEnv;
  cwd: string;
  log: Logger;
}

/**
 * runPushes runs one `niks3 push` per item (niks3 allows one path per --pin), in order, as the items
 * come, within one time limit. It stops at the first failure: the next push would most likely fail
 * the same way.
 */
export async function runPushes(items: PushItems, options: PushRunOptions): Promise<PushOutcome> {
  const outcome: PushOutcome = { ok: true, uploaded: 0, cached: 0, pinned: [], error: undefined, runs: [] };
  const deadline = Date.now() + options.timeoutSeconds * 1000;
  for await (const item of items) {
    if (item.paths.length === 0) continue;
    const remaining = deadline - Date.now();
    if (remaining <= 0) {
      return { ...outcome, ok: false, error: `the push did not finish within ${options.timeoutSeconds}s (push_timeout)` };
    }
    const args = niks3PushArgs({ ...options, paths: item.paths, pin: item.pin });
    const result = await runProcess(options.niks3, args, {
      cwd: options.cwd,
      env: options.env,
      timeoutMs: remaining,
      onStderrLine: (line) => options.log.raw(`${line}\n`),
    });
    const parsed = parseNiks3Log(result.stderr);
    outcome.uploaded += parsed.uploaded;
    outcome.cached += parsed.cached;
    outcome.pinned.push(...parsed.pinned);
    const runOk = !result.timedOut && result.exitCode === 0;
    outcome.runs?.push({ paths: [...item.paths], pin: item.pin, uploaded: parsed.uploaded, cached: parsed.cached, ok: runOk });
    if (result.timedOut) {
      return { ...outcome, ok: false, error: `the push did not finish within ${options.timeoutSeconds}s (push_timeout)` };
    }
    if (result.exitCode !== 0) {
      const why = parsed.error ?? (logLastLine(result.stderr) || `niks3 exited with code ${result.exitCode}`);
      return { ...outcome, ok: false, error: why };
    }
  }
  return outcome;
}

function logLastLine(text: string): string {
  return text.trimEnd().split("\n").at(-1) ?? "";
}
