// Closure sizes for the summary: one `nix path-info --json --recursive` over every output that was
// built, then the size of each installable's closure (the union of its outputs' closures, so a
// dependency shared by two outputs counts once) is summed here from narSize and references.

import { runProcess } from "../edges/proc.ts";
import { NIX_FEATURES } from "./build.ts";
import { parsePathInfoJson, type PathInfo } from "./path-info.ts";

export function nixPathInfoRecursiveArgs(paths: readonly string[]): string[] {
  return ["path-info", ...NIX_FEATURES, "--json", "--recursive", ...paths];
}

/**
 * closureSizes sums the NAR sizes of each group's closure, from `infos` (the recursive path-info of
 * all groups). A group whose closure is not fully known (an invalid path, a size missing) gets
 * undefined rather than a number that is too small.
 */
export function closureSizes(infos: readonly PathInfo[], groups: readonly (readonly string[])[]): (number | undefined)[] {
  const byPath = new Map<string, PathInfo>();
  const byName = new Map<string, PathInfo>();
  for (const info of infos) {
    byPath.set(info.path, info);
    byName.set(info.path.slice(info.path.lastIndexOf("/") + 1), info);
  }
  // Newer JSON formats may give references as base names rather than full paths.
  const lookup = (ref: string) => byPath.get(ref) ?? byName.get(ref.slice(ref.lastIndexOf("/") + 1));

  return groups.map((roots) => {
    if (roots.length === 0) return undefined;
    const seen = new Set<string>();
    const stack = [...roots];
    let total = 0;
    while (stack.length > 0) {
      const path = stack.pop() as string;
      const info = lookup(path);
      if (!info || !info.valid || info.narSize === undefined) return undefined;
      if (seen.has(info.path)) continue;
      seen.add(info.path);
      total += info.narSize;
      stack.push(...info.references);
    }
    return total;
  });
}

export interface Closures {
  /** The size of each group's closure, undefined when unknown. */
  sizes: (number | undefined)[];
  /** Every path in the groups' closures; undefined when Nix could not say. */
  paths: ReadonlySet<string> | undefined;
}

/** measureClosures asks Nix once; any failure means "unknown", never a failed job. */
export async function measureClosures(groups: readonly (readonly string[])[], options: { env: NodeJS.ProcessEnv; cwd?: string }): Promise<Closures> {
  const unknown = { sizes: groups.map(() => undefined), paths: undefined };
  const all = [...new Set(groups.flat())];
  if (all.length === 0) return { ...unknown, paths: new Set() };
  const result = await runProcess("nix", nixPathInfoRecursiveArgs(all), { env: options.env, ...(options.cwd ? { cwd: options.cwd } : {}) });
  if (result.exitCode !== 0) return unknown;
  try {
    const infos = parsePathInfoJson(result.stdout);
    return { sizes: closureSizes(infos, groups), paths: new Set(infos.filter((info) => info.valid).map((info) => info.path)) };
  } catch {
    return unknown;
  }
}

/** formatBytes: `512 B`, `1.5 KiB`, `12.0 MiB`, `3.20 GiB`. */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  if (unit === 0) return `${value} B`;
  return `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}
