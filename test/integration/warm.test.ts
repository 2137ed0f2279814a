// `niks3-gitlab warm` end to end: real Nix evaluates and builds the fixture flake's outputs, the
// bundled helper runs as the warm component runs it, and the niks3 double pushes and pins into the
// fake server over loopback.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { PIPELINES } from "../helpers/ci-env.ts";
import { runJob, secretLeaks, type JobRun } from "../helpers/ci-job.ts";
import { closureOf, makeFixtureFlake, nixEnv } from "../helpers/nix.ts";
import { lines, type HelperRun } from "../helpers/run-helper.ts";
import { useNiks3TestBed } from "../helpers/test-bed.ts";

const bed = useNiks3TestBed();
const { token } = bed;
let system: string;

beforeAll(() => {
  system = execFileSync("nix", ["eval", "--raw", "--impure", "--expr", "builtins.currentSystem"], { env: nixEnv(bed.confDir), encoding: "utf8" });
});

interface Installable {
  installable: string;
  ok: boolean;
  outputs: Record<string, string>;
  pin?: string;
  error?: string;
}

interface Job extends JobRun {
  installables: Installable[];
}

/** fixtureFlake: the fixture with fresh store paths; `failures` adds a failing check and a check that does not evaluate. */
function fixtureFlake(failures = false): string {
  const { dir } = makeFixtureFlake();
  if (failures) {
    const path = join(dir, "flake.nix");
    writeFileSync(path, readFileSync(path, "utf8").replace('"@WARM_FAILURES@"', '"yes"'));
  }
  return dir;
}

async function warm(pipeline: Record<string, string>, settings: Record<string, string>, flakeDir: string): Promise<Job> {
  const run = await runJob({
    command: ["warm"],
    confDir: bed.confDir,
    binDir: bed.binDir,
    flakeDir,
    env: bed.jobVariables(pipeline, settings),
  });
  return { ...run, installables: (run.summary?.installables ?? []) as Installable[] };
}

/** builtDerivations: the derivation names Nix logged `building '…'` for, as often as it did. */
const builtDerivations = (run: HelperRun): string[] =>
  lines(run.all)
    .flatMap((line) => /^building '\/nix\/store\/[a-z0-9]{32}-([^']+)\.drv'/.exec(line)?.[1] ?? [])
    .sort();

const byName = (job: Job): Map<string, Installable> =>
  new Map(job.installables.map((i) => [i.installable.replace(`.#`, "").replace(`.${system}`, ""), i]));

/** seedPin pins a path the server already holds, as another job (or an older warm) would have. */
async function seedPin(name: string, storePath: string): Promise<void> {
  const response = await fetch(`${bed.server.url}/api/pins/${name}`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ store_path: storePath }),
  });
  expect(response.status, await response.text()).toBeLessThan(300);
}

/** Each output of the fixture flake and the derivation name its store path ends in. */
const DERIVATION_OF: Record<string, string> = {
  "packages.app": "fixture-app",
  "packages.default": "fixture-app",
  "packages.dep": "fixture-dep",
  "packages.lib": "fixture-lib",
  "checks.app-runs": "fixture-check",
  "devShells.default": "fixture-shell",
  formatter: "fixture-formatter",
};
const OUTPUTS = Object.keys(DERIVATION_OF);

describe("niks3-gitlab warm", () => {
  let first: Job;

  it("on the default branch: builds each derivation once, pushes every output, pins each as <project>-<branch>-<output>", async () => {
    first = await warm(PIPELINES.defaultBranch, { NIKS3_WARM_EXCLUDE: "packages.broken" }, fixtureFlake());
    expect(first.run.exitCode, first.run.all).toBe(0);

    // packages.default is packages.app: 7 outputs, 6 derivations, each built once.
    expect(builtDerivations(first.run)).toEqual(["fixture-app", "fixture-check", "fixture-dep", "fixture-formatter", "fixture-lib", "fixture-shell"]);
    const outputs = byName(first);
    expect([...outputs.keys()].sort()).toEqual([...OUTPUTS].sort());
    expect(first.run.all).toContain("left out: packages.broken");

    for (const [name, installable] of outputs) {
      expect(installable.ok, name).toBe(true);
      const path = Object.values(installable.outputs)[0]!;
      expect(path, name).toMatch(new RegExp(`^/nix/store/[a-z0-9]{32}-${DERIVATION_OF[name]}$`));
      const pin = `acme-widgets-main-${name === "formatter" ? `formatter.${system}` : name.replace(".", `.${system}.`)}`;
      expect(bed.server.pins.get(pin), pin).toBe(path);
      expect(installable.pin).toBe(pin);
      for (const p of closureOf([path], nixEnv(bed.confDir))) expect(bed.server.storePaths().has(p), `${p} of ${name} in the cache`).toBe(true);
    }
    expect(outputs.get("packages.default")?.outputs).toEqual(outputs.get("packages.app")?.outputs);
    expect([...bed.server.pins.keys()].filter((pin) => pin.includes("broken"))).toEqual([]);
    for (const call of first.doubleCalls) expect(call.argv).toContain("--auth-token-path");
    expect(secretLeaks(first, token)).toEqual([]);
  });

  it("a failing check and a check that does not evaluate: the other outputs are still pushed and pinned, the job names both and exits 1", async () => {
    const failing = await warm(PIPELINES.schedule, { NIKS3_WARM_EXCLUDE: "packages.broken" }, fixtureFlake(true));
    expect(failing.run.exitCode, failing.run.all).toBe(1);
    const outputs = byName(failing);
    expect(outputs.get("checks.fails")).toMatchObject({ ok: false });
    expect(outputs.get("checks.no-eval")?.error).toContain("this check does not evaluate, on purpose");
    expect(lines(failing.run.stderr)).toContain("niks3: warm: 2 of 9 outputs failed: checks.fails (build failed), checks.no-eval (does not evaluate)");
    expect(failing.run.stderr).toContain("check failed on purpose");

    for (const name of OUTPUTS) {
      const installable = outputs.get(name)!;
      expect(installable.ok, name).toBe(true);
      const path = Object.values(installable.outputs)[0]!;
      expect(path, name).toMatch(new RegExp(`-${DERIVATION_OF[name]}$`));
      expect(bed.server.storePaths().has(path), `${name} in the cache`).toBe(true);
      expect(bed.server.pins.get(installable.pin!)).toBe(path);
    }
    expect([...bed.server.pins.keys()].filter((pin) => /checks\.[^.]+\.(fails|no-eval)$/.test(pin))).toEqual([]);
  });

  it("again with prune: builds nothing, deletes only this branch's pins of outputs that are gone", async () => {
    const app = Object.values(byName(first).get("packages.app")!.outputs)[0]!;
    const other = system === "x86_64-linux" ? "aarch64-linux" : "x86_64-linux";
    const stale = [`acme-widgets-main-packages.${system}.removed`, `acme-widgets-main-checks.${system}.renamed`];
    const kept = [
      "acme-widgets-main", // the build component's pin
      `acme-widgets-main-packages.${other}.removed`, // another system's warm job
      `acme-widgets-main-2-packages.${system}.removed`, // the branch main-2
      `acme-widgets-main-packages.${system}.broken`, // excluded, but still in the flake
      `acme-widgets-v1.0-packages.${system}.removed`, // a tag
    ];
    for (const name of [...stale, ...kept]) await seedPin(name, app);

    const without = await warm(PIPELINES.defaultBranch, { NIKS3_WARM_EXCLUDE: "packages.broken" }, first.flakeDir);
    expect(without.run.exitCode, without.run.all).toBe(0);
    expect(builtDerivations(without.run)).toEqual([]);
    for (const name of stale) expect(bed.server.pins.has(name), `${name} stays without prune`).toBe(true);

    const pruned = await warm(PIPELINES.defaultBranch, { NIKS3_WARM_EXCLUDE: "packages.broken", NIKS3_WARM_PRUNE: "true" }, first.flakeDir);
    expect(pruned.run.exitCode, pruned.run.all).toBe(0);
    for (const name of stale) {
      expect(bed.server.pins.has(name), `${name} pruned`).toBe(false);
      expect(lines(pruned.run.stderr).some((line) => line.startsWith(`niks3: prune: deleted pin ${name} `))).toBe(true);
    }
    for (const name of kept) expect(bed.server.pins.has(name), `${name} kept`).toBe(true);
    for (const name of OUTPUTS) expect(bed.server.pins.has(byName(pruned).get(name)!.pin!)).toBe(true);
    const pinCalls = pruned.doubleCalls.filter((call) => call.argv[0] === "pins");
    expect(pinCalls.map((call) => call.argv.slice(0, 2).join(" "))).toEqual(["pins list", "pins delete", "pins delete"]);
    for (const call of pinCalls) expect(call.argv).toContain("--auth-token-path");
    expect(secretLeaks(pruned, token)).toEqual([]);
  });

  it.each<{ name: string; env: Record<string, string>; input: string }>([
    { name: "prune=maybe", env: { NIKS3_WARM_PRUNE: "maybe" }, input: "prune" },
    { name: "a system without a dash", env: { NIKS3_WARM_SYSTEM: "linux" }, input: "systems" },
  ])("bad input ($name): one line naming $input, exit 2, nothing runs", async ({ env, input }) => {
    const result = await warm(PIPELINES.defaultBranch, env, mkdtempSync(join(tmpdir(), "niks3-empty-")));
    expect(result.run.exitCode).toBe(2);
    const output = lines(result.run.all).filter(Boolean);
    expect(output).toHaveLength(1);
    expect(output[0]).toMatch(new RegExp(`^niks3: invalid ${input} \\(`));
    expect(result.doubleCalls).toEqual([]);
  });
});
