// `niks3-gitlab ci`: the build job. Resolve settings and plan, install niks3 and read the server's
// cache-config (in parallel), configure Nix to pull, build, push what was built (also when some
// installables failed), report, and pick the exit code from the results.

import { join } from "node:path";
import { readCiContext } from "../ci-context.ts";
import type { ProxyEnv } from "../edges/http.ts";
import type { Logger } from "../log.ts";
import { MANIFEST } from "../manifest.ts";
import { fetchCacheConfig, type CacheConfigResult } from "../niks3/cache-config.ts";
import { runPushes, pushFailureHint, type PushItem, type PushOutcome } from "../niks3/push.ts";
import { runNixBuild, type InstallableResult } from "../nix/build.ts";
import { writeNixConf } from "../nix/config.ts";
import { planJob, type JobPlan } from "../policy.ts";
import { exitCodeFor, printPlan, printResults, writeSummary, type JobSummary } from "../report/summary.ts";
import { resolveSettings, type RawSettings, type Settings } from "../settings.ts";
import { checkAudience, decodeTokenClaims, writeTokenFile } from "../token.ts";
import { installNiks3 } from "../install/index.ts";

export interface CommandContext {
  env: NodeJS.ProcessEnv;
  cwd: string;
  log: Logger;
  platform: string;
  arch: string;
}

/** childEnv: what Nix and niks3 see. The token is not in it: niks3 reads it from the 0600 file. */
function childEnv(env: NodeJS.ProcessEnv, extra: Record<string, string>): NodeJS.ProcessEnv {
  const { NIKS3_TOKEN: _token, ...rest } = env;
  return { ...rest, ...extra };
}

function proxyEnvOf(env: NodeJS.ProcessEnv): ProxyEnv {
  const { HTTP_PROXY, HTTPS_PROXY, NO_PROXY, http_proxy, https_proxy, no_proxy } = env;
  return { HTTP_PROXY, HTTPS_PROXY, NO_PROXY, http_proxy, https_proxy, no_proxy };
}

async function configurePull(
  settings: Settings,
  cacheConfig: CacheConfigResult,
  env: NodeJS.ProcessEnv,
  log: Logger,
): Promise<{ nixEnv: Record<string, string>; substituter: string | undefined }> {
  if (!cacheConfig.ok) {
    log.warn(`cannot read the cache configuration from ${settings.serverUrl} (${cacheConfig.reason}); building without the cache`);
    return { nixEnv: {}, substituter: undefined };
  }
  const { substituterUrl, publicKeys } = cacheConfig.config;
  if (!substituterUrl) {
    log.warn(`the niks3 server advertises no substituter (started without --cache-url); building without pulling`);
    return { nixEnv: {}, substituter: undefined };
  }
  const conf = writeNixConf(join(settings.reportDir, "nix"), { substituterUrl, publicKeys }, env);
  log.info(`pulling from ${substituterUrl} (${publicKeys.length} trusted key${publicKeys.length === 1 ? "" : "s"})`);
  return { nixEnv: conf.env, substituter: substituterUrl };
}

/** pushItems: one niks3 push for all unpinned paths, one per pinned path (niks3 allows one path per --pin). */
export function pushItems(plan: JobPlan, results: readonly InstallableResult[]): PushItem[] {
  const unpinned: string[] = [];
  const pinned: PushItem[] = [];
  results.forEach((result, index) => {
    if (!result.ok) return;
    const paths = Object.values(result.outputs);
    const pin = plan.installables[index]?.pin;
    const [first, ...rest] = paths;
    if (pin && first) {
      pinned.push({ paths: [first], pin });
      unpinned.push(...rest);
    } else {
      unpinned.push(...paths);
    }
  });
  const unique = [...new Set(unpinned)];
  return [...(unique.length ? [{ paths: unique, pin: undefined }] : []), ...pinned];
}

export async function runCi(flags: RawSettings, context: CommandContext): Promise<number> {
  const { env, log } = context;
  const ci = readCiContext(env, context.cwd);
  const settings = resolveSettings(flags, env, { projectDir: ci.projectDir, required: ["serverUrl"] });
  const claims = settings.token ? decodeTokenClaims(settings.token) : undefined;
  const plan = planJob(
    { installables: settings.installables, push: settings.push, pin: settings.pin, hasToken: settings.token !== undefined },
    ci,
  );
  printPlan(log, plan, settings.serverUrl);

  const issuer = claims?.iss ?? ci.serverUrl;
  const http = { proxyEnv: proxyEnvOf(env) };
  const [install, cacheConfig] = await Promise.all([
    plan.push
      ? installNiks3({
          version: settings.niks3Version,
          downloadUrl: settings.downloadUrl,
          cacheDir: settings.cacheDir,
          path: env.PATH ?? "",
          platform: context.platform,
          arch: context.arch,
          pinnedSha256: MANIFEST.niks3.sha256,
          log,
          http,
        })
      : Promise.resolve(undefined),
    fetchCacheConfig(settings.serverUrl, issuer, http),
  ]);

  const { nixEnv, substituter } = await configurePull(settings, cacheConfig, env, log);

  let blockedPush: string | undefined;
  if (plan.push && claims && cacheConfig.ok) {
    if (cacheConfig.config.oidcAudience === undefined) {
      log.warn(
        `the server has no OIDC provider for issuer ${issuer ?? "(unknown)"}; unless it accepts this token otherwise, the push will be refused`,
      );
    } else {
      const audience = checkAudience(claims, cacheConfig.config.oidcAudience);
      if (!audience.ok) {
        blockedPush = audience.problem;
        log.warn(`${audience.problem}; not pushing`);
      }
    }
  }

  const results = await runNixBuild(settings.installables, { cwd: context.cwd, env: childEnv(env, nixEnv), log });

  let push: PushOutcome | undefined;
  const items = pushItems(plan, results);
  if (plan.push && blockedPush) {
    push = { ok: false, uploaded: 0, cached: 0, pinned: [], error: blockedPush };
  } else if (plan.push && install && items.length > 0 && settings.token) {
    const tokenFile = writeTokenFile(settings.token);
    try {
      log.info(`pushing ${items.reduce((n, item) => n + item.paths.length, 0)} store paths with ${install.niks3}`);
      push = await runPushes(items, {
        niks3: install.niks3,
        serverUrl: settings.serverUrl,
        tokenPath: tokenFile.path,
        debug: settings.debug,
        timeoutSeconds: settings.pushTimeoutSeconds,
        env: childEnv(env, nixEnv),
        cwd: context.cwd,
        log,
      });
    } finally {
      tokenFile.remove();
    }
    const hint = push.error ? pushFailureHint(push.error) : undefined;
    if (hint) log.warn(hint);
  }

  const exitCode = exitCodeFor(results, push, settings.strict);
  const summary: JobSummary = {
    schema: 1,
    pipeline: plan.kind,
    server_url: settings.serverUrl,
    substituter,
    push: {
      planned: plan.push,
      attempted: push !== undefined,
      ok: push?.ok ?? false,
      uploaded: push?.uploaded ?? 0,
      cached: push?.cached ?? 0,
      pinned: push?.pinned ?? [],
      error: push?.error,
    },
    notices: plan.notices,
    installables: results.map((result, index) => ({
      installable: result.installable,
      ok: result.ok,
      outputs: result.outputs,
      pin: result.ok ? plan.installables[index]?.pin : undefined,
      error: result.error,
    })),
    exit_code: exitCode,
  };
  printResults(log, summary);
  writeSummary(settings.reportDir, summary, log);
  if (push && !push.ok && exitCode !== 1) {
    log.warn(`the build succeeded but the push failed: exit code ${exitCode} (set strict: true to fail the job instead)`);
  }
  return exitCode;
}
