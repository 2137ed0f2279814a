// The store diff: list the store before and after the build and push what is new. A readdir of the
// store dir, not `nix path-info --all` (seconds on a big store); entries that are not store paths
// or never worth pushing are skipped (.drv, .lock, .chroot, .check, dot files), and so are paths
// that are not valid (a failed build leaves its output dir behind, and one invalid path makes
// `nix path-info` fail the whole push: cachix-action#44/#83/#106).

import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runProcess } from "../edges/proc.ts";

const STORE_ENTRY = /^[0-9a-df-np-sv-z]{32}-[^/]+$/;
const SKIPPED_SUFFIXES = [".drv", ".lock", ".chroot", ".check"];

/** isPushCandidate: a store path name worth pushing if it turns out to be valid. */
export function isPushCandidate(name: string): boolean {
  return STORE_ENTRY.test(name) && !SKIPPED_SUFFIXES.some((suffix) => name.endsWith(suffix));
}

export function storeDirOf(env: NodeJS.ProcessEnv): string {
  return env.NIX_STORE_DIR || "/nix/store";
}

/** listStore returns the names of the candidate entries of the store dir. */
export async function listStore(storeDir: string): Promise<string[]> {
  return (await readdir(storeDir)).filter(isPushCandidate);
}

/** newEntries: names in `after` that were not in `before`, as full store paths, sorted. */
export function newEntries(storeDir: string, before: Iterable<string>, after: readonly string[]): string[] {
  const seen = new Set(before);
  return after
    .filter((name) => !seen.has(name))
    .sort()
    .map((name) => join(storeDir, name));
}

/** saveListing / loadListing keep the "before" listing between the setup component's two scripts. */
export async function saveListing(path: string, names: readonly string[]): Promise<void> {
  await writeFile(path, names.join("\n") + "\n", { mode: 0o600 });
}

export async function loadListing(path: string): Promise<string[]> {
  return (await readFile(path, "utf8")).split("\n").filter(Boolean);
}

/** validPaths keeps the paths Nix has registered, asking `nix-store --check-validity` in chunks. */
export async function validPaths(paths: readonly string[], env: NodeJS.ProcessEnv): Promise<string[]> {
  const invalid = new Set<string>();
  for (let i = 0; i < paths.length; i += 500) {
    const chunk = paths.slice(i, i + 500);
    const result = await runProcess("nix-store", ["--check-validity", "--print-invalid", ...chunk], { env });
    if (result.exitCode !== 0) throw new Error(`nix-store --check-validity failed: ${result.stderr.trim().split("\n").at(-1) ?? ""}`);
    for (const line of result.stdout.split("\n")) if (line) invalid.add(line.trim());
  }
  return paths.filter((path) => !invalid.has(path));
}
