// fake-niks3-server: a strict test double of the niks3 server (v1.7.0 routes, server/server.go) on a
// real node:http server at 127.0.0.1:<random port>. Besides the API it serves, on the same port:
//   <url>/cache/...            the binary cache read path (what S3/a CDN serves in production),
//   <url>/s3/<key>?...         the presigned PUT URLs it hands out,
//   <url>/releases/v<v>/<a>    niks3 release assets registered with serveRelease().
// Tests inject failures through `faults` and assert on `pins`, `storePaths()`, `requests`, `pushes`.
// Not implemented: GC endpoints (501), GET /api/closures/{key} (501), OIDC, mTLS, metrics.

import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, STATUS_CODES, type IncomingMessage, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as api from "./fake-niks3-api.ts";
import { putObject, sendText, serveCache } from "./fake-niks3-bucket.ts";
import { loadOrCreateSigningKey } from "./fake-niks3-signing.ts";
import { openStore, putS3, storePaths, type Store } from "./fake-niks3-store.ts";

export interface FakeNiks3Options {
  /** The only bearer token the API accepts. */
  readonly token: string;
  /** OIDC issuer for which /api/cache-config reports oidc_audience (exact match). */
  readonly issuer?: string;
  /** Defaults to the server URL. */
  readonly oidcAudience?: string;
  /** Where keys, the bucket and db.json live; a fresh temp dir (removed on close) by default. */
  readonly stateDir?: string;
  readonly keyName?: string;
}

/** HttpFault makes one endpoint misbehave; `times` limits it to the next N requests. */
export interface HttpFault {
  status?: number;
  body?: string;
  headers?: Record<string, string>;
  delayMs?: number;
  /** Never answer (the connection stays open until close()). */
  hang?: boolean;
  times?: number;
}

export interface ReleaseFault extends HttpFault {
  /** Send the headers with the full Content-Length, then half the body, then reset the connection. */
  truncate?: boolean;
  /** Only this asset name is affected (all assets if unset). */
  asset?: string;
}

export interface FakeNiks3Faults {
  health?: HttpFault;
  cacheConfig?: HttpFault;
  /** POST /api/pending_closures. */
  push?: HttpFault;
  sign?: HttpFault;
  complete?: HttpFault;
  pins?: HttpFault;
  /** Presigned PUTs to /s3/. */
  upload?: HttpFault;
  /** The binary cache read path. */
  cache?: HttpFault;
  release?: ReleaseFault;
}

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly query: string;
  /** 0 while no response was sent (e.g. a hang fault). */
  status: number;
}

export interface FakeNiks3Server {
  readonly url: string;
  readonly substituterUrl: string;
  readonly publicKey: string;
  readonly issuer: string;
  readonly oidcAudience: string;
  readonly stateDir: string;
  /** Pin name → store path. */
  readonly pins: ReadonlyMap<string, string>;
  /** Store paths with a committed narinfo in the cache. */
  storePaths(): Set<string>;
  /** Every request, in arrival order; never contains a token. */
  readonly requests: RecordedRequest[];
  /** Number of pending closures created (one per top-level path per push). */
  readonly pushes: number;
  /** Number of requests a hang fault has taken and never answered. */
  readonly held: number;
  faults: FakeNiks3Faults;
  serveRelease(version: string, files: Record<string, Buffer>): void;
  close(): Promise<void>;
}

type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer, m: RegExpExecArray) => Promise<void> | void;

interface Route {
  readonly methods: readonly string[];
  readonly re: RegExp;
  readonly auth: boolean;
  readonly fault?: keyof FakeNiks3Faults;
  readonly handle: Handler;
}

function sendApi(res: ServerResponse, r: api.ApiResult): void {
  if (r.error !== undefined) return sendText(res, r.status, r.error + "\n");
  if (r.json !== undefined) {
    res.writeHead(r.status, { "Content-Type": "application/json" });
    return void res.end(JSON.stringify(r.json) + "\n");
  }
  res.writeHead(r.status);
  res.end();
}

const seg = (m: RegExpExecArray, i: number): string => decodeURIComponent(m[i] ?? "");

export async function startFakeNiks3Server(options: FakeNiks3Options): Promise<FakeNiks3Server> {
  const ownDir = options.stateDir === undefined;
  const stateDir = options.stateDir ?? mkdtempSync(join(tmpdir(), "fake-niks3-"));
  mkdirSync(stateDir, { recursive: true });
  const key = loadOrCreateSigningKey(stateDir, options.keyName ?? "niks3-double-1");
  const store: Store = openStore(stateDir);
  if (!store.s3.has("nix-cache-info")) {
    putS3(store, "nix-cache-info", Buffer.from("StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 30\n"), "text/plain");
  }
  const releases = new Map<string, Map<string, Buffer>>();
  const requests: RecordedRequest[] = [];
  const hung = new Set<ServerResponse>();
  const issuer = options.issuer ?? "https://gitlab.example.com";
  let url = "";
  let pushes = 0;
  const self = { faults: {} as FakeNiks3Faults };
  const urls: api.UrlMaker = {
    presign(k, sig, part) {
      const q = new URLSearchParams(part ? { partNumber: String(part.partNumber), uploadId: part.uploadId } : {});
      q.set("X-Niks3-Double-Signature", sig);
      return `${url}/s3/${k.split("/").map(encodeURIComponent).join("/")}?${q}`;
    },
  };

  const routes: Route[] = [
    { methods: ["GET", "HEAD"], re: /^\/health$/, auth: false, fault: "health", handle: (_q, res) => sendText(res, 200, "OK") },
    {
      methods: ["GET", "HEAD"], re: /^\/api\/cache-config$/, auth: false, fault: "cacheConfig",
      handle: (req, res) => {
        const asked = new URL(req.url ?? "/", url).searchParams.get("issuer") ?? "";
        const aud = options.oidcAudience ?? url;
        sendApi(res, { status: 200, json: { substituter_url: `${url}/cache`, public_keys: [key.publicKey], ...(asked !== "" && asked === issuer ? { oidc_audience: aud } : {}) } });
      },
    },
    { methods: ["GET", "HEAD"], re: /^\/api\/cache-stats$/, auth: false, handle: (_q, res) => sendApi(res, api.cacheStats(store)) },
    {
      methods: ["POST"], re: /^\/api\/pending_closures$/, auth: true, fault: "push",
      handle: (_q, res, body) => {
        const r = api.createPendingClosure(store, urls, body.toString("utf8"));
        if (r.status === 200) pushes++;
        sendApi(res, r);
      },
    },
    { methods: ["DELETE"], re: /^\/api\/pending_closures$/, auth: true, handle: (_q, res) => sendApi(res, { status: 204 }) },
    { methods: ["POST"], re: /^\/api\/pending_closures\/([^/]+)\/sign$/, auth: true, fault: "sign", handle: (_q, res, body, m) => sendApi(res, api.signNarinfos(store, key, seg(m, 1), body.toString("utf8"))) },
    { methods: ["POST"], re: /^\/api\/pending_closures\/([^/]+)\/complete$/, auth: true, fault: "complete", handle: (_q, res, _b, m) => sendApi(res, api.completePendingClosure(store, seg(m, 1))) },
    { methods: ["POST"], re: /^\/api\/multipart\/complete$/, auth: true, handle: (_q, res, body) => sendApi(res, api.completeMultipart(store, body.toString("utf8"))) },
    { methods: ["POST"], re: /^\/api\/multipart\/request-parts$/, auth: true, handle: (_q, res, body) => sendApi(res, api.requestParts(store, urls, body.toString("utf8"))) },
    { methods: ["HEAD"], re: /^\/api\/objects\/(.+)$/, auth: true, handle: (_q, res, _b, m) => sendApi(res, api.objectExists(store, seg(m, 1))) },
    { methods: ["GET"], re: /^\/api\/closures\/([^/]+)$/, auth: true, handle: (_q, res) => sendText(res, 501, "not implemented in the niks3 double\n") },
    { methods: ["DELETE"], re: /^\/api\/closures$/, auth: true, handle: (_q, res) => sendText(res, 501, "garbage collection is not implemented in the niks3 double\n") },
    { methods: ["GET"], re: /^\/api\/gc\/status$/, auth: true, handle: (_q, res) => sendText(res, 501, "garbage collection is not implemented in the niks3 double\n") },
    { methods: ["GET", "HEAD"], re: /^\/api\/pins$/, auth: true, fault: "pins", handle: (_q, res) => sendApi(res, api.listPins(store)) },
    { methods: ["POST"], re: /^\/api\/pins\/([^/]+)$/, auth: true, fault: "pins", handle: (_q, res, body, m) => sendApi(res, api.createPin(store, seg(m, 1), body.toString("utf8"))) },
    { methods: ["DELETE"], re: /^\/api\/pins\/([^/]+)$/, auth: true, fault: "pins", handle: (_q, res, _b, m) => sendApi(res, api.deletePin(store, seg(m, 1))) },
    { methods: ["GET", "HEAD"], re: /^\/cache\/(.+)$/, auth: false, fault: "cache", handle: (req, res, _b, m) => serveCache(store, req, res, seg(m, 1)) },
    { methods: ["PUT"], re: /^\/s3\/(.+)$/, auth: false, fault: "upload", handle: (req, res, body, m) => putObject(store, req, res, body, seg(m, 1)) },
    { methods: ["GET", "HEAD"], re: /^\/releases\/v([^/]+)\/([^/]+)$/, auth: false, handle: (req, res, _b, m) => serveRelease(req, res, seg(m, 1), seg(m, 2)) },
    {
      methods: ["GET", "HEAD"], re: /^\/$/, auth: false,
      handle: (_q, res) => {
        res.writeHead(301, { Location: `${url}/cache`, "Content-Type": "text/html; charset=utf-8" });
        res.end(`<a href="${url}/cache">Moved Permanently</a>.\n\n`);
      },
    },
  ];

  function serveRelease(req: IncomingMessage, res: ServerResponse, version: string, asset: string): void {
    const data = releases.get(version)?.get(asset);
    if (!data) return sendText(res, 404, "Not Found");
    const f = self.faults.release;
    if (f?.truncate && (f.asset === undefined || f.asset === asset) && consume("release")) {
      res.writeHead(200, { "Content-Type": "application/octet-stream", "Content-Length": data.length });
      res.write(data.subarray(0, Math.floor(data.length / 2)), () => res.destroy());
      return;
    }
    res.writeHead(200, { "Content-Type": "application/octet-stream", "Content-Length": data.length });
    res.end(req.method === "HEAD" ? undefined : data);
  }

  /** consume uses up one application of a fault and removes it when its `times` run out. */
  function consume(name: keyof FakeNiks3Faults): boolean {
    const f = self.faults[name];
    if (!f) return false;
    if (f.times !== undefined) {
      if (f.times <= 0) return false;
      f.times--;
    }
    return true;
  }

  /** applyFault returns true when the fault answered (or swallowed) the request. */
  async function applyFault(name: keyof FakeNiks3Faults, req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const f = self.faults[name];
    if (!f) return false;
    if (name === "release") {
      const rf = f as ReleaseFault;
      const asset = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname.split("/").pop() ?? "");
      if (rf.truncate || (rf.asset !== undefined && rf.asset !== asset)) return false;
    }
    if (!consume(name)) return false;
    if (f.delayMs) await new Promise((r) => setTimeout(r, f.delayMs));
    if (f.hang) {
      hung.add(res);
      return true;
    }
    if (f.status === undefined) return false;
    res.writeHead(f.status, { "Content-Type": "text/plain; charset=utf-8", ...(f.headers ?? {}) });
    res.end(f.body ?? `${STATUS_CODES[f.status] ?? "Error"}\n`);
    return true;
  }

  async function dispatch(req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> {
    const u = new URL(req.url ?? "/", "http://x");
    const method = req.method ?? "GET";
    const pathMatches = routes.filter((r) => r.re.test(u.pathname));
    const route = pathMatches.find((r) => r.methods.includes(method));
    if (!route) {
      if (pathMatches.length > 0 || !["GET", "HEAD"].includes(method)) {
        res.setHeader("Allow", [...new Set(pathMatches.flatMap((r) => r.methods))].join(", ") || "GET, HEAD");
        return sendText(res, 405, "Method Not Allowed\n");
      }
      return sendText(res, 404, "404 page not found\n");
    }
    const faultName = route.fault ?? (u.pathname.startsWith("/releases/") ? "release" : undefined);
    if (faultName && (await applyFault(faultName, req, res))) return;
    if (route.auth && req.headers.authorization !== `Bearer ${options.token}`) return sendText(res, 401, "Unauthorized\n");
    const m = route.re.exec(u.pathname) as RegExpExecArray;
    await route.handle(req, res, body, m);
  }

  const server = createServer((req, res) => {
    const u = new URL(req.url ?? "/", "http://x");
    const rec: RecordedRequest = { method: req.method ?? "", path: u.pathname, query: u.pathname.startsWith("/s3/") ? "" : u.search, status: 0 };
    requests.push(rec);
    res.on("finish", () => (rec.status = res.statusCode));
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      dispatch(req, res, Buffer.concat(chunks)).catch((err: unknown) => {
        if (!res.headersSent) sendText(res, 500, `fake niks3 internal error: ${(err as Error).message}\n`);
        else res.destroy();
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const addr = server.address();
  if (addr === null || typeof addr === "string") throw new Error("fake niks3: no TCP address");
  url = `http://127.0.0.1:${addr.port}`;

  return {
    url,
    substituterUrl: `${url}/cache`,
    publicKey: key.publicKey,
    issuer,
    oidcAudience: options.oidcAudience ?? url,
    stateDir,
    pins: store.pins,
    storePaths: () => storePaths(store),
    requests,
    get pushes() {
      return pushes;
    },
    get held() {
      return hung.size;
    },
    get faults() {
      return self.faults;
    },
    set faults(f: FakeNiks3Faults) {
      self.faults = f;
    },
    serveRelease(version, files) {
      releases.set(version.replace(/^v/, ""), new Map(Object.entries(files)));
    },
    async close() {
      for (const res of hung) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      if (ownDir) rmSync(stateDir, { recursive: true, force: true });
    },
  };
}
