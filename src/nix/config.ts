// Configuring Nix to pull from the cache: a nix.conf of our own that Nix reads through
// NIX_USER_CONF_FILES, listed before the user's files so theirs keep applying. We never write to a
// nix.conf the user owns.

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface SubstituterConfig {
  substituterUrl: string;
  publicKeys: string[];
}

/**
 * nixConfText renders the settings; extra-* so the user's substituters and keys stay in force.
 * Nix remembers a cache miss for an hour (narinfo-cache-negative-ttl) in ~/.cache/nix; on a runner
 * whose home persists, a path that another job pushed meanwhile would then be built again, so
 * misses are not remembered.
 */
export function nixConfText(config: SubstituterConfig): string {
  const lines = [`extra-substituters = ${config.substituterUrl}`, "narinfo-cache-negative-ttl = 0"];
  if (config.publicKeys.length > 0) lines.push(`extra-trusted-public-keys = ${config.publicKeys.join(" ")}`);
  return `# written by niks3-gitlab: pull from the niks3 cache\n${lines.join("\n")}\n`;
}

/**
 * userConfFiles is the NIX_USER_CONF_FILES value that adds `ours` and keeps what Nix would read
 * anyway: the current NIX_USER_CONF_FILES, or else Nix's default per-user files (XDG locations).
 */
export function userConfFiles(ours: string, env: NodeJS.ProcessEnv): string {
  if (env.NIX_USER_CONF_FILES !== undefined && env.NIX_USER_CONF_FILES !== "") {
    return [ours, env.NIX_USER_CONF_FILES].join(":");
  }
  const configHome = env.XDG_CONFIG_HOME || (env.HOME ? join(env.HOME, ".config") : undefined);
  const configDirs = (env.XDG_CONFIG_DIRS || "/etc/xdg").split(":").filter(Boolean);
  const defaults = [...(configHome ? [configHome] : []), ...configDirs].map((dir) => join(dir, "nix", "nix.conf"));
  return [ours, ...defaults].join(":");
}

/** writeNixConf writes our nix.conf into dir and returns the environment that makes Nix read it. */
export function writeNixConf(dir: string, config: SubstituterConfig, env: NodeJS.ProcessEnv): { path: string; env: Record<string, string> } {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, "nix.conf");
  writeFileSync(path, nixConfText(config), { mode: 0o644 });
  return { path, env: { NIX_USER_CONF_FILES: userConfFiles(path, env) } };
}
