// Building with Nix: argv builders and parsers (pure) plus runNixBuild, which turns one
// `nix build --keep-going` into one result per installable. Output paths always come from Nix's
// JSON (`nix build --json`, or `nix path-info --json` when the combined build failed).

import type { Logger } from "../log.ts";
import { runProcess } from "../edges/proc.ts";
import { parsePathInfoJson } from "./path-info.ts";

export const NIX_FEATURES = ["--extra-experimental-features", "nix-command flakes"] as const;

export interface InstallableResult {
  installable: string;
  ok: boolean;
  /** Output name → store path, from Nix's JSON. */
  outputs: Record<string, string>;
  /** Why it failed: the evaluation error or the tail of the build log. */
  error?: string;
}

export function nixBuildArgs(installables: readonly string[]): string[] {
  return ["build", ...NIX_FEATURES, "--json", "--no-link", "--keep-going", "--print-build-logs", ...installables];
}

export function nixPathInfoArgs(installable: string): string[] {
  return ["path-info", ...NIX_FEATURES, "--json", installable];
}

export interface BuildJsonEntry {
  drvPath?: string;
  outputs: Record<string, string>;
}

/** parseBuildJson reads `nix build --json`: one entry per installable, in the order given. */
export function parseBuildJson(text: string): BuildJsonEntry[] {
  const data: unknown = JSON.parse(text);
  if (!Array.isArray(data)) throw new Error("nix build --json did not print an array");
  return data.map((entry: { drvPath?: unknown; outputs?: unknown }) => {
    const outputs: Record<string, string> = {};
    if (entry.outputs && typeof entry.outputs === "object") {
      for (const [name, path] of Object.entries(entry.outputs)) if (typeof path === "string") outputs[name] = path;
    }
    return { ...(typeof entry.drvPath === "string" ? { drvPath: entry.drvPath } : {}), outputs };
  });
}

/** logTail keeps the last lines of a Nix log, the part that says why a build failed. */
export function logTail(text: string, lines = 25): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

export interface NixRunOptions {
  cwd: string;
  env: NodeJS.ProcessEnv;
  log: Logger;
  /** Each installable's derivation, when the caller knows it (warm does), to read Nix's JSON without asking again. */
  drvPaths?: readonly (string | undefined)[];
}

/**
 * matchBuildJson pairs `nix build --json` entries with the installables. Nix lists one entry per
 * derivation in its own order (by derivation name in Nix 2.8), not in argument order, so entries
 * are matched by drvPath; without drvPaths only a single installable can be matched. Undefined
 * when some installable has no entry: the caller then asks Nix per installable.
 */
export function matchBuildJson(
  installables: readonly string[],
  entries: readonly BuildJsonEntry[],
  drvPaths?: readonly (string | undefined)[],
): Record<string, string>[] | undefined {
  if (installables.length === 1 && entries.length === 1 && !drvPaths) return [entries[0]!.outputs];
  if (!drvPaths || drvPaths.length !== installables.length) return undefined;
  const byDrv = new Map(entries.flatMap((entry) => (entry.drvPath ? [[entry.drvPath, entry.outputs] as const] : [])));
  const matched = drvPaths.map((drvPath) => (drvPath ? byDrv.get(drvPath) : undefined));
  return matched.every((outputs) => outputs !== undefined) ? (matched as Record<string, string>[]) : undefined;
}

interface Classified {
  installable: string;
  state: "built" | "unbuilt" | "eval-error";
  outputs: Record<string, string>;
  error?: string;
}

/** classifyInstallable asks Nix (without building) where an installable's outputs are and if they exist. */
async function classifyInstallable(installable: string, options: NixRunOptions): Promise<Classified> {
  const result = await runProcess("nix", nixPathInfoArgs(installable), { cwd: options.cwd, env: options.env });
  if (result.exitCode !== 0) {
    return { installable, state: "eval-error", outputs: {}, error: logTail(result.stderr, 15) };
  }
  const infos = parsePathInfoJson(result.stdout);
  const outputs: Record<string, string> = {};
  infos.forEach((info, index) => {
    outputs[index === 0 ? "out" : `out${index}`] = info.path;
  });
  return { installable, state: infos.length > 0 && infos.every((info) => info.valid) ? "built" : "unbuilt", outputs };
}

async function buildOnce(installables: readonly string[], options: NixRunOptions) {
  return runProcess("nix", nixBuildArgs(installables), {
    cwd: options.cwd,
    env: options.env,
    onStderrLine: (line) => options.log.raw(`${line}\n`),
  });
}

/**
 * runNixBuild builds all installables in one `nix build --keep-going`. When that fails, it asks Nix
 * per installable which ones were built, so one failure never hides the others' outputs. An
 * evaluation error stops Nix before it builds anything, so the installables that do evaluate are
 * built once more without the broken ones.
 */
export async function runNixBuild(installables: readonly string[], options: NixRunOptions): Promise<InstallableResult[]> {
  const first = await buildOnce(installables, options);
  if (first.exitCode === 0) {
    const matched = matchBuildJson(installables, parseBuildJson(first.stdout), options.drvPaths);
    if (matched) return installables.map((installable, index) => ({ installable, ok: true, outputs: matched[index] ?? {} }));
  }

  let classified = await Promise.all(installables.map((installable) => classifyInstallable(installable, options)));
  let buildLog = first.stderr;
  const retry = classified.filter((c) => c.state === "unbuilt").map((c) => c.installable);
  if (classified.some((c) => c.state === "eval-error") && retry.length > 0) {
    options.log.warn(`some installables did not evaluate; building the other ${retry.length} on their own`);
    const second = await buildOnce(retry, options);
    buildLog = second.stderr;
    const again = await Promise.all(retry.map((installable) => classifyInstallable(installable, options)));
    classified = classified.map((c) => again.find((a) => a.installable === c.installable) ?? c);
  }

  return classified.map((c) => {
    if (c.state === "built") return { installable: c.installable, ok: true, outputs: c.outputs };
    const error = c.state === "eval-error" ? c.error : logTail(buildLog);
    return { installable: c.installable, ok: false, outputs: c.outputs, ...(error ? { error } : {}) };
  });
}
