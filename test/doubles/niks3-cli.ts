// niks3-cli: a test double of the `niks3` v1.7.0 client CLI (cmd/niks3/main.go), run as
// `node niks3-cli.ts <args>`. It parses flags with Go `flag` rules, resolves the token like
// cmdutil.ResolveTokenSource, speaks niks3's push protocol over HTTP, prints the same slog lines on
// stderr and exits 1 on every error. Unlike real niks3 it never prints the token (real --debug does),
// needs `nix-store` for NARs, supports no mTLS, and answers `gc` with a clear "not supported".
// If NIKS3_DOUBLE_LOG names a file, one JSON line {argv, tokenSource, exitCode, cwd} is appended per
// run, with any --auth-token value redacted. NIKS3_DOUBLE_RETRY_BASE_MS shortens retry backoff.

import { setMaxListeners } from "node:events";
import { flagBool, flagInt, flagString, type FlagDef, type ParsedFlags } from "./go-flag.ts";
import { GC_HELP, PINS_HELP, PUSH_HELP, USAGE } from "./niks3-help.ts";
import { checkResponse, joinApi, serverRequest, type Client } from "./niks3-http.ts";
import { COMMON_FLAGS, dispatch, newClient, parseFlags, printHelp, rejectTls, runMain, runState, setupLogger, TLS_FLAGS, tokenSourceOf } from "./niks3-cmdutil.ts";
import { getStoreDir, resolveSymlinks } from "./niks3-pathinfo.ts";
import { pushPaths } from "./niks3-push.ts";

function parse(defs: Record<string, FlagDef>, args: string[], help: string): ParsedFlags {
  return parseFlags({ ...COMMON_FLAGS, ...defs, ...TLS_FLAGS }, args, help);
}

/** setup mirrors SetupLogger + RequireServerURL + CommonFlags.TokenSource + NewClient + TLS Configure. */
function setup(p: ParsedFlags, signal: AbortSignal): Client {
  const { log, serverUrl } = setupLogger(p);
  rejectTls(p);
  runState.tokenSourceKind = "none";
  return newClient(serverUrl, tokenSourceOf(p), log, signal);
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

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const abort = new AbortController();
  setMaxListeners(0, abort.signal); // one listener per in-flight request; no warning on stderr
  // Real niks3 wraps each command in signal.NotifyContext(SIGINT, SIGTERM): the push is cancelled
  // and the process exits 1 with "context canceled".
  for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => abort.abort());
  const commands = { push: (args: string[]) => push(args, abort.signal), gc: (args: string[]) => gc(args, abort.signal), pins: (args: string[]) => pins(args, abort.signal) };
  await runMain(argv, () => dispatch(argv, USAGE, commands, false), process.env.NIKS3_DOUBLE_LOG, { cwd: process.cwd() });
}

await main();
