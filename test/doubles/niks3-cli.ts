// niks3-cli: a test double of the `niks3` v1.7.0 client CLI (cmd/niks3/main.go), run as
// `node niks3-cli.ts <args>`. It parses flags with Go `flag` rules, resolves the token like
// cmdutil.ResolveTokenSource, speaks niks3's push protocol over HTTP, prints the same slog lines on
// stderr and exits 1 on every error. Unlike real niks3 it never prints the token (real --debug does),
// needs `nix-store` for NARs, supports no mTLS, and answers `gc` with a clear "not supported".
// If NIKS3_DOUBLE_LOG names a file, one JSON line {argv, tokenSource, exitCode, cwd} is appended per
// run, with any --auth-token value redacted. NIKS3_DOUBLE_RETRY_BASE_MS shortens retry backoff.

import { setMaxListeners } from "node:events";
import { appendFileSync } from "node:fs";
import { flagBool, flagInt, flagString, FlagError, parseGoFlags, type FlagDef, type ParsedFlags } from "./go-flag.ts";
import { goDefaultLogLine, slogTextLine, writeStderrLine } from "./go-format.ts";
import { GC_HELP, PINS_HELP, PUSH_HELP, USAGE } from "./niks3-help.ts";
import { checkResponse, joinApi, makeLogger, serverRequest, type Client, type Logger } from "./niks3-http.ts";
import { getStoreDir, resolveSymlinks } from "./niks3-pathinfo.ts";
import { pushPaths } from "./niks3-push.ts";
import { resolveTokenSource, type TokenSourceKind } from "./niks3-token.ts";

/** ExitNow ends the run with a code after the caller printed what it had to print. */
class ExitNow extends Error {
  readonly code: number;
  constructor(code: number) {
    super(`exit ${code}`);
    this.code = code;
  }
}

const COMMON: Record<string, FlagDef> = {
  "server-url": { kind: "string", def: process.env.NIKS3_SERVER_URL ?? "" },
  "auth-token": { kind: "string", def: "" },
  "auth-token-path": { kind: "string", def: "" },
  "auth-token-script": { kind: "string", def: "" },
  debug: { kind: "bool", def: false },
  help: { kind: "bool", def: false },
  h: { kind: "bool", def: false },
};
const TLS: Record<string, FlagDef> = {
  "client-cert": { kind: "string", def: "" },
  "client-key": { kind: "string", def: "" },
  "ca-cert": { kind: "string", def: "" },
};

let tokenSourceKind: TokenSourceKind | "none" | null = null;
let logger: Logger | null = null;

function printHelp(text: string): never {
  process.stderr.write(text);
  throw new ExitNow(0);
}

function parse(defs: Record<string, FlagDef>, args: string[], help: string): ParsedFlags {
  try {
    return parseGoFlags({ ...COMMON, ...defs, ...TLS }, args);
  } catch (err) {
    if (err instanceof FlagError && err.help) printHelp(help);
    throw new Error(`parsing flags: ${(err as Error).message}`);
  }
}

/** setup mirrors SetupLogger + RequireServerURL + CommonFlags.TokenSource + NewClient + TLS Configure. */
function setup(p: ParsedFlags, signal: AbortSignal): Client {
  const log = makeLogger(flagBool(p, "debug"));
  logger = log;
  const serverUrl = flagString(p, "server-url");
  if (serverUrl === "") throw new Error("server URL is required (use --server-url or NIKS3_SERVER_URL env var)");
  if (p.visited.has("auth-token")) {
    log.log("WARN", "--auth-token is deprecated: tokens on the command line are visible in /proc and shell history; use --auth-token-path or --auth-token-script");
  }
  if (flagString(p, "client-cert") !== "" || flagString(p, "client-key") !== "" || flagString(p, "ca-cert") !== "") {
    throw new Error("setting up client TLS: mTLS is not supported by the niks3 test double");
  }
  tokenSourceKind = "none";
  const tokenSource = resolveTokenSource(
    { authToken: flagString(p, "auth-token"), authTokenPath: flagString(p, "auth-token-path"), authTokenScript: flagString(p, "auth-token-script") },
    process.env,
  );
  tokenSourceKind = tokenSource.kind;
  let baseUrl: URL;
  try {
    baseUrl = new URL(serverUrl);
  } catch {
    throw new Error(`creating client: parsing server URL: parse ${JSON.stringify(serverUrl)}: invalid URI for request`);
  }
  const retryBaseMs = Number(process.env.NIKS3_DOUBLE_RETRY_BASE_MS ?? "100");
  return { baseUrl, tokenSource, log, signal, retryBaseMs: Number.isFinite(retryBaseMs) ? retryBaseMs : 100, maxRetries: 5 };
}

async function createPin(c: Client, name: string, storePath: string): Promise<void> {
  const res = await serverRequest(c, "POST", joinApi(c.baseUrl, "api/pins", name), JSON.stringify({ store_path: storePath }), {
    "Content-Type": "application/json",
  });
  checkResponse(res, 200, 204);
}

async function push(args: string[], signal: AbortSignal): Promise<void> {
  const p = parse(
    {
      "max-concurrent-uploads": { kind: "int", def: 30 },
      "verify-s3-integrity": { kind: "bool", def: false },
      pin: { kind: "string", def: "" },
    },
    args,
    PUSH_HELP,
  );
  if (flagBool(p, "help") || flagBool(p, "h")) printHelp(PUSH_HELP);
  const c = setup(p, signal);
  const paths = p.args;
  if (paths.length === 0) throw new Error("at least one store path is required");
  const pin = flagString(p, "pin");
  if (pin !== "" && paths.length > 1) throw new Error("--pin requires exactly one store path");
  const storeDir = getStoreDir(process.env);
  try {
    await pushPaths(c, paths, { storeDir, maxConcurrent: Math.max(1, flagInt(p, "max-concurrent-uploads")), verifyS3: flagBool(p, "verify-s3-integrity") });
  } catch (err) {
    throw new Error(`pushing paths: ${(err as Error).message}`);
  }
  if (pin === "") return;
  let storePath: string;
  try {
    storePath = resolveSymlinks([paths[0] ?? ""], storeDir)[0] ?? "";
  } catch (err) {
    throw new Error(`resolving store path for pin ${JSON.stringify(pin)}: ${(err as Error).message}`);
  }
  try {
    await createPin(c, pin, storePath);
  } catch (err) {
    throw new Error(`creating pin ${JSON.stringify(pin)}: ${(err as Error).message}`);
  }
  c.log.log("INFO", "Created pin", { name: pin, store_path: storePath });
}

function gc(args: string[], signal: AbortSignal): void {
  const p = parse(
    {
      "older-than": { kind: "string", def: "720h" },
      "failed-uploads-older-than": { kind: "string", def: "6h" },
      force: { kind: "bool", def: false },
    },
    args,
    GC_HELP,
  );
  if (flagBool(p, "help") || flagBool(p, "h")) printHelp(GC_HELP);
  setup(p, signal);
  throw new Error("running garbage collection: not supported by the niks3 test double");
}

interface PinInfo {
  name: string;
  store_path: string;
  created_at: string;
  updated_at: string;
}

async function pins(args: string[], signal: AbortSignal): Promise<void> {
  if (args.length < 1) {
    process.stderr.write(PINS_HELP);
    throw new Error("missing subcommand (create, list, or delete)");
  }
  const sub = args[0] ?? "";
  const p = parse({ "names-only": { kind: "bool", def: false }, json: { kind: "bool", def: false } }, args.slice(1), PINS_HELP);
  // Real niks3 never checks --help for `pins` after parsing; neither does the double.
  const c = setup(p, signal);
  const rest = p.args;
  const storeDir = (): string => getStoreDir(process.env);
  const step = async (prefix: string, f: () => Promise<void>): Promise<void> => {
    try {
      await f();
    } catch (err) {
      throw new Error(`${prefix}: ${(err as Error).message}`);
    }
  };
  if (sub === "create") {
    if (rest.length < 2) throw new Error("create requires a pin name and store path");
    const [name = "", path = ""] = rest;
    const dir = storeDir();
    let resolved = "";
    await step("resolving store path", async () => void (resolved = resolveSymlinks([path], dir)[0] ?? ""));
    await step("creating pin", () => createPin(c, name, resolved));
    c.log.log("INFO", "Created pin", { name, store_path: resolved });
  } else if (sub === "list") {
    storeDir();
    let list: PinInfo[] | null = null;
    await step("listing pins", async () => {
      const res = await serverRequest(c, "GET", joinApi(c.baseUrl, "api/pins"));
      checkResponse(res, 200);
      list = JSON.parse(res.body.toString("utf8")) as PinInfo[] | null;
    });
    printPins(list, flagBool(p, "names-only"), flagBool(p, "json"));
  } else if (sub === "delete") {
    if (rest.length < 1) throw new Error("delete requires a pin name");
    const name = rest[0] ?? "";
    storeDir();
    await step("deleting pin", async () => {
      const res = await serverRequest(c, "DELETE", joinApi(c.baseUrl, "api/pins", name));
      checkResponse(res, 200, 204);
    });
    c.log.log("INFO", "Deleted pin", { name });
  } else {
    throw new Error(`unknown pins subcommand: ${sub}`);
  }
}

function printPins(list: PinInfo[] | null, namesOnly: boolean, json: boolean): void {
  if (json) return void process.stdout.write(JSON.stringify(list, null, 2) + "\n");
  const pinsList = list ?? [];
  if (namesOnly) return void process.stdout.write(pinsList.map((p) => p.name + "\n").join(""));
  if (pinsList.length === 0) return void process.stdout.write("No pins found\n");
  // text/tabwriter with padding 2: every column but the last is padded to its widest cell + 2.
  const rows = [["NAME", "STORE PATH", "UPDATED AT"], ...pinsList.map((p) => [p.name, p.store_path, p.updated_at])];
  const w0 = Math.max(...rows.map((r) => (r[0] ?? "").length)) + 2;
  const w1 = Math.max(...rows.map((r) => (r[1] ?? "").length)) + 2;
  process.stdout.write(rows.map((r) => (r[0] ?? "").padEnd(w0) + (r[1] ?? "").padEnd(w1) + (r[2] ?? "") + "\n").join(""));
}

async function run(argv: string[], signal: AbortSignal): Promise<void> {
  if (argv.length < 1) {
    process.stderr.write(USAGE);
    throw new Error("no command provided");
  }
  const cmd = argv[0] ?? "";
  if (cmd === "--help" || cmd === "-h" || cmd === "help") {
    process.stderr.write(USAGE);
    throw new ExitNow(0);
  }
  if (cmd === "push") return push(argv.slice(1), signal);
  if (cmd === "gc") return gc(argv.slice(1), signal);
  if (cmd === "pins") return pins(argv.slice(1), signal);
  throw new Error(`unknown command: ${cmd}`);
}

function redactArgv(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? "";
    if (/^--?auth-token=/.test(a)) out.push(a.replace(/=.*$/s, "=[redacted]"));
    else if (/^--?auth-token$/.test(a) && i + 1 < argv.length) out.push(a, "[redacted]"), i++;
    else out.push(a);
  }
  return out;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const abort = new AbortController();
  setMaxListeners(0, abort.signal); // one listener per in-flight request; no warning on stderr
  // Real niks3 wraps each command in signal.NotifyContext(SIGINT, SIGTERM): the push is cancelled
  // and the process exits 1 with "context canceled".
  for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => abort.abort());
  let code = 0;
  try {
    await run(argv, abort.signal);
  } catch (err) {
    if (err instanceof ExitNow) code = err.code;
    else {
      const msg = (err as Error).message;
      writeStderrLine(logger ? slogTextLine("ERROR", "Fatal error", { error: msg }) : goDefaultLogLine("ERROR", "Fatal error", { error: msg }));
      code = 1;
    }
  }
  const logFile = process.env.NIKS3_DOUBLE_LOG;
  if (logFile) {
    appendFileSync(logFile, JSON.stringify({ argv: redactArgv(argv), tokenSource: tokenSourceKind, exitCode: code, cwd: process.cwd() }) + "\n");
  }
  process.exit(code);
}

await main();
