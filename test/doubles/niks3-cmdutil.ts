// What the niks3 and niks3-hook doubles share, as cmd/niks3 and cmd/niks3-hook share cmdutil: the
// common and TLS flags, flag parsing with -help, the client's setup steps, and main: "Fatal error"
// on any error, and one JSON line per run in the double's call log with --auth-token redacted.

import { appendFileSync } from "node:fs";
import { flagBool, flagString, FlagError, parseGoFlags, type FlagDef, type ParsedFlags } from "./go-flag.ts";
import { goDefaultLogLine, slogTextLine, writeStderrLine } from "./go-format.ts";
import { makeLogger, type Client, type Logger } from "./niks3-http.ts";
import { resolveTokenSource, type TokenSource, type TokenSourceKind } from "./niks3-token.ts";

/** ExitNow ends the run with a code after the caller printed what it had to print. */
export class ExitNow extends Error {
  readonly code: number;
  constructor(code: number) {
    super(`exit ${code}`);
    this.code = code;
  }
}

/** What main reports about this run: the logger once set up, and which token source was used. */
export const runState: { logger: Logger | null; tokenSourceKind: TokenSourceKind | "none" | null } = { logger: null, tokenSourceKind: null };

export const COMMON_FLAGS: Record<string, FlagDef> = {
  "server-url": { kind: "string", def: process.env.NIKS3_SERVER_URL ?? "" },
  "auth-token": { kind: "string", def: "" },
  "auth-token-path": { kind: "string", def: "" },
  "auth-token-script": { kind: "string", def: "" },
  debug: { kind: "bool", def: false },
  help: { kind: "bool", def: false },
  h: { kind: "bool", def: false },
};

export const TLS_FLAGS: Record<string, FlagDef> = {
  "client-cert": { kind: "string", def: "" },
  "client-key": { kind: "string", def: "" },
  "ca-cert": { kind: "string", def: "" },
};

export function printHelp(text: string): never {
  process.stderr.write(text);
  throw new ExitNow(0);
}

/** parseFlags parses with Go's flag rules; -help/-h (undefined) prints `help` and exits 0. */
export function parseFlags(defs: Record<string, FlagDef>, args: string[], help: string): ParsedFlags {
  try {
    return parseGoFlags(defs, args);
  } catch (err) {
    if (err instanceof FlagError && err.help) printHelp(help);
    throw new Error(`parsing flags: ${(err as Error).message}`);
  }
}

/** setupLogger mirrors SetupLogger + RequireServerURL, and warns about --auth-token. */
export function setupLogger(p: ParsedFlags): { log: Logger; serverUrl: string } {
  const log = makeLogger(flagBool(p, "debug"));
  runState.logger = log;
  const serverUrl = flagString(p, "server-url");
  if (serverUrl === "") throw new Error("server URL is required (use --server-url or NIKS3_SERVER_URL env var)");
  if (p.visited.has("auth-token")) {
    log.log("WARN", "--auth-token is deprecated: tokens on the command line are visible in /proc and shell history; use --auth-token-path or --auth-token-script");
  }
  return { log, serverUrl };
}

/** tokenSourceOf mirrors CommonFlags.TokenSource. */
export function tokenSourceOf(p: ParsedFlags): TokenSource {
  const tokenSource = resolveTokenSource(
    { authToken: flagString(p, "auth-token"), authTokenPath: flagString(p, "auth-token-path"), authTokenScript: flagString(p, "auth-token-script") },
    process.env,
  );
  runState.tokenSourceKind = tokenSource.kind;
  return tokenSource;
}

/** rejectTls: TLS Configure, which the doubles do not support. */
export function rejectTls(p: ParsedFlags): void {
  if (flagString(p, "client-cert") !== "" || flagString(p, "client-key") !== "" || flagString(p, "ca-cert") !== "") {
    throw new Error("setting up client TLS: mTLS is not supported by the niks3 test double");
  }
}

/** newClient mirrors NewClient; NIKS3_DOUBLE_RETRY_BASE_MS shortens the 100 ms retry backoff. */
export function newClient(serverUrl: string, tokenSource: TokenSource, log: Logger, signal: AbortSignal): Client {
  let baseUrl: URL;
  try {
    baseUrl = new URL(serverUrl);
  } catch {
    throw new Error(`creating client: parsing server URL: parse ${JSON.stringify(serverUrl)}: invalid URI for request`);
  }
  const retryBaseMs = Number(process.env.NIKS3_DOUBLE_RETRY_BASE_MS ?? "100");
  return { baseUrl, tokenSource, log, signal, retryBaseMs: Number.isFinite(retryBaseMs) ? retryBaseMs : 100, maxRetries: 5 };
}

/**
 * dispatch runs the subcommand argv[0] names with the rest of argv; none, or an unknown one, is an
 * error after `usage` (niks3 prints no usage for an unknown one: `usageOnUnknown` false); help
 * prints `usage` and ends the run with 0.
 */
export async function dispatch(
  argv: string[],
  usage: string,
  commands: Record<string, (args: string[]) => Promise<void> | void>,
  usageOnUnknown: boolean,
): Promise<void> {
  if (argv.length < 1) {
    process.stderr.write(usage);
    throw new Error("no command provided");
  }
  const cmd = argv[0] ?? "";
  if (cmd === "--help" || cmd === "-h" || cmd === "help") {
    process.stderr.write(usage);
    return;
  }
  const command = Object.hasOwn(commands, cmd) ? commands[cmd] : undefined;
  if (command) return command(argv.slice(1));
  if (usageOnUnknown) process.stderr.write(usage);
  throw new Error(`unknown command: ${cmd}`);
}

/** redactArgv replaces --auth-token values (`--auth-token X`, `--auth-token=X`) with [redacted]. */
export function redactArgv(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? "";
    if (/^--?auth-token=/.test(a)) out.push(a.replace(/=.*$/s, "=[redacted]"));
    else if (/^--?auth-token$/.test(a) && i + 1 < argv.length) out.push(a, "[redacted]"), i++;
    else out.push(a);
  }
  return out;
}

/**
 * runMain mirrors main: run the command; an error prints "Fatal error" (as slog text once the
 * logger is set up, else Go's default logger) and exits 1. When `logFile` names a file, one line
 * {argv, tokenSource, exitCode, ...extra} is appended to it.
 */
export async function runMain(argv: string[], run: () => Promise<void>, logFile: string | undefined, extra: Record<string, unknown> = {}): Promise<never> {
  let code = 0;
  try {
    await run();
  } catch (err) {
    if (err instanceof ExitNow) code = err.code;
    else {
      const msg = (err as Error).message;
      writeStderrLine(runState.logger ? slogTextLine("ERROR", "Fatal error", { error: msg }) : goDefaultLogLine("ERROR", "Fatal error", { error: msg }));
      code = 1;
    }
  }
  if (logFile) appendFileSync(logFile, JSON.stringify({ argv: redactArgv(argv), tokenSource: runState.tokenSourceKind, exitCode: code, ...extra }) + "\n");
  process.exit(code);
}
