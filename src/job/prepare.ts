// The first half of every job (build, warm, setup): resolve settings and the plan, install niks3
// and read the server's cache-config in parallel, make Nix pull from the cache, and check the
// token's audience before anything is pushed.

import { join } from "node:path";
import { readCiContext, type CiContext } from "../ci-context.ts";
import type { ProxyEnv } from "../edges/http.ts";
import { installNiks3, type Niks3Install } from "../install/index.ts";
import { plural, type Logger } from "../log.ts";
import { MANIFEST } from "../manifest.ts";
import { fetchCacheConfig, type CacheConfigResult } from "../niks3/cache-config.ts";
import { writeNixConf } from "../nix/config.ts";
import { planJob, type JobPlan } from "../policy.ts";
import { Sections } from "../report/sections.ts";
import { printPlan } from "../report/summary.ts";
import { resolveSettings, type RawSettings, type Settings } from "../settings.ts";
import { checkAudience, decodeTokenClaims, type TokenClaims } from "../token.ts";
import type { UploadFacts } from "../upload/mode.ts";
import { probeUploadFacts } from "../upload/probe.ts";
import type { CommandContext } from "./context.ts";

export interface PreparedJob {
  settings: Settings;
  ci: CiContext;
  plan: JobPlan;
  claims: TokenClaims | undefined;
  /** niks3, when the plan pushes. */
  install: Niks3Install | undefined;
  cacheConfig: CacheConfigResult;
  /** The substituter Nix now pulls from, if the server advertised one. */
  substituter: string | undefined;
  /** Environment for Nix and niks3: our nix.conf added, the token removed. */
  childEnv: NodeJS.ProcessEnv;
  /** Why a push would certainly be refused (the audience does not match), found before building. */
  blockedPush: string | undefined;
  /** The job's log sections and their durations; later steps (build, push) add theirs. */
  sections: Sections;
  /** Whether Nix runs a post-build-hook here (for the upload mode), asked alongside the network. */
  uploadFacts: Promise<UploadFacts> | undefined;
}

export interface PrepareOptions {
  /** Installables to plan for; the settings' installables when not given (warm discovers its own). */
  installables?: (settings: Settings) => Promise<string[]> | string[];
  /** Pin every installable as `<base>/<label>`, even a single one (warm: one pin per flake output). */
  pinEach?: boolean;
}

/**
 * childEnvOf: what Nix and niks3 see. The token is not in it: niks3 reads it from a 0600 file.
 * Nor is the merge request note's token (`secretVariable`), which only the helper uses.
 */
export function childEnvOf(env: NodeJS.ProcessEnv, extra: Record<string, string>, secretVariable?: string): NodeJS.ProcessEnv {
  const { NIKS3_TOKEN: _token, ...rest } = env;
  if (secretVariable) delete rest[secretVariable];
  return { ...rest, ...extra };
}

export function proxyEnvOf(env: NodeJS.ProcessEnv): ProxyEnv {
  const { HTTP_PROXY, HTTPS_PROXY, NO_PROXY, http_proxy, https_proxy, no_proxy } = env;
  return { HTTP_PROXY, HTTPS_PROXY, NO_PROXY, http_proxy, https_proxy, no_proxy };
}

function configurePull(settings: Settings, cacheConfig: CacheConfigResult, env: NodeJS.ProcessEnv, log: Logger) {
  if (!cacheConfig.ok) {
    log.warn(`cannot read the cache configuration from ${settings.serverUrl} (${cacheConfig.reason}); building without the cache`);
    return { nixEnv: {}, substituter: undefined };
  }
  const { substituterUrl, publicKeys } = cacheConfig.config;
  if (!substituterUrl) {
    log.warn("the niks3 server advertises no substituter (started without --cache-url); building without pulling");
    return { nixEnv: {}, substituter: undefined };
  }
  const conf = writeNixConf(join(settings.reportDir, "nix"), { substituterUrl, publicKeys }, env);
  log.info(`pulling from ${substituterUrl} (${plural(publicKeys.length, "trusted key")})`);
  return { nixEnv: conf.env, substituter: substituterUrl };
}

function checkPushAllowed(plan: JobPlan, claims: TokenClaims | undefined, cacheConfig: CacheConfigResult, issuer: string | undefined, log: Logger) {
  if (!plan.push || !claims || !cacheConfig.ok) return undefined;
  if (cacheConfig.config.oidcAudience === undefined) {
    log.warn(
      `the server has no OIDC provider for issuer ${issuer ?? "(unknown)"}; unless it accepts this token otherwise, the push will be refused`,
    );
    return undefined;
  }
  const audience = checkAudience(claims, cacheConfig.config.oidcAudience);
  if (audience.ok) return undefined;
  log.warn(`${audience.problem}; not pushing`);
  return audience.problem;
}

export async function prepareJob(flags: RawSettings, context: CommandContext, options: PrepareOptions = {}): Promise<PreparedJob> {
  const { env, log } = context;
  const ci = readCiContext(env, context.cwd);
  const settings = resolveSettings(flags, env, { projectDir: ci.projectDir, required: ["serverUrl"] });
  const claims = settings.token ? decodeTokenClaims(settings.token) : undefined;
  const installables = options.installables ? await options.installables(settings) : settings.installables;
  const plan = planJob(
    { installables, push: settings.push, pin: settings.pin, hasToken: settings.token !== undefined, pinEach: options.pinEach === true },
    ci,
  );
  printPlan(log, plan, settings.serverUrl);

  const issuer = claims?.iss ?? ci.serverUrl;
  const http = { proxyEnv: proxyEnvOf(env) };
  // Install and configure run in parallel; each prints its own log section once done, folded
  // when it went well.
  const sections = new Sections(log);
  const uploadFacts =
    plan.push && settings.uploadMode === "auto" ? probeUploadFacts(childEnvOf(env, {}, settings.mrNoteTokenVariable), undefined) : undefined;
  const installing = plan.push
    ? sections.capture("install", `installing niks3 ${settings.niks3Version}`, (sectionLog) =>
        installNiks3({
          version: settings.niks3Version,
          downloadUrl: settings.downloadUrl,
          cacheDir: settings.cacheDir,
          path: env.PATH ?? "",
          platform: context.platform,
          arch: context.arch,
          pinnedSha256: MANIFEST.niks3.sha256,
          log: sectionLog,
          http,
        }),
      )
    : undefined;
  const configuring = sections.capture("configure", `configuring Nix to pull from ${settings.serverUrl}`, async (sectionLog) => {
    const cacheConfig = await fetchCacheConfig(settings.serverUrl, issuer, http, settings.cacheConfigTimeoutSeconds);
    const { nixEnv, substituter } = configurePull(settings, cacheConfig, env, sectionLog);
    const blockedPush = checkPushAllowed(plan, claims, cacheConfig, issuer, sectionLog);
    return { cacheConfig, nixEnv, substituter, blockedPush };
  });
  const { cacheConfig, nixEnv, substituter, blockedPush } = await configuring.replay();
  const install = await installing?.replay();
  const childEnv = childEnvOf(env, nixEnv, settings.mrNoteTokenVariable);
  return { settings, ci, plan, claims, install, cacheConfig, substituter, childEnv, blockedPush, sections, uploadFacts };
}
