// Test helpers for the niks3 installer: a niks3-like release archive built on the fly, a loopback
// HTTP server that serves release assets like GitHub's download URLs, and a loopback HTTP proxy that
// records what passes through it. Real node:http on 127.0.0.1, port 0; no mocks.

import { createHash } from "node:crypto";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import * as tar from "tar";

export interface ArchiveFile {
  content: string;
  mode?: number;
}

/** fakeNiks3Script: a tiny executable that stands in for the niks3 binary. */
export function fakeNiks3Script(version: string): string {
  return `#!/bin/sh\necho "niks3 ${version}"\n`;
}

/** buildArchive makes a .tar.gz holding `files` at its root (as goreleaser lays out niks3's archives). */
export async function buildArchive(files: Record<string, ArchiveFile>): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), "niks3-archive-"));
  try {
    const src = join(dir, "src");
    await mkdir(src);
    for (const [name, file] of Object.entries(files)) {
      const path = join(src, name);
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, file.content);
      await chmod(path, file.mode ?? 0o644);
    }
    const out = join(dir, "out.tar.gz");
    await tar.c({ gzip: true, file: out, cwd: src, portable: true }, Object.keys(files));
    return await readFile(out);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** niks3Archive: the usual release archive, niks3 and niks3-hook executable, plus README.md. */
export function niks3Archive(version: string): Promise<Buffer> {
  return buildArchive({
    niks3: { content: fakeNiks3Script(version), mode: 0o755 },
    "niks3-hook": { content: "#!/bin/sh\nexit 0\n", mode: 0o755 },
    "README.md": { content: "niks3\n" },
  });
}

export function sha256Hex(data: Buffer | string): string {
  return createHash("sha256").update(data).digest("hex");
}

/** checksumsTxt writes sha256sum-format lines, as goreleaser's checksums.txt. */
export function checksumsTxt(assets: Record<string, Buffer>): string {
  return Object.entries(assets)
    .map(([name, data]) => `${sha256Hex(data)}  ${name}\n`)
    .join("");
}

export interface RecordedRequest {
  method: string;
  url: string;
  host: string | undefined;
}

export interface TestServer {
  url: string;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

export type Handler = (req: IncomingMessage, res: ServerResponse, requests: RecordedRequest[]) => void;
/** Override answers a request itself (returning true) or leaves it to the release files. */
export type Override = (req: IncomingMessage, res: ServerResponse, requests: RecordedRequest[]) => boolean;

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return `http://127.0.0.1:${port}`;
}

function closer(server: Server): () => Promise<void> {
  return () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
}

/** startServer serves `handler` on loopback and records every request. */
export async function startServer(handler: Handler): Promise<TestServer> {
  const requests: RecordedRequest[] = [];
  const server = createServer((req, res) => {
    requests.push({ method: req.method ?? "", url: req.url ?? "", host: req.headers.host });
    handler(req, res, requests);
  });
  return { url: await listen(server), requests, close: closer(server) };
}

/**
 * releaseHandler serves `/v<version>/<name>` for each file in `files` (archives and checksums.txt);
 * `override` may answer a request first (return true when it did), to inject failures.
 */
export function releaseHandler(
  version: string,
  files: Record<string, Buffer | string>,
  override?: Override,
): Handler {
  return (req, res, requests) => {
    if (override?.(req, res, requests)) return;
    const prefix = `/v${version}/`;
    const name = req.url?.startsWith(prefix) ? decodeURIComponent(req.url.slice(prefix.length)) : undefined;
    const body = name !== undefined && Object.hasOwn(files, name) ? files[name] : undefined;
    if (body === undefined) {
      res.writeHead(404, { "content-type": "text/plain" }).end("Not Found");
      return;
    }
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": Buffer.byteLength(body) });
    res.end(body);
  };
}

/** sendTruncated promises `data.length` bytes but sends half of them, then drops the connection. */
export function sendTruncated(res: ServerResponse, data: Buffer): void {
  res.writeHead(200, { "content-type": "application/octet-stream", "content-length": data.length });
  res.write(data.subarray(0, Math.floor(data.length / 2)), () => res.socket?.destroy());
}

/**
 * startProxy is a forwarding HTTP proxy for http:// targets (absolute-form requests, as undici sends
 * them for plain HTTP). It records each request's target URL.
 */
export async function startProxy(): Promise<TestServer> {
  const requests: RecordedRequest[] = [];
  const server = createServer((req, res) => {
    requests.push({ method: req.method ?? "", url: req.url ?? "", host: req.headers.host });
    const upstream = httpRequest(req.url ?? "", { method: req.method, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on("error", () => res.writeHead(502).end());
    req.pipe(upstream);
  });
  server.on("connect", (req, socket) => {
    requests.push({ method: "CONNECT", url: req.url ?? "", host: req.headers.host });
    socket.end("HTTP/1.1 403 Forbidden\r\n\r\n");
  });
  return { url: await listen(server), requests, close: closer(server) };
}
