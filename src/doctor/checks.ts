// What `niks3-gitlab doctor` concludes, as pure functions from facts the probes gathered (Nix, the
// store's trust, the server's answers, the token's claims) to findings. Every problem carries a
// concrete fix. Nothing here prints, and nothing here ever holds the token itself: only its
// decoded, non-secret claims.

import type { CacheConfigResult } from "../niks3/cache-config.ts";
import { pickUploadMode, type UploadFacts } from "../upload/mode.ts";
import { plural } from "../log.ts";

export type FindingLevel = "ok" | "info" | "warning" | "problem";

export interface Finding {
  level: FindingLevel;
  /** What was found, one line. */
  message: string;
  /** For problems (and warnings): what to change, naming the input, variable or server setting. */
  fix?: string;
}

const ok = (message: string): Finding => ({ level: "ok", message });
const info = (message: string): Finding => ({ level: "info", message });
const problem = (message: string, fix: string): Finding => ({ level: "problem", message, fix });
const warning = (message: string, fix: string): Finding => ({ level: "warning", message, fix });

export type NixFacts = { found: true; version: string; path: string | undefined } | { found: false; reason: string };

/** Nix 2.4 brought flakes and the `nix` command the jobs use. */
const MIN_NIX = [2, 4] as const;

export function parseNixVersion(text: string): [number, number] | undefined {
  const match = /(\d+)\.(\d+)/.exec(text);
  return match ? [Number(match[1]), Number(match[2])] : undefined;
}

export function checkNix(nix: NixFacts): Finding {
  if (!nix.found) {
    return problem(
      `nix is not on PATH (${nix.reason})`,
      "run the job in an image with Nix (the components default to nixos/nix), or install Nix and put it on PATH",
    );
  }
  const version = parseNixVersion(nix.version);
  if (version && (version[0] < MIN_NIX[0] || (version[0] === MIN_NIX[0] && version[1] < MIN_NIX[1]))) {
    return problem(`${nix.version} is too old: the jobs need flakes and the nix command`, "use Nix 2.4 or later (2.8 or later is tested)");
  }
  return ok(`${nix.version}${nix.path ? ` at ${nix.path}` : ""}`);
}

/**
 * checkTrust says how a job on this runner would upload, by the same rule the jobs use
 * (src/upload/mode.ts): daemon-capable when Nix runs a post-build-hook (root with a writable
 * store, or a user in trusted-users), else a store diff after the build. Neither is a problem.
 */
export function checkTrust(facts: UploadFacts): Finding {
  // The doctor installs no niks3: assume niks3-hook is there, as in every niks3 release archive.
  const decision = pickUploadMode({ setting: "auto", push: true, blockedPush: undefined }, { ...facts, niks3Hook: facts.niks3Hook ?? "niks3-hook" });
  if (decision.mode === "daemon") return ok(`trust: daemon-capable, ${decision.reason}: uploads run while building (niks3-hook)`);
  return info(`trust: store diff, ${decision.reason}: the job pushes what it built when the build ends`);
}

export type HealthFacts = { ok: true } | { ok: false; reason: string };

export function checkHealth(serverUrl: string, health: HealthFacts): Finding {
  if (health.ok) return ok(`server ${serverUrl} is up (/health)`);
  return problem(
    `cannot reach the niks3 server: GET ${serverUrl}/health ${health.reason}`,
    "check the component input server_url (NIKS3_SERVER_URL) and that the runner can reach that host (HTTP(S)_PROXY and NO_PROXY are honoured)",
  );
}

export function checkCacheConfig(serverUrl: string, result: CacheConfigResult): Finding[] {
  if (!result.ok) {
    return [problem(`cannot read ${serverUrl}/api/cache-config (${result.reason})`, "check that server_url points at a niks3 server of version 1.5 or later")];
  }
  const { substituterUrl, publicKeys } = result.config;
  const findings: Finding[] = [];
  if (!substituterUrl) {
    findings.push(
      problem("the server advertises no substituter, so jobs cannot pull from the cache", "start niks3-server with --cache-url set to the public URL of its bucket"),
    );
  } else {
    findings.push(ok(`cache-config: substituter ${substituterUrl}, ${plural(publicKeys.length, "public key")}`));
  }
  if (substituterUrl && publicKeys.length === 0) {
    findings.push(
      problem("the server advertises no public key, so Nix will not trust what it substitutes", "give niks3-server a signing key so it signs narinfos and lists the public key"),
    );
  }
  return findings;
}

/** The claims worth showing: names and values that are not secret (the signature never is shown). */
export const SHOWN_CLAIMS = [
  "iss",
  "aud",
  "sub",
  "project_path",
  "job_project_path",
  "namespace_path",
  "ref",
  "ref_type",
  "ref_protected",
  "pipeline_source",
  "environment",
  "exp",
] as const;

export interface TokenFacts {
  /** No NIKS3_TOKEN in the environment. */
  present: boolean;
  /** Decoded payload, when the token is a JWT. */
  claims: Record<string, unknown> | undefined;
}

export function claimValue(name: string, value: unknown, nowMs: number): string {
  if (name === "exp" && typeof value === "number") {
    const left = Math.round((value * 1000 - nowMs) / 60_000);
    return `${new Date(value * 1000).toISOString()} (${left >= 0 ? `in ${left} min` : `${-left} min ago`})`;
  }
  if (Array.isArray(value)) return value.map(String).join(", ");
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** describeClaims: one `name = value` line per shown claim the token has. */
export function describeClaims(claims: Record<string, unknown>, nowMs: number): string[] {
  return SHOWN_CLAIMS.filter((name) => claims[name] !== undefined).map((name) => `claim ${name} = ${claimValue(name, claims[name], nowMs)}`);
}

const audOf = (claims: Record<string, unknown>): string[] =>
  typeof claims.aud === "string" ? [claims.aud] : Array.isArray(claims.aud) ? claims.aud.filter((a): a is string => typeof a === "string") : [];

export interface TokenCheckInput {
  token: TokenFacts;
  /** CI_SERVER_URL, when the doctor runs in a GitLab job. */
  ciServerUrl: string | undefined;
  /** The cache-config the server gave for the token's issuer (or CI_SERVER_URL); undefined if unreachable. */
  cacheConfig: CacheConfigResult | undefined;
  /** The issuer cache-config was asked about. */
  issuer: string | undefined;
  nowMs: number;
}

/** checkToken compares the token's claims with GitLab's URL and with what the server expects. */
export function checkToken(input: TokenCheckInput): Finding[] {
  const { token, ciServerUrl, cacheConfig, issuer, nowMs } = input;
  if (!token.present) {
    return [
      problem(
        "no NIKS3_TOKEN in this job, so nothing can be pushed",
        "give the job `id_tokens: NIKS3_TOKEN: aud: <the server's oidc_audience>` (the build component does; run doctor in such a job)",
      ),
    ];
  }
  if (!token.claims) {
    return [
      warning(
        "NIKS3_TOKEN is not a JWT (a static niks3 API token?), so its claims cannot be checked",
        "use the job's id_token (id_tokens: NIKS3_TOKEN) for secretless pushes",
      ),
    ];
  }
  const claims = token.claims;
  const findings: Finding[] = describeClaims(claims, nowMs).map(info);
  const aud = audOf(claims);
  const iss = typeof claims.iss === "string" ? claims.iss : undefined;

  if (typeof claims.exp === "number" && claims.exp * 1000 <= nowMs) {
    findings.push(problem(`the token expired at ${new Date(claims.exp * 1000).toISOString()}`, "run doctor inside the job that gets the token: an id_token lives only as long as the job's timeout"));
  }

  if (iss === undefined) {
    findings.push(problem("the token has no iss claim", "use the job's GitLab id_token (id_tokens: NIKS3_TOKEN)"));
  } else if (ciServerUrl === undefined) {
    findings.push(info("CI_SERVER_URL is not set (not in a GitLab job), so iss is not compared with it"));
  } else if (iss !== ciServerUrl) {
    const slash = iss.replace(/\/+$/, "") === ciServerUrl.replace(/\/+$/, "") ? " (they differ only in a trailing slash, which niks3 compares too)" : "";
    findings.push(
      warning(
        `the token's iss is ${iss} but CI_SERVER_URL is ${ciServerUrl}${slash}`,
        `configure the niks3 OIDC provider with issuer "${iss}" exactly, as the token carries it`,
      ),
    );
  } else {
    findings.push(ok(`the token's iss equals CI_SERVER_URL (${iss})`));
  }

  if (cacheConfig === undefined || !cacheConfig.ok) {
    findings.push(info("the token's aud is not compared: the server's cache-config could not be read"));
    return findings;
  }
  const expected = cacheConfig.config.oidcAudience;
  if (expected === undefined) {
    findings.push(
      problem(
        `the niks3 server has no OIDC provider for issuer ${issuer ?? "(none)"} (the token's iss), so it will refuse this token`,
        `add a provider to niks3-server's OIDC config with issuer "${issuer ?? ""}" (${issuer?.endsWith("/") ? "exactly, trailing slash included" : "exactly, no trailing slash"}) and audience "${aud[0] ?? "<the token's aud>"}"`,
      ),
    );
  } else if (!aud.includes(expected)) {
    findings.push(
      problem(
        `the token's aud is ${aud.join(", ") || "(none)"} but the server's oidc_audience for issuer ${issuer ?? ""} is ${expected}`,
        `set the build component's input audience to ${expected} (it sets id_tokens: NIKS3_TOKEN: aud), or set the server provider's audience to ${aud[0] ?? "the token's aud"}`,
      ),
    );
  } else {
    findings.push(ok(`the token's aud matches the server's oidc_audience (${expected})`));
  }
  return findings;
}

/** formatFinding: the one line the doctor prints for a finding. */
export function formatFinding(finding: Finding): string {
  const fix = finding.fix ? `; fix: ${finding.fix}` : "";
  switch (finding.level) {
    case "ok":
      return `ok: ${finding.message}`;
    case "info":
      return finding.message;
    case "warning":
      return `warning: ${finding.message}${fix}`;
    case "problem":
      return `problem: ${finding.message}${fix}`;
  }
}
