import { errors } from "undici";
import { describe, expect, it } from "vitest";
import { displayUrl, HttpError, isRetryable, NetworkError, parseRetryAfter, retryDelay } from "../../src/edges/http.ts";

const URL_ = "https://example.test/v1.7.0/niks3_Linux_x86_64.tar.gz";
const withCode = (code: string) => Object.assign(new Error(`failed ${code}`), { code });

describe("isRetryable", () => {
  const cases: { name: string; error: unknown; want: boolean }[] = [
    { name: "500", error: new HttpError(500, URL_), want: true },
    { name: "502 bad gateway", error: new HttpError(502, URL_), want: true },
    { name: "503 unavailable", error: new HttpError(503, URL_), want: true },
    { name: "504 gateway timeout", error: new HttpError(504, URL_), want: true },
    { name: "408 request timeout", error: new HttpError(408, URL_), want: true },
    { name: "429 too many requests", error: new HttpError(429, URL_), want: true },
    { name: "400", error: new HttpError(400, URL_), want: false },
    { name: "401", error: new HttpError(401, URL_), want: false },
    { name: "403", error: new HttpError(403, URL_), want: false },
    { name: "404", error: new HttpError(404, URL_), want: false },
    { name: "410 gone", error: new HttpError(410, URL_), want: false },
    { name: "connection reset", error: withCode("ECONNRESET"), want: true },
    { name: "connection refused", error: withCode("ECONNREFUSED"), want: true },
    { name: "temporary DNS failure", error: withCode("EAI_AGAIN"), want: true },
    { name: "socket closed mid-body (undici)", error: new errors.SocketError("other side closed"), want: true },
    { name: "headers timeout (undici)", error: new errors.HeadersTimeoutError(), want: true },
    { name: "body timeout (undici)", error: new errors.BodyTimeoutError(), want: true },
    { name: "connect timeout (undici)", error: new errors.ConnectTimeoutError(), want: true },
    { name: "content-length mismatch (undici)", error: new errors.ResponseContentLengthMismatchError(), want: true },
    { name: "network error as a cause", error: new TypeError("fetch failed", { cause: withCode("ECONNRESET") }), want: true },
    { name: "unknown host", error: withCode("ENOTFOUND"), want: false },
    { name: "disk full", error: withCode("ENOSPC"), want: false },
    { name: "permission denied", error: withCode("EACCES"), want: false },
    { name: "invalid URL", error: new TypeError("Invalid URL"), want: false },
    { name: "NetworkError wrapping a reset", error: new NetworkError(URL_, withCode("ECONNRESET"), 4), want: true },
    { name: "not an error", error: "ECONNRESET", want: false },
  ];
  it.each(cases)("$name", ({ error, want }) => {
    expect(isRetryable(error)).toBe(want);
  });
});

describe("parseRetryAfter", () => {
  const now = Date.parse("2025-01-01T00:00:00Z");
  const cases: { name: string; value: string | string[] | undefined; want: number | undefined }[] = [
    { name: "absent", value: undefined, want: undefined },
    { name: "empty", value: "", want: undefined },
    { name: "seconds", value: "7", want: 7000 },
    { name: "zero", value: "0", want: 0 },
    { name: "HTTP date in the future", value: "Wed, 01 Jan 2025 00:00:30 GMT", want: 30_000 },
    { name: "HTTP date in the past", value: "Tue, 31 Dec 2024 23:00:00 GMT", want: 0 },
    { name: "garbage", value: "soon", want: undefined },
    { name: "negative", value: "-5", want: undefined },
    { name: "repeated header: first wins", value: ["2", "9"], want: 2000 },
  ];
  it.each(cases)("$name", ({ value, want }) => {
    expect(parseRetryAfter(value, now)).toBe(want);
  });
});

describe("retryDelay", () => {
  const cases = [
    { name: "first retry, no jitter", retry: 1, random: 0, want: 500 },
    { name: "first retry, full jitter", retry: 1, random: 0.999999, want: 1000 },
    { name: "third retry doubles twice", retry: 3, random: 0, want: 2000 },
    { name: "capped at maxDelayMs", retry: 10, random: 0.999999, want: 30_000 },
  ];
  it.each(cases)("$name", ({ retry, random, want }) => {
    expect(retryDelay(retry, new HttpError(503, URL_), { random: () => random })).toBe(want);
  });
  it("honours Retry-After", () => {
    expect(retryDelay(1, new HttpError(429, URL_, 12_000), { random: () => 0 })).toBe(12_000);
  });
  it("caps Retry-After", () => {
    expect(retryDelay(1, new HttpError(429, URL_, 3_600_000), { maxRetryAfterMs: 5_000 })).toBe(5_000);
  });
});

describe("HttpError and displayUrl", () => {
  it("keeps the status and drops query, fragment and credentials from the URL", () => {
    const error = new HttpError(403, "https://user:secret@s3.test/bucket/key?X-Amz-Signature=abc#frag");
    expect(error.status).toBe(403);
    expect(error.url).toBe("https://s3.test/bucket/key");
    expect(error.message).toBe("niks3: GET https://s3.test/bucket/key returned HTTP 403");
    expect(error.message).not.toMatch(/secret|Signature/);
  });
  it("handles a string that is not a URL", () => {
    expect(displayUrl("not a url?token=x")).toBe("not a url");
  });
});
