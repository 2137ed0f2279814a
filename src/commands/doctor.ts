// `niks3-gitlab doctor`: checks a job's setup before it matters. Nix (present, version, trust mode),
// the niks3 server (/health, cache-config) and the job's id_token against both GitLab and the server.
// Prints one line per finding, a fix with every problem, and exits 1 when there is a problem. It
// prints claim names and values, never the token.

import { readCiContext } from "../ci-context.ts";
import { checkCacheConfig, checkHealth, checkNix, checkToken, checkTrust, formatFinding, type Finding } from "../doctor/checks.ts";
import { probeHealth, probeNix, tokenFacts } from "../doctor/probes.ts";
import { ExitCode } from "../errors.ts";
import { proxyEnvOf } from "../job/prepare.ts";
import type { CommandContext } from "../job/context.ts";
import { fetchCacheConfig } from "../niks3/cache-config.ts";
import { resolveSettings, type RawSettings } from "../settings.ts";
import { probeUploadFacts } from "../upload/probe.ts";
import { plural } from "../log.ts";

/** Fail fast: a doctor that waits a minute on a dead server helps nobody. */
const HTTP = { attempts: 2, timeoutMs: 10_000, baseDelayMs: 250 } as const;

export async function runDoctor(flags: RawSettings, context: CommandContext): Promise<number> {
  const { env, log } = context;
  const ci = readCiContext(env, context.cwd);
  const settings = resolveSettings(flags, env, { projectDir: ci.projectDir, required: ["serverUrl"] });
  const token = tokenFacts(settings.token);
  const iss = typeof token.claims?.iss === "string" ? token.claims.iss : undefined;
  const issuer = iss ?? ci.serverUrl;
  const http = { ...HTTP, proxyEnv: proxyEnvOf(env) };

  log.info(`doctor: checking Nix, the niks3 server ${settings.serverUrl} and this job's id_token`);
  const [nix, health] = await Promise.all([probeNix(env), probeHealth(settings.serverUrl, http)]);
  const [trust, cacheConfig] = await Promise.all([
    nix.found ? probeUploadFacts(env, undefined) : Promise.resolve(undefined),
    health.ok ? fetchCacheConfig(settings.serverUrl, issuer, http) : Promise.resolve(undefined),
  ]);

  const findings: Finding[] = [
    checkNix(nix),
    ...(trust ? [checkTrust(trust)] : []),
    checkHealth(settings.serverUrl, health),
    ...(cacheConfig ? checkCacheConfig(settings.serverUrl, cacheConfig) : []),
    ...checkToken({ token, ciServerUrl: ci.serverUrl, cacheConfig, issuer, nowMs: Date.now() }),
  ];
  for (const finding of findings) log.info(formatFinding(finding));

  const problems = findings.filter((finding) => finding.level === "problem").length;
  log.info(problems === 0 ? "doctor: no problems found" : `doctor: ${plural(problems, "problem")} found`);
  return problems === 0 ? ExitCode.ok : ExitCode.failure;
}
