// niks3-http: the double's port of niks3 client/client.go + client/retry.go: server requests carry
// the bearer token (resolved before every request), presigned S3 PUTs carry none, and both are
// retried 5 times on network errors and 408/429/500/502/503/504/507 with 100 ms × 2^n (±10%) backoff,
// honouring Retry-After. The adaptive rate limiter of the real client is not reproduced.
// Real niks3 --debug dumps every request *including the Authorization header*; the double dumps the
// same lines but always redacts the token, because test logs must never contain it.

import { request as httpRequest, STATUS_CODES } from "node:http";
import { request as httpsRequest } from "node:https";
import { slogTextLine, writeStderrLine, type SlogLevel, type SlogValue } from "./go-format.ts";
import type { TokenSource } from "./niks3-token.ts";

export interface Logger {
  readonly debugEnabled: boolean;
  log(level: SlogLevel, msg: string, attrs?: Record<string, SlogValue>): void;
}

export function makeLogger(debugEnabled: boolean): Logger {
  return {
    debugEnabled,
    log(level, msg, attrs = {}) {
      if (level === "DEBUG" && !debugEnabled) return;
      writeStderrLine(slogTextLine(level, msg, attrs));
    },
  };
}

export interface Client {
  readonly baseUrl: URL;
  readonly tokenSource: TokenSource;
  readonly log: Logger;
  readonly signal: AbortSignal;
  /** Initial backoff; 100 ms like niks3 unless NIKS3_DOUBLE_RETRY_BASE_MS overrides it for tests. */
  readonly retryBaseMs: number;
  readonly maxRetries: number;
}

export interface HttpResult {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Buffer;
}

/** HttpStatusError mirrors client.HTTPStatusError: "server returned <code>: <body>". */
export class HttpStatusError extends Error {
  readonly status: number;
  readonly body: string;
  constructor(status: number, body: string) {
    super(`server returned ${status}: ${body}`);
    this.status = status;
    this.body = body;
  }
}

/** checkResponse mirrors client.checkResponse. */
export function checkResponse(res: HttpResult, ...accepted: number[]): void {
  if (!accepted.includes(res.status)) throw new HttpStatusError(res.status, res.body.toString("utf8"));
}

/** joinApi mirrors url.URL.JoinPath on the server base URL. */
export function joinApi(base: URL, ...elems: string[]): string {
  const u = new URL(base.href);
  const parts = [u.pathname, ...elems].join("/").split("/").filter((p) => p !== "" && p !== ".");
  u.pathname = "/" + parts.join("/");
  return u.href;
}

const RETRYABLE = new Set([408, 429, 500, 502, 503, 504, 507]);

function goMethod(method: string): string {
  return method.slice(0, 1) + method.slice(1).toLowerCase();
}

/** goNetError renders a request failure the way Go's *url.Error prints it. */
function goNetError(method: string, url: string, err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const u = new URL(url);
  const hostPort = `${u.hostname}:${u.port || (u.protocol === "https:" ? "443" : "80")}`;
  let why: string;
  if (e.name === "AbortError") why = "context canceled";
  else if (e.code === "ECONNREFUSED") why = `dial tcp ${hostPort}: connect: connection refused`;
  else if (e.code === "ENOTFOUND") why = `dial tcp: lookup ${u.hostname}: no such host`;
  else if (e.code === "ECONNRESET") why = `read tcp ${hostPort}: read: connection reset by peer`;
  else if (e.code === "ETIMEDOUT") why = `dial tcp ${hostPort}: connect: connection timed out`;
  else why = e.message;
  return `${goMethod(method)} ${JSON.stringify(url)}: ${why}`;
}

/** rawRequest does one HTTP exchange with node:http (fetch refuses some ports and hides errors). */
function rawRequest(spec: RequestSpec, headers: Record<string, string>, signal: AbortSignal): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const u = new URL(spec.url);
    const send = u.protocol === "https:" ? httpsRequest : httpRequest;
    const req = send(u, { method: spec.method, headers: { ...headers, "Content-Length": String(spec.body?.length ?? 0) }, signal }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () => {
        const h = new Headers();
        for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) h.set(k, Array.isArray(v) ? v.join(", ") : v);
        resolve({ status: res.statusCode ?? 0, headers: h, body: Buffer.concat(chunks) });
      });
    });
    req.on("error", reject);
    req.end(spec.body);
  });
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(t);
      reject(new Error(`context canceled during retry: context canceled`));
    };
    const t = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

function retryAfterMs(h: Headers): number {
  const v = h.get("retry-after");
  if (!v) return 0;
  if (/^\s*-?\d+\s*$/.test(v)) return Math.max(0, parseInt(v, 10) * 1000);
  const t = Date.parse(v);
  return Number.isNaN(t) ? 0 : Math.max(0, t - Date.now());
}

function dumpRequest(method: string, url: string, headers: Record<string, string>, hasAuth: boolean, len: number): string {
  const u = new URL(url);
  const lines = [`${method} ${u.pathname}${u.search} HTTP/1.1`, `Host: ${u.host}`, "User-Agent: Go-http-client/1.1"];
  if (len > 0) lines.push(`Content-Length: ${len}`);
  // Real niks3 prints the bearer token here; the double never does.
  if (hasAuth) lines.push("Authorization: Bearer [redacted by niks3 double]");
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  lines.push("Accept-Encoding: gzip");
  return lines.join("\r\n") + "\r\n\r\n";
}

interface RequestSpec {
  readonly method: string;
  readonly url: string;
  readonly body?: Buffer;
  readonly headers?: Record<string, string>;
  readonly auth?: string;
}

/** doWithRetry mirrors client.doWithRetry (minus the adaptive rate limiter). */
async function doWithRetry(c: Client, spec: RequestSpec): Promise<HttpResult> {
  const headers: Record<string, string> = { ...(spec.headers ?? {}) };
  for (let attempt = 0; ; attempt++) {
    let result: HttpResult | undefined;
    let netErr: string | undefined;
    try {
      if (c.log.debugEnabled) {
        const dump = dumpRequest(spec.method, spec.url, headers, spec.auth !== undefined, spec.body?.length ?? 0);
        c.log.log("DEBUG", "HTTP Request", { dump });
      }
      result = await rawRequest(spec, spec.auth !== undefined ? { ...headers, Authorization: `Bearer ${spec.auth}` } : headers, c.signal);
      if (c.log.debugEnabled) {
        c.log.log("DEBUG", "HTTP Response", { dump: `HTTP/1.1 ${result.status} ${STATUS_CODES[result.status] ?? ""}\r\n\r\n` });
      }
    } catch (err) {
      netErr = goNetError(spec.method, spec.url, err);
      if (c.signal.aborted) throw new Error(netErr);
    }
    if (result !== undefined && !RETRYABLE.has(result.status)) return result;
    if (attempt >= c.maxRetries) {
      if (netErr !== undefined) throw new Error(`request failed after retries: ${netErr}`);
      return result as HttpResult;
    }
    let backoff = c.retryBaseMs * 2 ** attempt;
    backoff = Math.min(backoff, 30_000);
    backoff += backoff * 0.1 * (Math.random() * 2 - 1);
    if (result !== undefined) backoff = Math.max(backoff, retryAfterMs(result.headers));
    const common = { attempt: attempt + 1, max_attempts: c.maxRetries + 1, backoff: { ns: backoff * 1e6 } };
    if (netErr !== undefined) {
      c.log.log("WARN", "Request failed, retrying", { ...common, error: netErr, url: spec.url });
    } else {
      c.log.log("WARN", "Request returned retryable status, retrying", { ...common, status: result?.status ?? 0, url: spec.url });
    }
    await sleep(backoff, c.signal);
  }
}

/** serverRequest mirrors Client.DoServerRequest: resolve the token first, then retry. */
export async function serverRequest(
  c: Client,
  method: string,
  url: string,
  body?: Buffer | string,
  headers: Record<string, string> = {},
): Promise<HttpResult> {
  let tok: string;
  try {
    tok = c.tokenSource.token();
  } catch (err) {
    throw new Error(`sending request: resolving auth token: ${(err as Error).message}`);
  }
  try {
    return await doWithRetry(c, {
      method,
      url,
      headers,
      ...(body !== undefined ? { body: Buffer.from(body) } : {}),
      ...(tok !== "" ? { auth: tok } : {}),
    });
  } catch (err) {
    throw new Error(`sending request: ${(err as Error).message}`);
  }
}

/** s3Request mirrors Client.DoS3Request: a presigned URL, no Authorization header. */
export async function s3Request(c: Client, method: string, url: string, body: Buffer, headers: Record<string, string>): Promise<HttpResult> {
  return doWithRetry(c, { method, url, body, headers });
}
