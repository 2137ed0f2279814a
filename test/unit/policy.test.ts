import { describe, expect, it } from "vitest";
import { readCiContext } from "../../src/ci-context.ts";
import { classifyPipeline, installableLabel, planJob, sanitizePinName, type PlanInput } from "../../src/policy.ts";
import { outsideClosures, pushItems } from "../../src/job/push.ts";
import { PIPELINES } from "../helpers/ci-env.ts";

const input = (overrides: Partial<PlanInput> = {}): PlanInput => ({
  installables: [".#default"],
  push: "auto",
  pin: "auto",
  hasToken: true,
  ...overrides,
});

// One row per line of product.md's policy table, plus the overrides.
const cases = [
  { name: "default branch push: push and pin project/branch", env: PIPELINES.defaultBranch, input: input(), kind: "default-branch", push: true, pins: ["acme-widgets-main"] },
  { name: "schedule on the default branch: push and pin", env: PIPELINES.schedule, input: input(), kind: "default-branch", push: true, pins: ["acme-widgets-main"] },
  { name: "protected branch: push, no pin", env: PIPELINES.protectedBranch, input: input(), kind: "protected-branch", push: true, pins: [undefined] },
  { name: "tag: push and pin project/tag", env: PIPELINES.tag, input: input(), kind: "tag", push: true, pins: ["acme-widgets-v1.2.0"] },
  { name: "same-project MR: push, no pin", env: PIPELINES.mergeRequest, input: input(), kind: "merge-request", push: true, pins: [undefined] },
  { name: "fork MR run in the parent: no push", env: PIPELINES.forkMergeRequest, input: input(), kind: "fork-merge-request", push: false, pins: [undefined] },
  { name: "fork MR run in the fork: no push", env: { ...PIPELINES.forkMergeRequest, CI_PROJECT_PATH: "mallory/widgets", CI_PROJECT_ID: "99" }, input: input(), kind: "fork-merge-request", push: false, pins: [undefined] },
  { name: "no token on the default branch: pull only", env: PIPELINES.defaultBranch, input: input({ hasToken: false }), kind: "default-branch", push: false, pins: [undefined] },
  { name: "push: never on the default branch", env: PIPELINES.defaultBranch, input: input({ push: "never" }), kind: "default-branch", push: false, pins: [undefined] },
  { name: "push: always overrides the fork gate", env: PIPELINES.forkMergeRequest, input: input({ push: "always" }), kind: "fork-merge-request", push: true, pins: [undefined] },
  { name: "push: always still needs a token", env: PIPELINES.forkMergeRequest, input: input({ push: "always", hasToken: false }), kind: "fork-merge-request", push: false, pins: [undefined] },
  { name: "pin: never on the default branch", env: PIPELINES.defaultBranch, input: input({ pin: "never" }), kind: "default-branch", push: true, pins: [undefined] },
  { name: "explicit pin name on an MR", env: PIPELINES.mergeRequest, input: input({ pin: "review" }), kind: "merge-request", push: true, pins: ["review"] },
  { name: "several installables get one pin each", env: PIPELINES.defaultBranch, input: input({ installables: [".#default", ".#lib"] }), kind: "default-branch", push: true, pins: ["acme-widgets-main-default", "acme-widgets-main-lib"] },
  { name: "outside CI with a token: push, no pin", env: {}, input: input(), kind: "local", push: true, pins: [undefined] },
] as const;

describe("planJob follows the policy table", () => {
  it.each(cases)("$name", ({ env, input: planInput, kind, push, pins }) => {
    const plan = planJob(planInput, readCiContext(env, "/project"));
    expect(plan.kind).toBe(kind);
    expect(plan.pull).toBe(true);
    expect(plan.push).toBe(push);
    expect(plan.installables.map((i) => i.pin)).toEqual(pins);
    // Every "no push" says why, in one line.
    if (!push) {
      expect(plan.notices).toHaveLength(1);
      expect(plan.notices[0]).not.toContain("\n");
    }
  });
});

describe("pin names", () => {
  it.each([
    ["acme/widgets/main", "acme-widgets-main"],
    ["group/sub/proj/feature/ä-x", "group-sub-proj-feature-x"],
    ["///", "pin"],
    ["a".repeat(300), "a".repeat(256)],
  ])("%s → %s", (text, expected) => {
    expect(sanitizePinName(text)).toBe(expected);
    expect(sanitizePinName(text)).toMatch(/^[A-Za-z0-9._-]{1,256}$/);
  });

  it.each([
    [".#default", "default"],
    [".#packages.x86_64-linux.hello", "packages.x86_64-linux.hello"],
    ["github:o/r#x", "x"],
    [".#", "default"],
  ])("label of %s is %s", (installable, label) => {
    expect(installableLabel(installable)).toBe(label);
  });

  it("a fork MR is detected by path when GitLab gives no ids", () => {
    const ci = readCiContext(
      { CI_PIPELINE_SOURCE: "merge_request_event", CI_PROJECT_PATH: "acme/widgets", CI_MERGE_REQUEST_SOURCE_PROJECT_PATH: "mallory/widgets" },
      "/p",
    );
    expect(classifyPipeline(ci)).toBe("fork-merge-request");
  });
});

describe("pushItems: what the final push carries", () => {
  const plan = (installables: string[], pin = "auto") =>
    planJob(input({ installables, pin }), readCiContext(PIPELINES.defaultBranch, "/project"));
  const built = (installable: string, outputs: Record<string, string>) => ({ installable, ok: true, outputs });
  const rows = [
    {
      name: "one pinned push per installable on the default branch",
      items: pushItems(plan([".#a", ".#b"]), [built(".#a", { out: "/nix/store/a" }), built(".#b", { out: "/nix/store/b" })]),
      expected: [
        { paths: ["/nix/store/a"], pin: "acme-widgets-main-a" },
        { paths: ["/nix/store/b"], pin: "acme-widgets-main-b" },
      ],
    },
    {
      name: "a pinned installable's other outputs and built paths not pushed yet go in one unpinned push",
      items: pushItems(plan([".#a"]), [built(".#a", { out: "/nix/store/a", dev: "/nix/store/a-dev" })], ["/nix/store/tool", "/nix/store/a-dev"]),
      expected: [
        { paths: ["/nix/store/a-dev", "/nix/store/tool"], pin: undefined },
        { paths: ["/nix/store/a"], pin: "acme-widgets-main" },
      ],
    },
    {
      name: "a failed installable is not pushed, what was built for it still is",
      items: pushItems(plan([".#a"]), [{ installable: ".#a", ok: false, outputs: {} }], ["/nix/store/dep"]),
      expected: [{ paths: ["/nix/store/dep"], pin: undefined }],
    },
  ];
  it.each(rows)("$name", ({ items, expected }) => {
    expect(items).toEqual(expected);
  });

  it("leaves out built paths that an output's closure carries anyway, keeps all when the closures are unknown", () => {
    const built = ["/nix/store/dep", "/nix/store/tool", "/nix/store/app"];
    expect(outsideClosures(built, new Set(["/nix/store/dep", "/nix/store/app"]))).toEqual(["/nix/store/tool"]);
    expect(outsideClosures(built, undefined)).toEqual(built);
  });
});
