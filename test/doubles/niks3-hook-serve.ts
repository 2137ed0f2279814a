// niks3-hook-serve: the double's port of `niks3-hook serve`'s moving parts (hook/server.go,
// hook/worker.go, the idle timer of cmd/niks3-hook/main.go): a unix-socket server that enqueues
// paths, a worker that pushes batches with the same push code as the niks3 CLI double, and a drain
// on shutdown that uses a context nobody cancels (the supervisor is expected to SIGKILL).

import { existsSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import type { Client } from "./niks3-http.ts";
import type { Queue } from "./niks3-hook-queue.ts";

const POLL_MS = 30_000;
const MAX_BACKOFF_MS = 15 * 60_000;
const INITIAL_BACKOFF_MS = 1_000;
const QUEUE_LOG_INTERVAL_MS = 30_000;

export type PushFn = (client: Client, paths: string[]) => Promise<string[]>;

/** Wake is Go's buffered notify channel of size 1: wakes coalesce while nobody waits. */
export class Wake {
  private pending = false;
  private waiter: (() => void) | undefined;
  notify(): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w();
    } else this.pending = true;
  }
  /** wait resolves on a notify, after ms, or when signal aborts. */
  wait(ms: number, signal: AbortSignal): Promise<void> {
    if (this.pending || signal.aborted) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        this.waiter = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener("abort", done, { once: true });
      this.waiter = done;
    });
  }
}

const nextBackoff = (current: number): number => (current === 0 ? INITIAL_BACKOFF_MS : Math.min(current * 2, MAX_BACKOFF_MS));

export interface WorkerDeps {
  queue: Queue;
  push: PushFn;
  client: Client;
  batchSize: number;
  wake: Wake;
  /** Existence check (Go: os.Stat). */
  exists?: (path: string) => boolean;
}

/** splitExisting drops garbage-collected paths from the queue, like the worker does before a push. */
function splitExisting(deps: WorkerDeps, paths: string[], warn: boolean): string[] {
  const exists = deps.exists ?? existsSync;
  const existing: string[] = [];
  const gone: string[] = [];
  for (const path of paths) {
    if (exists(path)) existing.push(path);
    else {
      if (warn) deps.client.log.log("WARN", "Store path no longer exists (garbage collected?), removing from queue", { path });
      gone.push(path);
    }
  }
  if (gone.length > 0) {
    try {
      deps.queue.remove(gone);
    } catch (err) {
      if (warn) deps.client.log.log("ERROR", "Failed to remove GC'd paths from queue", { error: (err as Error).message });
    }
  }
  return existing;
}

/** drain mirrors Worker.drain: push what is left with a context nobody cancels, stop at the first failure. */
async function drain(deps: WorkerDeps): Promise<void> {
  const client: Client = { ...deps.client, signal: new AbortController().signal };
  for (;;) {
    let paths: string[];
    try {
      paths = deps.queue.fetchBatch(deps.batchSize);
    } catch {
      return;
    }
    if (paths.length === 0) return;
    const existing = splitExisting(deps, paths, false);
    if (existing.length === 0) continue;
    let uploaded: string[];
    try {
      uploaded = await deps.push(client, existing);
    } catch (err) {
      deps.client.log.log("ERROR", "Drain upload failed, paths remain in queue for next start", {
        error: (err as Error).message,
        count: existing.length,
      });
      return;
    }
    deps.queue.remove(uploaded.length > existing.length ? uploaded : existing);
  }
}

/** runWorker mirrors Worker.Run: batches on notify or every 30 s, backoff after failures, drain on stop. */
export async function runWorker(deps: WorkerDeps, signal: AbortSignal): Promise<void> {
  const log = deps.client.log;
  let backoff = 0;
  let lastQueueLog = 0;
  for (;;) {
    await deps.wake.wait(backoff > 0 ? backoff : POLL_MS, signal);
    if (signal.aborted) return drain(deps);
    for (;;) {
      if (signal.aborted) return drain(deps);
      let paths: string[];
      try {
        paths = deps.queue.fetchBatch(deps.batchSize);
      } catch (err) {
        log.log("ERROR", "Failed to fetch batch from queue", { error: (err as Error).message });
        backoff = nextBackoff(backoff);
        break;
      }
      if (paths.length === 0) {
        backoff = 0;
        break;
      }
      if (Date.now() - lastQueueLog > QUEUE_LOG_INTERVAL_MS) {
        const pending = deps.queue.count();
        if (pending > 0) log.log("INFO", "Upload queue status", { pending });
        lastQueueLog = Date.now();
      }
      const existing = splitExisting(deps, paths, true);
      if (existing.length === 0) continue;
      log.log("INFO", "Uploading batch", { count: existing.length });
      let uploaded: string[];
      try {
        uploaded = await deps.push({ ...deps.client, signal }, existing);
      } catch (err) {
        log.log("ERROR", "Upload failed", { error: (err as Error).message, count: existing.length });
        backoff = nextBackoff(backoff);
        break;
      }
      try {
        deps.queue.remove(uploaded.length > existing.length ? uploaded : existing);
      } catch (err) {
        log.log("ERROR", "Failed to remove uploaded paths from queue", { error: (err as Error).message });
      }
      backoff = 0;
    }
  }
}

/** handleConnection mirrors Server.handleConn: one JSON request, one JSON line back. */
function handleConnection(conn: Socket, enqueue: (paths: string[]) => void, log: Client["log"]): Promise<void> {
  return new Promise((resolve) => {
    let buffer = "";
    let answered = false;
    const answer = (response: { status: string; message?: string }): void => {
      if (answered) return;
      answered = true;
      conn.end(JSON.stringify(response) + "\n");
    };
    conn.on("close", () => resolve());
    conn.on("error", () => resolve());
    const decode = (final: boolean): void => {
      let request: unknown;
      try {
        request = JSON.parse(buffer);
      } catch (err) {
        if (!final) return; // Go's decoder keeps reading until a value is complete
        log.log("ERROR", "Failed to decode request", { error: buffer.trim() === "" ? "EOF" : (err as Error).message });
        return answer({ status: "error", message: "invalid request" });
      }
      const raw = (request as { paths?: unknown } | null)?.paths;
      const paths = Array.isArray(raw) ? raw.filter((p): p is string => typeof p === "string") : [];
      if (paths.length === 0) return answer({ status: "ok" });
      try {
        enqueue(paths);
      } catch (err) {
        log.log("ERROR", "Failed to queue paths", { error: (err as Error).message, count: paths.length });
        return answer({ status: "error", message: (err as Error).message });
      }
      log.log("DEBUG", "Queued paths", { count: paths.length });
      answer({ status: "ok" });
    };
    conn.on("data", (chunk: Buffer) => {
      buffer += chunk.toString("utf8");
      if (buffer.includes("\n")) decode(false);
    });
    conn.on("end", () => decode(true));
  });
}

export interface SocketServer {
  /** stop closes the listener, waits for in-flight connections and removes the socket file. */
  stop(): Promise<void>;
}

/** listenSocket mirrors GetListener (stale socket removed first; no systemd activation in the double) + Serve. */
export async function listenSocket(socketPath: string, enqueue: (paths: string[]) => void, log: Client["log"]): Promise<SocketServer> {
  try {
    rmSync(socketPath, { force: true });
  } catch (err) {
    throw new Error(`removing stale socket ${socketPath}: ${(err as Error).message}`);
  }
  const inFlight = new Set<Promise<void>>();
  const server: Server = createServer((conn) => {
    const handled = handleConnection(conn, enqueue, log);
    inFlight.add(handled);
    void handled.then(() => inFlight.delete(handled));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) => {
      reject(new Error(`listening on ${socketPath}: listen unix ${socketPath}: bind: ${err.code === "EADDRINUSE" ? "address already in use" : err.message}`));
    });
    server.listen(socketPath, () => resolve());
  });
  return {
    async stop() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.all([...inFlight]);
      rmSync(socketPath, { force: true });
    },
  };
}
