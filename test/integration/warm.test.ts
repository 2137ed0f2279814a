// `niks3-gitlab warm` end to end: real Nix evaluates and builds the fixture flake's outputs, the
// bundled helper runs as the warm component runs it, and the niks3 double pushes and pins into the
// fake server over loopback.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeNiks3Server, type FakeNiks3Server } from "../doubles/fake-niks3-server.ts";
import { writeNiks3Bin } from "../doubles/niks3-bin.ts";
import { PIPELINES } from "../helpers/ci-env.ts";
import { closureOf, makeFixtureFlake, nixEnv, testNixConfDir } from "../helpers/nix.ts";
import { lines, runHelper, type HelperRun } from "../helpers/run-helper.ts";
import { makeToken } from "../helpers/token.ts";

const AUDIENCE = "https://niks3.example.com";
const token = makeToken({ aud: AUDIENCE });
let server: FakeNiks3Server;
let binDir: string;
let confDir: string;
let system: string;

beforeAll(async () => {
  confDir = testNixConfDir();
  binDir = mkdtempSync(join(tmpdir(), "niks3-bin-"));
  writeNiks3Bin(binDir);
  server = await startFakeNiks3Server({ token, issuer: PIPELINES.defaultBranch.CI_SERVER_URL, oidcAudience: AUDIENCE });
  system = execFileSync("nix", ["eval", "--raw", "--impure", "--expr", "builtins.currentSystem"], { env: nixEnv(confDir), encoding: "utf8" });
});
afterAll(async () => {
  await server?.close();
});

interface Installable {
  installable: string;
  ok: boolean;
  outputs: Record<string, string>;
  pin?: string;
  error?: string;
}

interface Job {
  run: HelperRun;
  flakeDir: string;
  doubleLog: { argv: string[] }[];
  installables: Installable[];
  summary: Record<string, unknown> | undefined;
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
  const doubleLogPath = join(mkdtempSync(join(tmpdir(), "niks3-double-log-")), "calls.jsonl");
  const env = {
    ...nixEnv(confDir),
    PATH: `${binDir}:${process.env.PATH}`,
    HOME: flakeDir,
    ...pipeline,
    CI_PROJECT_DIR: flakeDir,
    NIKS3_SERVER_URL: server.url,
    NIKS3_TOKEN: token,
    NIKS3_DOUBLE_LOG: doubleLogPath,
    ...settings,
  };
  const run = await runHelper(["warm"], { env, cwd: flakeDir });
  const doubleLog = existsSync(doubleLogPath)
    ? readFileSync(doubleLogPath, "utf8").split("\n").filter(Boolean).map((line) => JSON.parse(line) as { argv: string[] })
    : [];
  const summaryPath = join(flakeDir, ".niks3-gitlab", "summary.json");
  const summary = existsSync(summaryPath) ? (JSON.parse(readFileSync(summaryPath, "utf8")) as Record<string, unknown>) : undefined;
  return { run, flakeDir, doubleLog, summary, installables: (summary?.installables ?? []) as Installable[] };
}

/** builtDerivations: the derivation names Nix logged `building '…'` for, as often as it did. */
const builtDerivations = (run: HelperRun): string[] =>
  lines(run.all)
    .flatMap((line) => /^building '\/nix\/store\/[a-z0-9]{32}-([^']+)\.drv'/.exec(line)?.[1] ?? [])
    .sort();

const byName = (job: Job): Map<string, Installable> =>
  new Map(job.installables.map((i) => [i.installable.replace(`.#`, "").replace(`.${system}`, ""), i]));

function expectNoToken(job: Job): void {
  expect(job.run.all).not.toContain(token);
  expect(JSON.stringify(job.doubleLog)).not.toContain(token);
  const dir = join(job.flakeDir, ".niks3-gitlab");
  const walk = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name)]));
  for (const file of existsSync(dir) ? walk(dir) : []) {
    if (statSync(file).size < 5_000_000) expect(readFileSync(file, "utf8"), file).not.toContain(token);
  }
}

/** seedPin pins a path the server already holds, as another job (or an older warm) would have. */
async function seedPin(name: string, storePath: string): Promise<void> {
  const response = await fetch(`${server.url}/api/pins/${name}`, {
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
      expect(server.pins.get(pin), pin).toBe(path);
      expect(installable.pin).toBe(pin);
      for (const p of closureOf([path], nixEnv(confDir))) expect(server.storePaths().has(p), `${p} of ${name} in the cache`).toBe(true);
    }
    expect(outputs.get("packages.default")?.outputs).toEqual(outputs.get("packages.app")?.outputs);
    expect([...server.pins.keys()].filter((pin) => pin.includes("broken"))).toEqual([]);
    for (const call of first.doubleLog) expect(call.argv).toContain("--auth-token-path");
    expectNoToken(first);
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
      expect(server.storePaths().has(path), `${name} in the cache`).toBe(true);
      expect(server.pins.get(installable.pin!)).toBe(path);
    }
    expect([...server.pins.keys()].filter((pin) => /checks\.[^.]+\.(fails|no-eval)$/.test(pin))).toEqual([]);
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
    for (const name of stale) expect(server.pins.has(name), `${name} stays without prune`).toBe(true);

    const pruned = await warm(PIPELINES.defaultBranch, { NIKS3_WARM_EXCLUDE: "packages.broken", NIKS3_WARM_PRUNE: "true" }, first.flakeDir);
    expect(pruned.run.exitCode, pruned.run.all).toBe(0);
    for (const name of stale) {
      expect(server.pins.has(name), `${name} pruned`).toBe(false);
      expect(lines(pruned.run.stderr).some((line) => line.startsWith(`niks3: prune: deleted pin ${name} `))).toBe(true);
    }
    for (const name of kept) expect(server.pins.has(name), `${name} kept`).toBe(true);
    for (const name of OUTPUTS) expect(server.pins.has(byName(pruned).get(name)!.pin!)).toBe(true);
    const pinCalls = pruned.doubleLog.filter((call) => call.argv[0] === "pins");
    expect(pinCalls.map((call) => call.argv.slice(0, 2).join(" "))).toEqual(["pins list", "pins delete", "pins delete"]);
    for (const call of pinCalls) expect(call.argv).toContain("--auth-token-path");
    expectNoToken(pruned);
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
    expect(result.doubleLog).toEqual([]);
  });
});
