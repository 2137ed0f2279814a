// niks3-hook: a test double of the `niks3-hook` v1.7.0 binary (cmd/niks3-hook/main.go), run as
// `node niks3-hook.ts send|serve …`.
//   send   reads OUT_PATHS, sends {"paths":[…]} to the socket with a 5 s timeout, prints errors as
//          `niks3-hook send: …` and ALWAYS exits 0 (a daemon that is not running loses the paths).
//   serve  parses niks3's common flags plus --socket, --db-path, --batch-size, --idle-exit-timeout,
//          --max-concurrent-uploads, --verify-s3-integrity; opens the SQLite queue, runs `nix eval` for
//          the store dir, and only then binds the socket. A worker pushes batches with the niks3 CLI
//          double's push code; SIGTERM/SIGINT stop the server, drain the queue with no time limit,
//          and exit 0 even when the drain fails (`Drain upload failed, paths remain in queue …`).
// Not reproduced: systemd socket activation (LISTEN_FDS), mTLS, the adaptive rate limiter.
// If NIKS3_HOOK_DOUBLE_LOG names a file, one JSON line {argv, tokenSource, exitCode} is appended per
// run (--auth-token values redacted), like NIKS3_DOUBLE_LOG for the CLI double.

import { createConnection } from "node:net";
import { flagBool, flagInt, flagString } from "./go-flag.ts";
import { goQuote } from "./go-format.ts";
import { COMMON_FLAGS, dispatch, newClient, parseFlags, printHelp, rejectTls, runMain, setupLogger, TLS_FLAGS, tokenSourceOf } from "./niks3-cmdutil.ts";
import { DEFAULT_SOCKET, SEND_HELP, SERVE_HELP, USAGE } from "./niks3-hook-help.ts";
import { listenSocket, runWorker, Wake } from "./niks3-hook-serve.ts";
import type { Client, Logger } from "./niks3-http.ts";
import { getStoreDir } from "./niks3-pathinfo.ts";
import { pushPaths } from "./niks3-push.ts";

const SEND_TIMEOUT_MS = 5_000;

/** parseGoDuration mirrors time.ParseDuration (in milliseconds). */
export function parseGoDuration(text: string): number {
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, "µs": 1e-3, "μs": 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const m = /^([-+]?)((?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+|0)$/.exec(text);
  if (!m) {
    const why = /^[-+]?(\d+\.?\d*|\.\d+)$/.test(text) ? "missing unit in duration" : "invalid duration";
    throw new Error(`time: ${why} ${goQuote(text)}`);
  }
  let total = 0;
  for (const part of (m[2] ?? "").matchAll(/(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g)) total += Number(part[1]) * (units[part[2] ?? "s"] ?? 0);
  return m[1] === "-" ? -total : total;
}

/** send mirrors runSend + hook.SendPaths. Errors go to stderr; the exit code is always 0. */
async function send(args: string[]): Promise<void> {
  const p = parseFlags({ socket: { kind: "string", def: DEFAULT_SOCKET }, help: { kind: "bool", def: false }, h: { kind: "bool", def: false } }, args, SEND_HELP);
  if (flagBool(p, "help") || flagBool(p, "h")) printHelp(SEND_HELP);
  const paths = (process.env.OUT_PATHS ?? "").split(/\s+/).filter(Boolean);
  if (paths.length === 0) return;
  try {
    await sendPaths(flagString(p, "socket"), paths);
  } catch (err) {
    process.stderr.write(`niks3-hook send: ${(err as Error).message}\n`);
  }
}

function sendPaths(socket: string, paths: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const conn = createConnection(socket);
    let stage: "connect" | "send" | "read" = "connect";
    let buffer = "";
    const fail = (why: string): void => {
      conn.destroy();
      reject(new Error(why));
    };
    conn.setTimeout(SEND_TIMEOUT_MS, () => fail(stage === "connect" ? `connecting to socket ${socket}: dial unix ${socket}: i/o timeout` : `reading response: read unix @->${socket}: i/o timeout`));
    conn.on("error", (err: NodeJS.ErrnoException) => {
      const why = err.code === "ENOENT" ? "no such file or directory" : err.code === "ECONNREFUSED" ? "connection refused" : err.message;
      fail(stage === "connect" ? `connecting to socket ${socket}: dial unix ${socket}: connect: ${why}` : `sending request: ${why}`);
    });
    conn.on("connect", () => {
      stage = "send";
      conn.write(JSON.stringify({ paths }) + "\n", () => (stage = "read"));
    });
    conn.on("data", (chunk: Buffer) => (buffer += chunk.toString("utf8")));
    conn.on("end", () => {
      let response: { status?: string; message?: string };
      try {
        response = JSON.parse(buffer) as { status?: string; message?: string };
      } catch {
        return fail(`reading response: ${buffer.trim() === "" ? "EOF" : "invalid character in response"}`);
      }
      conn.destroy();
      if (response.status !== "ok") reject(new Error(`server error: ${response.message ?? ""}`));
      else resolve();
    });
  });
}

/** serve mirrors runServe, in the same order: flags, logger, token source, queue, nix eval, socket. */
async function serve(args: string[]): Promise<void> {
  const p = parseFlags(
    {
      ...COMMON_FLAGS,
      socket: { kind: "string", def: DEFAULT_SOCKET },
      "db-path": { kind: "string", def: "/var/lib/niks3-hook/upload-queue.db" },
      "batch-size": { kind: "int", def: 50 },
      "idle-exit-timeout": { kind: "string", def: "60s" },
      "max-concurrent-uploads": { kind: "int", def: 30 },
      "verify-s3-integrity": { kind: "bool", def: false },
      ...TLS_FLAGS,
    },
    args,
    SERVE_HELP,
  );
  if (flagBool(p, "help") || flagBool(p, "h")) printHelp(SERVE_HELP);
  const { log, serverUrl } = setupLogger(p);
  const tokenSource = tokenSourceOf(p);
  const idleText = flagString(p, "idle-exit-timeout");
  let idleMs = 0;
  if (idleText !== "0") {
    try {
      idleMs = parseGoDuration(idleText);
    } catch (err) {
      throw new Error(`parsing --idle-exit-timeout: ${(err as Error).message}`);
    }
  }
  const maxConcurrent = Math.max(1, flagInt(p, "max-concurrent-uploads"));
  const dbPath = flagString(p, "db-path");
  // Imported here so that `send` (run after every build) never loads node:sqlite.
  const { openQueue } = await import("./niks3-hook-queue.ts");
  const queue = (() => {
    try {
      return openQueue(dbPath);
    } catch (err) {
      throw new Error(`opening queue: ${(err as Error).message}`);
    }
  })();
  const leftover = queue.count();
  if (leftover > 0) log.log("INFO", "Resuming with pending paths from previous run", { pending: leftover });

  const stop = new AbortController();
  for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => stop.abort());

  rejectTls(p);
  const client = newClient(serverUrl, tokenSource, log, stop.signal);
  const storeDir = getStoreDir(process.env);

  const workerWake = new Wake();
  const idleWake = new Wake();
  const socketPath = flagString(p, "socket");
  const server = await (async () => {
    try {
      return await listenSocket(
        socketPath,
        (paths) => {
          try {
            queue.enqueue(paths);
          } catch (err) {
            throw new Error(`enqueueing paths: ${(err as Error).message}`);
          }
          workerWake.notify();
          idleWake.notify();
        },
        log,
      );
    } catch (err) {
      throw new Error(`acquiring socket: ${(err as Error).message}`);
    }
  })();
  log.log("INFO", "niks3-hook serve starting", {
    socket: socketPath,
    "socket-activated": false,
    "db-path": dbPath,
    "batch-size": flagInt(p, "batch-size"),
    "idle-exit-timeout": { ns: idleMs * 1e6 },
  });

  const push = (c: Client, paths: string[]) => pushPaths(c, paths, { storeDir, maxConcurrent, verifyS3: flagBool(p, "verify-s3-integrity") });
  const worker = runWorker({ queue, push, client, batchSize: flagInt(p, "batch-size") > 0 ? flagInt(p, "batch-size") : 50, wake: workerWake }, stop.signal);
  if (idleMs > 0) void idleLoop(idleMs, idleWake, stop, () => queue.count() === 0, log);

  await new Promise<void>((resolve) => (stop.signal.aborted ? resolve() : stop.signal.addEventListener("abort", () => resolve(), { once: true })));
  await server.stop();
  await worker;
  log.log("INFO", "niks3-hook serve stopped");
  queue.close();
}

/** idleLoop mirrors the idle-exit goroutine: exit only when the timer fires with an empty queue. */
async function idleLoop(ms: number, wake: Wake, stop: AbortController, empty: () => boolean, log: Logger): Promise<void> {
  while (!stop.signal.aborted) {
    const started = Date.now();
    await wake.wait(ms, stop.signal);
    if (stop.signal.aborted || Date.now() - started < ms) continue;
    if (empty()) {
      log.log("INFO", "Idle timeout reached and queue is empty, shutting down");
      stop.abort();
      return;
    }
    log.log("DEBUG", "Idle timeout fired but queue is non-empty, waiting");
  }
}

const argv = process.argv.slice(2);
await runMain(argv, () => dispatch(argv, USAGE, { send, serve }, true), process.env.NIKS3_HOOK_DOUBLE_LOG);
