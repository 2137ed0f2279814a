// The HTTP edge against real loopback servers: retries, Retry-After, timeouts, redirects, downloads.
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { downloadToFile, fetchWithRetry, getJson, HttpError, NetworkError } from "../../src/edges/http.ts";
import { memoryLogger } from "../../src/log.ts";
import { sendTruncated, startServer, type Handler, type TestServer } from "../helpers/release-server.ts";

let server: TestServer | undefined;
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "niks3-http-"));
});
afterEach(async () => {
  await server?.close();
  server = undefined;
  await rm(dir, { recursive: true, force: true });
});

function recorder() {
  const delays: number[] = [];
  return { delays, sleep: async (ms: number) => void delays.push(ms) };
}

/** serve answers the n-th request (1-based) with responses[n-1], repeating the last one. */
async function serve(responses: Handler[]): Promise<TestServer> {
  server = await startServer((req, res, requests) => {
    const handler = responses[Math.min(requests.length, responses.length) - 1]!;
    handler(req, res, requests);
  });
  return server;
}

const ok = (body: string): Handler => (_req, res) => void res.writeHead(200).end(body);
const status = (code: number, headers: Record<string, string> = {}): Handler => (_req, res) => void res.writeHead(code, headers).end("no");

describe("fetchWithRetry", () => {
  it("retries 503 and honours Retry-After", async () => {
    const s = await serve([status(503, { "retry-after": "2" }), ok("done")]);
    const { delays, sleep } = recorder();
    const log = memoryLogger();
    const response = await fetchWithRetry(`${s.url}/x?token=secret`, { sleep, log });
    expect(response.body.toString()).toBe("done");
    expect(s.requests).toHaveLength(2);
    expect(delays).toEqual([2000]);
    expect(log.lines).toEqual([`warn: GET ${s.url}/x failed (HTTP 503); retry 1 of 3 in 2.0 s`]);
  });

  it("caps a long Retry-After", async () => {
    const s = await serve([status(429, { "retry-after": "3600" }), ok("done")]);
    const { delays, sleep } = recorder();
    await fetchWithRetry(`${s.url}/x`, { sleep, maxRetryAfterMs: 10_000 });
    expect(delays).toEqual([10_000]);
  });

  it("backs off exponentially and gives up after the attempts", async () => {
    const s = await serve([status(500)]);
    const { delays, sleep } = recorder();
    const result = fetchWithRetry(`${s.url}/x`, { sleep, random: () => 0, attempts: 4 });
    await expect(result).rejects.toBeInstanceOf(HttpError);
    await expect(result).rejects.toMatchObject({ status: 500 });
    expect(s.requests).toHaveLength(4);
    expect(delays).toEqual([500, 1000, 2000]);
  });

  it("does not retry a 404", async () => {
    const s = await serve([status(404)]);
    const { delays, sleep } = recorder();
    await expect(fetchWithRetry(`${s.url}/x`, { sleep })).rejects.toMatchObject({ status: 404 });
    expect(s.requests).toHaveLength(1);
    expect(delays).toEqual([]);
  });

  it("follows redirects (GitHub sends release downloads elsewhere)", async () => {
    const s = await serve([(_req, res) => void res.writeHead(302, { location: "/elsewhere" }).end(), ok("moved")]);
    const response = await fetchWithRetry(`${s.url}/x`, {});
    expect(response.body.toString()).toBe("moved");
    expect(s.requests.map((r) => r.url)).toEqual(["/x", "/elsewhere"]);
  });

  it("times out an attempt that gets no response and retries it", async () => {
    const s = await serve([() => undefined, ok("late but fine")]);
    const { delays, sleep } = recorder();
    const response = await fetchWithRetry(`${s.url}/x`, { sleep, timeoutMs: 200 });
    expect(response.body.toString()).toBe("late but fine");
    expect(delays).toHaveLength(1);
  });

  it("reports a refused connection in one line after the attempts", async () => {
    const port = await freePort();
    const { delays, sleep } = recorder();
    const result = fetchWithRetry(`http://127.0.0.1:${port}/x?sig=abc`, { sleep, attempts: 3 });
    await expect(result).rejects.toBeInstanceOf(NetworkError);
    const message = await result.catch((error: Error) => error.message);
    expect(message).toMatch(new RegExp(`^niks3: GET http://127\\.0\\.0\\.1:${port}/x failed after 3 attempts: .*ECONNREFUSED`));
    expect(message).not.toContain("\n");
    expect(delays).toHaveLength(2);
  });
});

describe("getJson", () => {
  it("parses JSON", async () => {
    const s = await serve([ok('{"substituter":"https://cache.test"}')]);
    expect(await getJson(`${s.url}/api/cache-config`, {})).toEqual({ substituter: "https://cache.test" });
  });
  it("fails in one line on a body that is not JSON", async () => {
    const s = await serve([ok("<html>\nlogin\n</html>")]);
    await expect(getJson(`${s.url}/api/cache-config`, {})).rejects.toThrow(
      `niks3: GET ${s.url}/api/cache-config did not return JSON: <html> login </html>`,
    );
  });
});

describe("downloadToFile", () => {
  const data = Buffer.alloc(256 * 1024, 7);

  it("retries a body cut short and leaves only the complete file", async () => {
    const s = await serve([(_req, res) => sendTruncated(res, data), (_req, res) => void res.writeHead(200).end(data)]);
    const { delays, sleep } = recorder();
    const dest = join(dir, "file.bin");
    await downloadToFile(`${s.url}/file`, dest, { sleep });
    expect((await readFile(dest)).equals(data)).toBe(true);
    expect(delays).toHaveLength(1);
    expect(await readdir(dir)).toEqual(["file.bin"]);
  });

  it("deletes the partial file when every attempt is cut short", async () => {
    const s = await serve([(_req, res) => sendTruncated(res, data)]);
    const { sleep } = recorder();
    const dest = join(dir, "file.bin");
    await expect(downloadToFile(`${s.url}/file`, dest, { sleep, attempts: 2 })).rejects.toBeInstanceOf(NetworkError);
    expect(s.requests).toHaveLength(2);
    expect(await readdir(dir)).toEqual([]);
  });

  it("writes nothing on a 404", async () => {
    const s = await serve([status(404)]);
    const dest = join(dir, "file.bin");
    await expect(downloadToFile(`${s.url}/file`, dest, {})).rejects.toMatchObject({ status: 404 });
    expect(await readdir(dir)).toEqual([]);
  });
});

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as { port: number };
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}
