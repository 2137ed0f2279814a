// Discovering a flake's buildable outputs for one system: packages, checks, devShells and
// formatter. One `nix eval` returns every output's name and drvPath, each evaluated under
// builtins.tryEval so that one broken output does not hide the others. Errors tryEval cannot catch
// (abort, a missing attribute, a type error) fail that one eval; then the names are listed on their
// own and each output is evaluated alone, so the job still learns which outputs are broken and why.
// The Nix programs below are constants: the flake and the system reach them as --argstr, never
// pasted into the expression.

import { resolve } from "node:path";
import { runProcess } from "../edges/proc.ts";
import { Niks3GitlabError } from "../errors.ts";
import { NIX_FEATURES } from "./build.ts";

export const CATEGORIES = ["packages", "checks", "devShells", "formatter"] as const;
export type Category = (typeof CATEGORIES)[number];

/** DiscoveredOutput: one flake output for one system, as evaluation found it. */
export interface DiscoveredOutput {
  category: Category;
  /** The attribute under `<category>.<system>`; undefined for formatter (a derivation itself) and for a whole category that failed. */
  attr: string | undefined;
  ok: boolean;
  drvPath?: string;
  /** Why it did not evaluate; undefined until asked (tryEval hides the message). */
  error?: string;
}

export interface Discovery {
  /** The system whose outputs these are. */
  system: string;
  /** The system Nix itself runs as (builtins.currentSystem); another system needs a remote builder or emulation. */
  nativeSystem: string;
  outputs: DiscoveredOutput[];
}

// The shared part: the flake's outputs, the system, and which categories hold what.
const PRELUDE = `
  outputs = (builtins.getFlake flake).outputs;
  sys = if system == "" then builtins.currentSystem else system;
  isDrv = v: builtins.isAttrs v && (v.type or null) == "derivation";
  attrSetOf = cat: builtins.tryEval (
    if !(outputs ? \${cat}) || !(outputs.\${cat} ? \${sys}) then { }
    else let s = outputs.\${cat}.\${sys}; in if builtins.isAttrs s then builtins.seq (builtins.attrNames s) s else throw "not an attribute set");
  formatterOf = builtins.tryEval (if outputs ? formatter && outputs.formatter ? \${sys} then [ outputs.formatter.\${sys} ] else [ ]);
`;

/**
 * DISCOVER_EXPR lists every output with its drvPath when `probe` is "true", or only the names. The
 * value is selected as the attribute `result` because Nix applies --argstr only when an attribute
 * path is given.
 */
export const DISCOVER_EXPR = `{ flake, system ? "", probe ? "true" }:
let ${PRELUDE}
  probeOne = value:
    let r = builtins.tryEval (
      if isDrv value then let d = { drvPath = value.drvPath; }; in builtins.deepSeq d d
      else { notDerivation = true; });
    in if probe != "true" then { ok = true; }
    else if !r.success then { ok = false; }
    else if r.value ? notDerivation then { ok = false; error = "not a derivation"; }
    else { ok = true; inherit (r.value) drvPath; };
  fromSet = cat: let s = attrSetOf cat; in
    if !s.success then [ { category = cat; ok = false; } ]
    else map (name: { category = cat; attr = name; } // probeOne s.value.\${name}) (builtins.attrNames s.value);
  formatter = if !formatterOf.success then [ { category = "formatter"; ok = false; } ]
    else map (value: { category = "formatter"; } // probeOne value) formatterOf.value;
in { result = { system = sys; nativeSystem = builtins.currentSystem; outputs = fromSet "packages" ++ fromSet "checks" ++ fromSet "devShells" ++ formatter; }; }
`;

/**
 * PROBE_EXPR evaluates one output without tryEval, so that a failure prints Nix's own message. With
 * no attr it lists a whole category (`packages.<system>`), to explain why that set did not evaluate.
 */
export const PROBE_EXPR = `{ flake, system, category, attr ? "" }:
let
  outputs = (builtins.getFlake flake).outputs;
  whole = category != "formatter" && attr == "";
  value = if category == "formatter" then outputs.formatter.\${system}
    else if whole then outputs.\${category}.\${system}
    else outputs.\${category}.\${system}.\${attr};
in {
  result = if whole then { names = builtins.attrNames value; }
    else if (value.type or null) == "derivation" then { drvPath = value.drvPath; }
    else throw "not a derivation";
}
`;

/** flakeForEval: getFlake needs an absolute path where a command line takes `.` or `./sub`. */
export function flakeForEval(flake: string, cwd: string): string {
  if (flake.startsWith("path:") && !flake.startsWith("path:/")) return `path:${resolve(cwd, flake.slice(5))}`;
  if (flake.includes(":")) return flake;
  return resolve(cwd, flake);
}

/** evalArgs: `nix eval` of one of the expressions above, its `result`, with each argument as --argstr. */
function evalArgs(expr: string, args: Record<string, string>): string[] {
  return ["eval", ...NIX_FEATURES, "--json", "--impure", "--expr", expr, "result", ...Object.entries(args).flatMap(([name, value]) => ["--argstr", name, value])];
}

export function discoverArgs(flake: string, system: string | undefined, probe: boolean): string[] {
  return evalArgs(DISCOVER_EXPR, { flake, system: system ?? "", probe: probe ? "true" : "false" });
}

export function probeArgs(flake: string, system: string, output: DiscoveredOutput): string[] {
  return evalArgs(PROBE_EXPR, { flake, system, category: output.category, attr: output.attr ?? "" });
}

const isCategory = (value: unknown): value is Category => (CATEGORIES as readonly unknown[]).includes(value);

/** parseDiscovery reads DISCOVER_EXPR's JSON. */
export function parseDiscovery(text: string): Discovery {
  const data = JSON.parse(text) as { system?: unknown; nativeSystem?: unknown; outputs?: unknown };
  if (typeof data.system !== "string" || !Array.isArray(data.outputs)) throw new Error("unexpected output from nix eval: no system or outputs");
  const nativeSystem = typeof data.nativeSystem === "string" ? data.nativeSystem : data.system;
  const outputs = data.outputs.map((raw: Record<string, unknown>): DiscoveredOutput => {
    if (!isCategory(raw.category)) throw new Error(`unexpected output category from nix eval: ${JSON.stringify(raw.category)}`);
    return {
      category: raw.category,
      attr: typeof raw.attr === "string" ? raw.attr : undefined,
      ok: raw.ok === true,
      ...(typeof raw.drvPath === "string" ? { drvPath: raw.drvPath } : {}),
      ...(typeof raw.error === "string" ? { error: raw.error } : {}),
    };
  });
  return { system: data.system, nativeSystem, outputs };
}

/** parseProbe reads PROBE_EXPR's JSON: the output's drvPath (undefined for a whole category). */
export function parseProbe(text: string): string | undefined {
  const data = JSON.parse(text) as { drvPath?: unknown };
  return typeof data.drvPath === "string" ? data.drvPath : undefined;
}

/**
 * nixErrorMessage picks the line that says what went wrong from Nix's stderr: the last `error:`
 * line (newer Nix prints a trace of `… while evaluating` frames before it), without the prefix.
 */
export function nixErrorMessage(stderr: string): string {
  const lines = stderr.split("\n").map((line) => line.trim());
  const errors = lines.filter((line) => line.startsWith("error:"));
  const last = errors.at(-1)?.replace(/^error:\s*/, "");
  if (last) return last;
  return lines.filter(Boolean).at(-1) ?? "nix eval failed";
}

export interface DiscoverOptions {
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** How many single-output evaluations run at once when the combined one failed. */
  concurrency?: number;
}

async function evalJson(args: readonly string[], options: DiscoverOptions) {
  return runProcess("nix", args, { cwd: options.cwd, env: options.env });
}

/** probeOne evaluates one output alone: its drvPath, or Nix's error message. */
async function probeOne(flake: string, system: string, output: DiscoveredOutput, options: DiscoverOptions): Promise<DiscoveredOutput> {
  const { category, attr } = output;
  const run = await evalJson(probeArgs(flake, system, output), options);
  if (run.exitCode !== 0) return { category, attr, ok: false, error: nixErrorMessage(run.stderr) };
  const drvPath = parseProbe(run.stdout);
  if (drvPath === undefined) return { category, attr, ok: false, error: "did not evaluate (it does on its own: check for builtins.tryEval-sensitive code)" };
  return { category, attr, ok: true, drvPath };
}

/** probeEach maps the chosen outputs through probeOne, a few at a time, keeping the others and the order. */
async function probeEach(
  flake: string,
  system: string,
  outputs: readonly DiscoveredOutput[],
  chosen: (output: DiscoveredOutput) => boolean,
  options: DiscoverOptions,
): Promise<DiscoveredOutput[]> {
  const results = [...outputs];
  const todo = outputs.flatMap((output, index) => (chosen(output) ? [index] : []));
  const worker = async (): Promise<void> => {
    for (let index = todo.shift(); index !== undefined; index = todo.shift()) {
      results[index] = await probeOne(flake, system, outputs[index]!, options);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 4) }, worker));
  return results;
}

/** DiscoveryError: not even the flake's output names could be listed; the job cannot go on (exit 1). */
export class DiscoveryError extends Niks3GitlabError {}

/**
 * discoverOutputs evaluates the flake once and returns its outputs for `system` (Nix's own system
 * when undefined). Outputs that failed under tryEval are evaluated once more, alone, for their error
 * message. Throws DiscoveryError when not even the output names can be listed (the flake is broken).
 */
export async function discoverOutputs(flake: string, system: string | undefined, options: DiscoverOptions): Promise<Discovery> {
  const evalFlake = flakeForEval(flake, options.cwd);
  const all = await evalJson(discoverArgs(evalFlake, system, true), options);
  if (all.exitCode === 0) {
    const discovery = parseDiscovery(all.stdout);
    const unexplained = (o: DiscoveredOutput) => !o.ok && o.error === undefined;
    return { ...discovery, outputs: await probeEach(evalFlake, discovery.system, discovery.outputs, unexplained, options) };
  }
  // An error tryEval cannot catch: list the names, then ask each output on its own.
  const names = await evalJson(discoverArgs(evalFlake, system, false), options);
  if (names.exitCode !== 0) throw new DiscoveryError(`cannot evaluate the flake ${flake}: ${nixErrorMessage(names.stderr)}`);
  const listed = parseDiscovery(names.stdout);
  return { ...listed, outputs: await probeEach(evalFlake, listed.system, listed.outputs, () => true, options) };
}
