// The one place that talks HTTP (undici). Everything here retries through one helper with a
// predicate (isRetryable), honours Retry-After with a cap, sleeps through an injectable function,
// and goes through a dispatcher built from explicitly passed proxy variables. Nothing here reads
// process.env: the caller passes `proxyEnv` (or its own dispatcher). What to fetch, and what a 404
// means, is the caller's business (src/install/, the cache-config step).

import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { pipeline } from "node:stream/promises";
import type { Dispatcher } from "undici";
import { Niks3GitlabError } from "../errors.ts";
import { plural, type Logger } from "../log.ts";

/** ProxyEnv: the proxy variables, as curl and undici read them (lowercase wins over uppercase). */
export interface ProxyEnv {
  HTTP_PROXY?: string | undefined;
  HTTPS_PROXY?: string | undefined;
  NO_PROXY?: string | undefined;
  http_proxy?: string | undefined;
  https_proxy?: string | undefined;
  no_proxy?: string | undefined;
}

export interface HttpOptions {
  /** The dispatcher to use. Without one, each call builds one from `proxyEnv` and closes it after. */
  dispatcher?: Dispatcher;
  /** Proxy variables for the dispatcher built when `dispatcher` is not given. Default: no proxy. */
  proxyEnv?: ProxyEnv;
  /** Attempts in all, the first included. Default 4. */
  attempts?: number;
  /** An attempt fails when the connection, the response headers or the next body chunk take longer. Default 30 s. */
  timeoutMs?: number;
  /** First backoff delay; doubles each retry, with jitter. Default 1 s. */
  baseDelayMs?: number;
  /** Cap on the backoff delay. Default 30 s. */
  maxDelayMs?: number;
  /** Cap on a server's Retry-After. Default 60 s. */
  maxRetryAfterMs?: number;
  /** How to wait between attempts; tests pass a recorder so they never wait. */
  sleep?: (ms: number) => Promise<void>;
  /** Source of jitter in [0, 1). Default Math.random. */
  random?: () => number;
  /** Where retry notices go (one warning line per retry). */
  log?: Logger;
  headers?: Record<string, string>;
  /** Ends the request and any retries when aborted (an overall deadline: AbortSignal.timeout). */
  signal?: AbortSignal;
}

export interface FetchedResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

const DEFAULTS = {
  attempts: 4,
  timeoutMs: 30_000,
  baseDelayMs: 1_000,
  maxDelayMs: 30_000,
  maxRetryAfterMs: 60_000,
  maxRedirections: 10,
} as const;

const USER_AGENT = "niks3-gitlab";

// undici loads with the first request, not with the helper: a job's first Nix calls are already
// running while it does. It is CommonJS, so its exports are the namespace's default (the bundle's
// namespace has no named ones).
type Undici = typeof import("undici");
let undici: Promise<Undici> | undefined;
const loadUndici = () => (undici ??= import("undici").then((namespace) => (namespace as { default?: Undici }).default ?? namespace));

/** HttpError: the server answered with a non-2xx status. `url` carries no query, fragment or credentials. */
export class HttpError extends Niks3GitlabError {
  readonly status: number;
  readonly url: string;
  /** The server's Retry-After, in milliseconds, if it sent a valid one. */
  readonly retryAfterMs: number | undefined;
  constructor(status: number, url: string, retryAfterMs?: number) {
    const safeUrl = displayUrl(url);
    super(`niks3: GET ${safeUrl} returned HTTP ${status}`);
    this.status = status;
    this.url = safeUrl;
    this.retryAfterMs = retryAfterMs;
  }
}

/** NetworkError: the request failed below HTTP (connection, timeout, truncated body, a local write), after the last attempt. */
export class NetworkError extends Niks3GitlabError {
  readonly url: string;
  constructor(url: string, cause: unknown, attempts: number) {
    const safeUrl = displayUrl(url);
    super(`niks3: GET ${safeUrl} failed after ${plural(attempts, "attempt")}: ${describeError(cause)}`);
    this.url = safeUrl;
    this.cause = cause;
  }
}

// Error codes of failures that another attempt may not see: resets, refusals, timeouts, bodies cut
// short (undici reports a closed socket or a length mismatch), temporary DNS failures.
const RETRYABLE_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "EAI_AGAIN",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "UND_ERR_RES_CONTENT_LENGTH_MISMATCH",
  "UND_ERR_CLOSED",
  "UND_ERR_PRX_CONN",
]);

/** isRetryable: network errors, 408, 429 and 5xx are worth another attempt; other 4xx and local errors are not. */
export function isRetryable(error: unknown): boolean {
  if (error instanceof HttpError) {
    return error.status === 408 || error.status === 429 || (error.status >= 500 && error.status <= 599);
  }
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && RETRYABLE_CODES.has(code)) return true;
  }
  return false;
}

/** parseRetryAfter reads delta-seconds or an HTTP date into milliseconds; undefined when absent or invalid. */
export function parseRetryAfter(value: string | string[] | undefined, now: number = Date.now()): number | undefined {
  const text = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!text) return undefined;
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  if (!/[A-Za-z]/.test(text)) return undefined; // an HTTP date names its day and month
  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/** retryDelay: exponential backoff with jitter (half fixed, half random), or the server's Retry-After, each capped. */
export function retryDelay(retry: number, error: unknown, options: HttpOptions = {}): number {
  if (error instanceof HttpError && error.retryAfterMs !== undefined) {
    return Math.min(error.retryAfterMs, options.maxRetryAfterMs ?? DEFAULTS.maxRetryAfterMs);
  }
  const base = options.baseDelayMs ?? DEFAULTS.baseDelayMs;
  const exp = Math.min(options.maxDelayMs ?? DEFAULTS.maxDelayMs, base * 2 ** (retry - 1));
  const random = options.random ?? Math.random;
  return Math.round(exp / 2 + (exp / 2) * random());
}

/** withRetry runs `attempt` until it succeeds, the error is not retryable, or attempts run out. */
export async function withRetry<T>(url: string, options: HttpOptions, attempt: () => Promise<T>): Promise<T> {
  const attempts = Math.max(1, options.attempts ?? DEFAULTS.attempts);
  const sleep = options.sleep ?? defaultSleep;
  for (let n = 1; ; n++) {
    try {
      options.signal?.throwIfAborted();
      return await attempt();
    } catch (error) {
      if (options.signal?.aborted) throw new NetworkError(url, options.signal.reason, n);
      if (!isRetryable(error) || n >= attempts) {
        throw error instanceof Niks3GitlabError ? error : new NetworkError(url, error, n);
      }
      const delay = retryDelay(n, error, options);
      options.log?.warn(
        `GET ${displayUrl(url)} failed (${describeError(error)}); retry ${n} of ${attempts - 1} in ${(delay / 1000).toFixed(1)} s`,
      );
      await (options.signal ? abortableSleep(sleep, delay, options.signal) : sleep(delay));
    }
  }
}

/** abortableSleep waits like `sleep` but ends early (rejecting) when the signal aborts. */
function abortableSleep(sleep: (ms: number) => Promise<void>, ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    sleep(ms).then(
      () => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      },
      reject,
    );
  });
}

/** createHttpDispatcher builds the undici dispatcher: proxies from `proxyEnv` only (never process.env), redirects followed. */
export async function createHttpDispatcher(proxyEnv: ProxyEnv = {}, timeoutMs: number = DEFAULTS.timeoutMs): Promise<Dispatcher> {
  const { EnvHttpProxyAgent, interceptors } = await loadUndici();
  // Passing "" (not undefined) stops undici from falling back to process.env.
  const agent = new EnvHttpProxyAgent({
    httpProxy: proxyEnv.http_proxy ?? proxyEnv.HTTP_PROXY ?? "",
    httpsProxy: proxyEnv.https_proxy ?? proxyEnv.HTTPS_PROXY ?? "",
    noProxy: proxyEnv.no_proxy ?? proxyEnv.NO_PROXY ?? "",
    connect: { timeout: timeoutMs },
  });
  return agent.compose(interceptors.redirect({ maxRedirections: DEFAULTS.maxRedirections }));
}

/** fetchWithRetry GETs a URL and returns its whole body; a non-2xx status throws HttpError (after retries if retryable). */
export async function fetchWithRetry(url: string, options: HttpOptions = {}): Promise<FetchedResponse> {
  return withDispatcher(options, (dispatcher) =>
    withRetry(url, options, async () => {
      const response = await send(url, options, dispatcher);
      const chunks: Buffer[] = [];
      for await (const chunk of response.body) chunks.push(chunk as Buffer);
      return { status: response.statusCode, headers: response.headers, body: Buffer.concat(chunks) };
    }),
  );
}

/** getText GETs a URL as UTF-8 text. */
export async function getText(url: string, options: HttpOptions = {}): Promise<string> {
  return (await fetchWithRetry(url, options)).body.toString("utf8");
}

/** getJson GETs a URL and parses it as JSON; the caller validates the shape. */
export async function getJson(url: string, options: HttpOptions = {}): Promise<unknown> {
  const text = await getText(url, { ...options, headers: { accept: "application/json", ...options.headers } });
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new Niks3GitlabError(`niks3: GET ${displayUrl(url)} did not return JSON: ${oneLine(text).slice(0, 80)}`);
  }
}

/**
 * downloadToFile streams a URL into a temp file beside `dest` and renames it into place at the end,
 * so `dest` is either complete or absent. A cut-off body is retried; the partial file is deleted in `finally`.
 */
export async function downloadToFile(url: string, dest: string, options: HttpOptions = {}): Promise<void> {
  const partial = join(dirname(dest), `.${basename(dest)}.${randomBytes(6).toString("hex")}.part`);
  try {
    await withDispatcher(options, (dispatcher) =>
      withRetry(url, options, async () => {
        const response = await send(url, options, dispatcher);
        await pipeline(response.body, createWriteStream(partial));
      }),
    );
    await rename(partial, dest);
  } finally {
    await rm(partial, { force: true });
  }
}

/** send makes one request and returns a 2xx response with its body unread; anything else throws HttpError. */
async function send(url: string, options: HttpOptions, dispatcher: Dispatcher): Promise<Dispatcher.ResponseData> {
  const timeout = options.timeoutMs ?? DEFAULTS.timeoutMs;
  const { request } = await loadUndici();
  const response = await request(url, {
    method: "GET",
    dispatcher,
    headers: { "user-agent": USER_AGENT, ...options.headers },
    headersTimeout: timeout,
    bodyTimeout: timeout,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  if (response.statusCode >= 200 && response.statusCode < 300) return response;
  await response.body.dump().catch(() => undefined);
  throw new HttpError(response.statusCode, url, parseRetryAfter(response.headers["retry-after"]));
}

async function withDispatcher<T>(options: HttpOptions, run: (dispatcher: Dispatcher) => Promise<T>): Promise<T> {
  if (options.dispatcher) return run(options.dispatcher);
  const dispatcher = await createHttpDispatcher(options.proxyEnv, options.timeoutMs);
  try {
    return await run(dispatcher);
  } finally {
    await dispatcher.close().catch(() => undefined);
  }
}

/** displayUrl drops credentials, query and fragment, which may hold tokens (presigned URLs). */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return url.replace(/[?#].*$/, "");
  }
}

/** describeError: one short line for an error, with its code when it has one. */
export function describeError(error: unknown): string {
  if (error instanceof HttpError) return `HTTP ${error.status}`;
  if (!(error instanceof Error)) return oneLine(String(error));
  const code = (error as { code?: unknown }).code;
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : "";
  const message = oneLine(`${error.message}${cause}`);
  return typeof code === "string" && !message.includes(code) ? `${message} (${code})` : message;
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}

function defaultSleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
