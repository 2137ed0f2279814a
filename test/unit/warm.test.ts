// warm's pure parts: reading Nix's discovery output, naming outputs, the include/exclude filter,
// one build per derivation, pin names, and which pins prune may delete.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { readCiContext } from "../../src/ci-context.ts";
import { UsageError } from "../../src/errors.ts";
import { resolveSettings, type RawSettings } from "../../src/settings.ts";
import { niks3PinsDeleteArgs, niks3PinsListArgs, parsePinList } from "../../src/niks3/pins.ts";
import {
  DISCOVER_EXPR,
  discoverArgs,
  flakeForEval,
  nixErrorMessage,
  parseDiscovery,
  PROBE_EXPR,
  probeArgs,
  type DiscoveredOutput,
} from "../../src/nix/discover.ts";
import type { InstallableResult } from "../../src/nix/build.ts";
import { pinNames, planJob } from "../../src/policy.ts";
import { globToRegExp, selectOutputs, toWarmOutput, uniqueBuilds, warmResults, type WarmOutput } from "../../src/warm/outputs.ts";
import { isWarmPinOf, stalePins } from "../../src/warm/prune.ts";
import { PIPELINES } from "../helpers/ci-env.ts";

const recorded = readFileSync(new URL("../fixtures/recorded/nix-eval-warm-2.8.json", import.meta.url), "utf8");
const SYS = "x86_64-linux";

describe("discovery", () => {
  it("reads Nix 2.8's output for the fixture flake (with its failing outputs switched on)", () => {
    const discovery = parseDiscovery(recorded);
    expect(discovery.system).toBe(SYS);
    expect(discovery.nativeSystem).toBe(SYS);
    expect(discovery.outputs.map((o) => [o.category, o.attr ?? null, o.ok])).toEqual([
      ["packages", "app", true],
      ["packages", "broken", true],
      ["packages", "default", true],
      ["packages", "dep", true],
      ["packages", "lib", true],
      ["checks", "app-runs", true],
      ["checks", "fails", true],
      ["checks", "no-eval", false],
      ["devShells", "default", true],
      ["formatter", null, true],
    ]);
    const [app, , fallback] = discovery.outputs;
    expect(app?.drvPath).toMatch(/^\/nix\/store\/[a-z0-9]{32}-fixture-app\.drv$/);
    expect(fallback?.drvPath).toBe(app?.drvPath);
    expect(discovery.outputs[7]?.error).toBeUndefined(); // tryEval hides the message: warm asks again
  });

  it.each([
    { name: "not JSON", text: "error: x", error: /JSON/ },
    { name: "no system", text: '{"outputs":[]}', error: /no system/ },
    { name: "an unknown category", text: '{"system":"x86_64-linux","outputs":[{"category":"apps","ok":true}]}', error: /category/ },
  ])("rejects $name", ({ text, error }) => {
    expect(() => parseDiscovery(text)).toThrow(error);
  });

  it("reads a whole category that failed, and a non-derivation", () => {
    const discovery = parseDiscovery(
      '{"system":"aarch64-linux","outputs":[{"category":"checks","ok":false},{"category":"packages","attr":"s","ok":false,"error":"not a derivation"}]}',
    );
    expect(discovery.nativeSystem).toBe("aarch64-linux");
    expect(discovery.outputs).toEqual([
      { category: "checks", attr: undefined, ok: false },
      { category: "packages", attr: "s", ok: false, error: "not a derivation" },
    ]);
  });

  it("passes the flake and system as --argstr, never inside the Nix program", () => {
    const args = discoverArgs("/builds/acme/widgets", "aarch64-linux", true);
    expect(args.slice(0, 2)).toEqual(["eval", "--extra-experimental-features"]);
    expect(args).toContain(DISCOVER_EXPR);
    expect(DISCOVER_EXPR).not.toContain("/builds");
    expect(args.join(" ")).toContain("result --argstr flake /builds/acme/widgets --argstr system aarch64-linux --argstr probe true");
    expect(discoverArgs(".", undefined, false).join(" ")).toContain("--argstr system  --argstr probe false");
    const probe = probeArgs("/f", SYS, { category: "checks", attr: 'we"ird', ok: false });
    expect(probe).toContain(PROBE_EXPR);
    expect(probe.slice(-6)).toEqual(["--argstr", "category", "checks", "--argstr", "attr", 'we"ird']);
  });

  it.each([
    [".", "/p", "/p"],
    ["./nix", "/p", "/p/nix"],
    ["/abs/flake", "/p", "/abs/flake"],
    ["path:./sub", "/p", "path:/p/sub"],
    ["github:acme/widgets", "/p", "github:acme/widgets"],
    ["git+file:///srv/repo", "/p", "git+file:///srv/repo"],
  ])("flake %s in %s is %s for getFlake", (flake, cwd, expected) => {
    expect(flakeForEval(flake, cwd)).toBe(expected);
  });

  it.each([
    {
      name: "Nix 2.8: the first line",
      stderr: "error: attribute 'nope' missing\n\n       at /nix/store/x-source/flake.nix:1:60:\n\n            1| { outputs = …\n(use '--show-trace' to show detailed location information)\n",
      message: "attribute 'nope' missing",
    },
    {
      name: "newer Nix: the last error line after the trace",
      stderr: "error:\n       … while evaluating the attribute 'result'\n         at «string»:5:3:\n\n       error: this check does not evaluate, on purpose\n",
      message: "this check does not evaluate, on purpose",
    },
    { name: "no error line: the last line", stderr: "warning: x\nsegmentation fault\n", message: "segmentation fault" },
  ])("nixErrorMessage: $name", ({ stderr, message }) => {
    expect(nixErrorMessage(stderr)).toBe(message);
  });
});

const discovered = (category: DiscoveredOutput["category"], attr: string | undefined, drv?: string, ok = true): DiscoveredOutput => ({
  category,
  attr,
  ok,
  ...(drv ? { drvPath: `/nix/store/${drv.padEnd(32, "0")}-${drv}.drv` } : {}),
});

describe("output names", () => {
  it.each([
    { name: "a package", output: discovered("packages", "hello", "h"), expected: ["packages.hello", "packages.x86_64-linux.hello", ".#packages.x86_64-linux.hello"] },
    { name: "the formatter", output: discovered("formatter", undefined, "f"), expected: ["formatter", "formatter.x86_64-linux", ".#formatter.x86_64-linux"] },
    { name: "a dotted attribute", output: discovered("checks", "nixos.boot", "c"), expected: ["checks.nixos.boot", 'checks.x86_64-linux."nixos.boot"', '.#checks.x86_64-linux."nixos.boot"'] },
    { name: "a whole category that failed", output: discovered("devShells", undefined, undefined, false), expected: ["devShells", "devShells.x86_64-linux", ".#devShells.x86_64-linux"] },
  ])("$name", ({ output, expected }) => {
    const warm = toWarmOutput(".", SYS, output);
    expect([warm.name, warm.attrPath, warm.installable]).toEqual(expected);
  });

  it("an attribute no installable can spell fails with a reason instead of building something else", () => {
    const warm = toWarmOutput(".", SYS, discovered("packages", "a%20b", "x"));
    expect(warm.ok).toBe(false);
    expect(warm.error).toContain("cannot be named in an installable");
  });

  it("an output that did not evaluate keeps its error", () => {
    const warm = toWarmOutput("./nix", SYS, { category: "checks", attr: "x", ok: false, error: "boom" });
    expect(warm).toMatchObject({ installable: "./nix#checks.x86_64-linux.x", ok: false, error: "boom" });
  });
});

const fixtureOutputs: WarmOutput[] = parseDiscovery(recorded).outputs.map((o) => toWarmOutput(".", SYS, o));

describe("include and exclude", () => {
  it.each([
    ["packages.*", ["packages.hello", "packages.x86_64-linux.hello"], ["checks.hello", "formatter"]],
    ["checks.unit-?", ["checks.unit-a"], ["checks.unit-ab", "checks.unit-"]],
    ["formatter", ["formatter"], ["formatters", "packages.formatter"]],
    ["*.default", ["packages.default", "devShells.default"], ["packages.default2"]],
    ["packages.a+b", ["packages.a+b"], ["packages.aab"]],
  ])("glob %s matches %j, not %j", (glob, yes, no) => {
    const re = globToRegExp(glob);
    for (const name of yes) expect(re.test(name), name).toBe(true);
    for (const name of no) expect(re.test(name), name).toBe(false);
  });

  it.each([
    { name: "no patterns: everything", include: [], exclude: [], selected: 10, excluded: [], unmatched: [] },
    { name: "exclude one package", include: [], exclude: ["packages.broken"], selected: 9, excluded: ["packages.broken"], unmatched: [] },
    {
      name: "checks only, minus one",
      include: ["checks.*"],
      exclude: ["checks.fails"],
      selected: 2,
      excluded: ["packages.app", "packages.broken", "packages.default", "packages.dep", "packages.lib", "checks.fails", "devShells.default", "formatter"],
      unmatched: [],
    },
    { name: "exclude wins over include", include: ["formatter"], exclude: ["formatter"], selected: 0, excluded: expect.any(Array), unmatched: [] },
    { name: "by attribute path: one system only", include: [], exclude: ["*.x86_64-linux.*"], selected: 1, excluded: expect.any(Array), unmatched: [] },
    { name: "an include that matches nothing is reported", include: ["packages.*", "check.*"], exclude: [], selected: 5, excluded: expect.any(Array), unmatched: ["check.*"] },
  ])("$name", ({ include, exclude, selected, excluded, unmatched }) => {
    const selection = selectOutputs(fixtureOutputs, include, exclude);
    expect(selection.selected).toHaveLength(selected);
    expect(selection.excluded).toEqual(excluded);
    expect(selection.unmatched).toEqual(unmatched);
  });
});

describe("one build per derivation", () => {
  it("builds packages.default once, as packages.app, and skips outputs that did not evaluate", () => {
    expect(uniqueBuilds(fixtureOutputs).map((o) => o.installable)).toEqual([
      ".#packages.x86_64-linux.app",
      ".#packages.x86_64-linux.broken",
      ".#packages.x86_64-linux.dep",
      ".#packages.x86_64-linux.lib",
      ".#checks.x86_64-linux.app-runs",
      ".#checks.x86_64-linux.fails",
      ".#devShells.x86_64-linux.default",
      ".#formatter.x86_64-linux",
    ]);
  });

  it("gives every output its result: the build of its derivation, or its evaluation error", () => {
    const outputs = fixtureOutputs.filter((o) => ["packages.app", "packages.default", "checks.fails", "checks.no-eval"].includes(o.name));
    const builds: InstallableResult[] = [
      { installable: ".#packages.x86_64-linux.app", ok: true, outputs: { out: "/nix/store/a-app" } },
      { installable: ".#checks.x86_64-linux.fails", ok: false, outputs: {}, error: "check failed on purpose" },
    ];
    const results = warmResults(
      outputs.map((o) => (o.name === "checks.no-eval" ? { ...o, error: "this check does not evaluate" } : o)),
      builds,
    );
    expect(results).toEqual([
      { installable: ".#packages.x86_64-linux.app", ok: true, outputs: { out: "/nix/store/a-app" } },
      { installable: ".#packages.x86_64-linux.default", ok: true, outputs: { out: "/nix/store/a-app" } },
      { installable: ".#checks.x86_64-linux.fails", ok: false, outputs: {}, error: "check failed on purpose" },
      { installable: ".#checks.x86_64-linux.no-eval", ok: false, outputs: {}, error: "evaluation failed: this check does not evaluate" },
    ]);
  });
});

describe("warm pins", () => {
  const installables = [".#packages.x86_64-linux.hello", ".#formatter.x86_64-linux"];

  it.each([
    { name: "default branch", env: PIPELINES.defaultBranch, pin: "auto", pins: ["acme-widgets-main-packages.x86_64-linux.hello", "acme-widgets-main-formatter.x86_64-linux"] },
    { name: "schedule", env: PIPELINES.schedule, pin: "auto", pins: ["acme-widgets-main-packages.x86_64-linux.hello", "acme-widgets-main-formatter.x86_64-linux"] },
    { name: "tag", env: PIPELINES.tag, pin: "auto", pins: ["acme-widgets-v1.2.0-packages.x86_64-linux.hello", "acme-widgets-v1.2.0-formatter.x86_64-linux"] },
    { name: "protected branch: no pins", env: PIPELINES.protectedBranch, pin: "auto", pins: [undefined, undefined] },
    { name: "merge request: no pins", env: PIPELINES.mergeRequest, pin: "auto", pins: [undefined, undefined] },
    { name: "pin: never", env: PIPELINES.defaultBranch, pin: "never", pins: [undefined, undefined] },
    { name: "an explicit pin name is the base", env: PIPELINES.mergeRequest, pin: "review", pins: ["review-packages.x86_64-linux.hello", "review-formatter.x86_64-linux"] },
    { name: "a branch with a slash", env: { ...PIPELINES.defaultBranch, CI_DEFAULT_BRANCH: "dev/next", CI_COMMIT_BRANCH: "dev/next" }, pin: "auto", pins: ["acme-widgets-dev-next-packages.x86_64-linux.hello", "acme-widgets-dev-next-formatter.x86_64-linux"] },
  ])("$name", ({ env, pin, pins }) => {
    const plan = planJob({ installables, push: "auto", pin, hasToken: true, pinEach: true }, readCiContext(env, "/p"));
    expect(plan.installables.map((i) => i.pin)).toEqual(pins);
    for (const name of pins) if (name) expect(name).toMatch(/^[A-Za-z0-9._-]{1,256}$/);
  });

  it("a single output still gets <base>-<output>, so its pin does not move when the flake grows", () => {
    expect(pinNames("acme/widgets/main", [".#formatter.x86_64-linux"], { each: true })).toEqual(["acme-widgets-main-formatter.x86_64-linux"]);
    expect(pinNames("acme/widgets/main", [".#formatter.x86_64-linux"])).toEqual(["acme-widgets-main"]);
  });

  it("the plan carries the base prune works from", () => {
    expect(planJob({ installables, push: "auto", pin: "auto", hasToken: true }, readCiContext(PIPELINES.tag, "/p")).pinBase).toBe("acme/widgets/v1.2.0");
    expect(planJob({ installables, push: "auto", pin: "auto", hasToken: false }, readCiContext(PIPELINES.tag, "/p")).pinBase).toBeUndefined();
  });

  it.each([
    ["acme-widgets-main-packages.x86_64-linux.hello", true],
    ["acme-widgets-main-checks.x86_64-linux.a.b", true],
    ["acme-widgets-main-devShells.x86_64-linux.default", true],
    ["acme-widgets-main-formatter.x86_64-linux", true],
    ["acme-widgets-main", false], // the build component's single pin
    ["acme-widgets-main-default", false], // the build component's pin of .#default among several
    ["acme-widgets-main-packages.aarch64-linux.hello", false], // another system
    ["acme-widgets-main-2-packages.x86_64-linux.hello", false], // the branch main-2
    ["acme-widgets-main-formatter.x86_64-linux.x", false],
    ["acme-widgets-mainline-packages.x86_64-linux.hello", false],
    ["other-main-packages.x86_64-linux.hello", false],
  ])("%s is a warm pin of acme/widgets/main on x86_64-linux: %s", (name, expected) => {
    expect(isWarmPinOf(name, "acme/widgets/main", SYS)).toBe(expected);
  });

  it("prune deletes only pins of outputs that are gone, and none in a category that could not be listed", () => {
    const pin = (name: string) => ({ name, storePath: "/nix/store/x" });
    const pins = [
      pin("acme-widgets-main-packages.x86_64-linux.hello"),
      pin("acme-widgets-main-packages.x86_64-linux.gone"),
      pin("acme-widgets-main-checks.x86_64-linux.gone"),
      pin("acme-widgets-main-formatter.x86_64-linux"),
      pin("acme-widgets-main-packages.aarch64-linux.gone"),
      pin("acme-widgets-main"),
    ];
    const current = new Set(["acme-widgets-main-packages.x86_64-linux.hello"]);
    expect(stalePins(pins, { base: "acme/widgets/main", system: SYS, current, unlisted: [] }).map((p) => p.name)).toEqual([
      "acme-widgets-main-packages.x86_64-linux.gone",
      "acme-widgets-main-checks.x86_64-linux.gone",
      "acme-widgets-main-formatter.x86_64-linux",
    ]);
    expect(stalePins(pins, { base: "acme/widgets/main", system: SYS, current, unlisted: ["checks"] }).map((p) => p.name)).toEqual([
      "acme-widgets-main-packages.x86_64-linux.gone",
      "acme-widgets-main-formatter.x86_64-linux",
    ]);
  });
});

describe("warm settings", () => {
  const resolve = (env: NodeJS.ProcessEnv, flags: RawSettings = {}) =>
    resolveSettings(flags, { NIKS3_SERVER_URL: "https://niks3.example.com", ...env }, { projectDir: "/p", required: ["serverUrl"] });

  it("defaults: the project's flake, every output, no prune, Nix's own system", () => {
    expect(resolve({})).toMatchObject({ warmFlake: ".", warmInclude: [], warmExclude: [], warmPrune: false, warmSystem: "" });
  });

  it("reads globs, prune and the system from variables (empty inputs mean the default); flags win", () => {
    const settings = resolve(
      { NIKS3_WARM_INCLUDE: " packages.*  checks.unit-? ", NIKS3_WARM_EXCLUDE: "", NIKS3_WARM_PRUNE: "true", NIKS3_WARM_SYSTEM: "aarch64-linux" },
      { warmFlake: "./nix", warmSystem: "x86_64-darwin" },
    );
    expect(settings).toMatchObject({ warmFlake: "./nix", warmInclude: ["packages.*", "checks.unit-?"], warmExclude: [], warmPrune: true, warmSystem: "x86_64-darwin" });
  });

  it.each([
    { name: "prune=sometimes", env: { NIKS3_WARM_PRUNE: "sometimes" }, input: "prune" },
    { name: "a system without a dash", env: { NIKS3_WARM_SYSTEM: "linux" }, input: "systems" },
    { name: "a flake that is a flag", env: { NIKS3_WARM_FLAKE: "--impure" }, input: "flake" },
    { name: "an exclude that is a flag", env: { NIKS3_WARM_EXCLUDE: "packages.x --impure" }, input: "exclude" },
  ])("$name: one line naming $input, exit 2", ({ env, input }) => {
    let error: unknown;
    try {
      resolve(env);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).message).toMatch(new RegExp(`^niks3: invalid ${input} \\(NIKS3_WARM_`));
  });
});

describe("niks3 pins", () => {
  it("puts the subcommand first, then flags, then the name; the token only as a file path", () => {
    const input = { serverUrl: "https://niks3.example.com", tokenPath: "/tmp/t/token" };
    expect(niks3PinsListArgs(input)).toEqual(["pins", "list", "--server-url", "https://niks3.example.com", "--auth-token-path", "/tmp/t/token", "--json"]);
    expect(niks3PinsDeleteArgs({ ...input, name: "acme-widgets-main-formatter.x86_64-linux" })).toEqual([
      "pins",
      "delete",
      "--server-url",
      "https://niks3.example.com",
      "--auth-token-path",
      "/tmp/t/token",
      "acme-widgets-main-formatter.x86_64-linux",
    ]);
  });

  it.each([
    { name: "no pins (null)", text: "null\n", pins: [] },
    { name: "no pins ([])", text: "[]\n", pins: [] },
    {
      name: "two pins",
      text: JSON.stringify(
        [
          { name: "a", store_path: "/nix/store/a", created_at: "2026-01-01T00:00:00Z", updated_at: "2026-01-01T00:00:00Z" },
          { name: "b", store_path: "/nix/store/b", created_at: "2026-01-01T00:00:00Z", updated_at: "2026-01-02T00:00:00Z" },
        ],
        null,
        2,
      ),
      pins: [
        { name: "a", storePath: "/nix/store/a" },
        { name: "b", storePath: "/nix/store/b" },
      ],
    },
  ])("parses pins list --json: $name", ({ text, pins }) => {
    expect(parsePinList(text)).toEqual(pins);
  });
});
