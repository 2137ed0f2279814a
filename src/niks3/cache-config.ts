// The server's public cache configuration (GET /api/cache-config, unauthenticated): where to pull
// from, the keys to trust, and the OIDC audience the server expects for our issuer. The wire type
// is snake_case as the server sends it; CacheConfig is ours.

import { z } from "zod";
import { describeError, getJson, type HttpOptions } from "../edges/http.ts";

const CacheConfigWire = z.object({
  substituter_url: z.string(),
  public_keys: z.array(z.string()),
  oidc_audience: z.string().optional(),
});

export interface CacheConfig {
  /** Empty when the server has no --cache-url: nothing to pull from. */
  substituterUrl: string;
  publicKeys: string[];
  /** The audience the server expects for tokens from `issuer`; undefined if it knows no such issuer. */
  oidcAudience: string | undefined;
}

export function cacheConfigUrl(serverUrl: string, issuer: string | undefined): string {
  const url = new URL(`${serverUrl.replace(/\/+$/, "")}/api/cache-config`);
  if (issuer) url.searchParams.set("issuer", issuer);
  return url.toString();
}

export function parseCacheConfig(data: unknown): CacheConfig {
  const wire = CacheConfigWire.parse(data);
  return { substituterUrl: wire.substituter_url, publicKeys: wire.public_keys, oidcAudience: wire.oidc_audience };
}

export type CacheConfigResult = { ok: true; config: CacheConfig } | { ok: false; reason: string };

/**
 * fetchCacheConfig never throws: an unreachable, slow or broken server means "build without the
 * cache", decided within `deadlineSeconds` whatever the server does.
 */
export async function fetchCacheConfig(
  serverUrl: string,
  issuer: string | undefined,
  http: HttpOptions,
  deadlineSeconds = 20,
): Promise<CacheConfigResult> {
  const deadlineMs = Math.round(deadlineSeconds * 1000);
  try {
    const data = await getJson(cacheConfigUrl(serverUrl, issuer), {
      timeoutMs: Math.min(10_000, deadlineMs),
      attempts: 3,
      signal: AbortSignal.timeout(deadlineMs),
      ...http,
    });
    return { ok: true, config: parseCacheConfig(data) };
  } catch (error) {
    const timedOut = error instanceof Error && /timeout|aborted/i.test(`${error.message} ${String(error.cause)}`);
    const reason =
      error instanceof z.ZodError
        ? "the answer is not a niks3 cache-config"
        : timedOut
          ? `no answer within ${deadlineSeconds}s`
          : describeError(error);
    return { ok: false, reason };
  }
}
