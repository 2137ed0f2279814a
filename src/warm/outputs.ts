// What warm builds, decided from the discovered outputs (pure): output names, the installables that
// name them on a command line, the include/exclude filter, and one build per derivation.

import type { DiscoveredOutput } from "../nix/discover.ts";
import type { InstallableResult } from "../nix/build.ts";

/** WarmOutput: one flake output as warm reports, builds and pins it. */
export interface WarmOutput {
  /** The system-less name filters and reports use: `packages.hello`, `checks.unit`, `formatter`. */
  name: string;
  /** The attribute path under the flake: `packages.x86_64-linux.hello`. */
  attrPath: string;
  /** What `nix build` takes: `.#packages.x86_64-linux.hello`. */
  installable: string;
  ok: boolean;
  drvPath?: string;
  error?: string;
}

/** attrSegment: an attribute name as an installable's selection path needs it (quoted when it holds a dot). */
function attrSegment(name: string): string {
  return name.includes(".") ? `"${name}"` : name;
}

/**
 * toWarmOutput names a discovered output. Names that no installable can spell (a double quote, or
 * characters a flake reference decodes: `%`, `#`, `?`) become failed outputs that say so.
 */
export function toWarmOutput(flake: string, system: string, output: DiscoveredOutput): WarmOutput {
  const { category, attr } = output;
  const name = attr === undefined ? category : `${category}.${attr}`;
  const attrPath = category === "formatter" || attr === undefined ? `${category}.${system}` : `${category}.${system}.${attrSegment(attr)}`;
  const base = { name, attrPath, installable: `${flake}#${attrPath}` };
  if (attr !== undefined && /["%#?]/.test(attr)) {
    return { ...base, ok: false, error: `the attribute name ${JSON.stringify(attr)} cannot be named in an installable (it holds " % # or ?)` };
  }
  if (!output.ok) return { ...base, ok: false, error: output.error ?? "did not evaluate" };
  return { ...base, ok: true, ...(output.drvPath ? { drvPath: output.drvPath } : {}) };
}

/** globToRegExp: `*` is any run of characters (dots included), `?` one character; the whole name must match. */
export function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${body}$`);
}

export interface Selection {
  selected: WarmOutput[];
  /** Names of outputs the filter left out. */
  excluded: string[];
  /** Include patterns that matched no output (a typo, most likely). */
  unmatched: string[];
}

/**
 * selectOutputs applies the filter: an output is built when some include pattern matches it (or
 * there are none) and no exclude pattern does. A pattern matches an output's name
 * (`packages.hello`) or its attribute path (`packages.x86_64-linux.hello`).
 */
export function selectOutputs(outputs: readonly WarmOutput[], include: readonly string[], exclude: readonly string[]): Selection {
  const includes = include.map((glob) => ({ glob, re: globToRegExp(glob) }));
  const excludes = exclude.map(globToRegExp);
  const matches = (re: RegExp, output: WarmOutput) => re.test(output.name) || re.test(output.attrPath);
  const used = new Set<string>();
  const selected: WarmOutput[] = [];
  const excluded: string[] = [];
  for (const output of outputs) {
    const hits = includes.filter(({ re }) => matches(re, output));
    for (const { glob } of hits) used.add(glob);
    const included = includes.length === 0 || hits.length > 0;
    if (included && !excludes.some((re) => matches(re, output))) selected.push(output);
    else excluded.push(output.name);
  }
  return { selected, excluded, unmatched: include.filter((glob) => !used.has(glob)) };
}

/**
 * uniqueBuilds: the installables to build, one per derivation (`packages.default` is often
 * `packages.hello`; building both would ask Nix twice for the same thing). The first output in
 * order stands for the others.
 */
export function uniqueBuilds(outputs: readonly WarmOutput[]): WarmOutput[] {
  const seen = new Set<string>();
  const builds: WarmOutput[] = [];
  for (const output of outputs) {
    if (!output.ok) continue;
    const key = output.drvPath ?? output.installable;
    if (seen.has(key)) continue;
    seen.add(key);
    builds.push(output);
  }
  return builds;
}

/**
 * warmResults gives every selected output its result, in order: its own evaluation error, or the
 * build result of the output that stood for its derivation.
 */
export function warmResults(outputs: readonly WarmOutput[], builds: readonly InstallableResult[]): InstallableResult[] {
  const byInstallable = new Map(builds.map((result) => [result.installable, result]));
  const byDrv = new Map<string, InstallableResult>();
  for (const output of outputs) {
    const built = byInstallable.get(output.installable);
    if (built && output.drvPath && !byDrv.has(output.drvPath)) byDrv.set(output.drvPath, built);
  }
  return outputs.map((output) => {
    if (!output.ok) return { installable: output.installable, ok: false, outputs: {}, error: `evaluation failed: ${output.error ?? "unknown error"}` };
    const built = byInstallable.get(output.installable) ?? (output.drvPath ? byDrv.get(output.drvPath) : undefined);
    if (!built) return { installable: output.installable, ok: false, outputs: {}, error: "not built" };
    return { ...built, installable: output.installable, outputs: { ...built.outputs } };
  });
}
