// The build component run for real by gitlab-ci-local's shell executor, on the fixture flake, with
// the niks3 double: one pipeline of each kind in product.md's policy table. Each run checks what
// was built, pushed and pinned, and the job's status.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { closureOf, makeFixtureFlake, nixEnv } from "../helpers/nix.ts";
import { COMPONENT_PROJECT, makeConsumerProject, runPipeline } from "../helpers/gitlab-ci-local.ts";
import { BUNDLE } from "../helpers/repo.ts";
import { useNiks3TestBed } from "../helpers/test-bed.ts";

const bed = useNiks3TestBed();
const { token } = bed;
const PIN_BASE = COMPONENT_PROJECT.replace("/", "-");

const consumerYaml = () =>
  [
    "include:",
    `  - component: $CI_SERVER_FQDN/${COMPONENT_PROJECT}/build@$CI_COMMIT_SHA`,
    "    inputs:",
    `      server_url: ${bed.server.url}`,
    "      installables: .#default .#dep",
    `      helper: ${process.execPath} ${BUNDLE}`,
    "",
  ].join("\n");

interface Scenario {
  name: string;
  variables: Record<string, string>;
  unset?: string[];
  runs: boolean;
  pushes: boolean;
  pins: string[];
  notice?: RegExp;
}

const MR = { CI_PIPELINE_SOURCE: "merge_request_event", CI_MERGE_REQUEST_IID: "5", CI_PROJECT_ID: "1000", CI_MERGE_REQUEST_PROJECT_ID: "1000" };
const scenarios: Scenario[] = [
  { name: "default branch push", variables: { CI_COMMIT_REF_PROTECTED: "true" }, runs: true, pushes: true, pins: [`${PIN_BASE}-main-default`, `${PIN_BASE}-main-dep`] },
  { name: "schedule on the default branch", variables: { CI_PIPELINE_SOURCE: "schedule", CI_COMMIT_REF_PROTECTED: "true" }, runs: true, pushes: true, pins: [`${PIN_BASE}-main-default`, `${PIN_BASE}-main-dep`] },
  { name: "tag", variables: { CI_COMMIT_TAG: "1.0.0", CI_COMMIT_REF_NAME: "1.0.0", CI_COMMIT_REF_PROTECTED: "true" }, unset: ["CI_COMMIT_BRANCH"], runs: true, pushes: true, pins: [`${PIN_BASE}-1.0.0-default`, `${PIN_BASE}-1.0.0-dep`] },
  { name: "same-project merge request", variables: { ...MR, CI_MERGE_REQUEST_SOURCE_PROJECT_ID: "1000" }, unset: ["CI_COMMIT_BRANCH"], runs: true, pushes: true, pins: [] },
  { name: "merge request from a fork", variables: { ...MR, CI_MERGE_REQUEST_SOURCE_PROJECT_ID: "2000", CI_MERGE_REQUEST_SOURCE_PROJECT_PATH: "mallory/niks3-gitlab" }, unset: ["CI_COMMIT_BRANCH"], runs: true, pushes: false, pins: [], notice: /merge request from a fork: pulling from the cache only, nothing is pushed/ },
  { name: "branch with an open merge request (the MR pipeline runs instead)", variables: { CI_COMMIT_BRANCH: "feature", CI_OPEN_MERGE_REQUESTS: `${COMPONENT_PROJECT}!5` }, runs: false, pushes: false, pins: [] },
];

describe("the build component in gitlab-ci-local", () => {
  it.each(scenarios)("$name", async (scenario) => {
    const flake = makeFixtureFlake();
    const project = makeConsumerProject({ ".gitlab-ci.yml": consumerYaml() }, { flakeDir: flake.dir });
    const variables = { CI_SERVER_URL: "https://gitlab.example.com", NIKS3_TOKEN: token, ...scenario.variables };
    const pinsBefore = new Map(bed.server.pins);
    const result = await runPipeline(project, { variables, unset: scenario.unset }, bed.env());
    expect(result.exitCode, result.all).toBe(0);
    expect(result.all).not.toContain(token);

    const summaryPath = join(project.dir, ".niks3-gitlab", "summary.json");
    if (!scenario.runs) {
      expect(result.all).not.toContain("niks3-build starting");
      expect(existsSync(summaryPath)).toBe(false);
      return;
    }
    expect(result.all).toMatch(/PASS\s+niks3-build/);
    if (scenario.notice) expect(result.all).toMatch(scenario.notice);
    const summary = JSON.parse(readFileSync(summaryPath, "utf8")) as {
      installables: { installable: string; ok: boolean; outputs: Record<string, string> }[];
      push: { attempted: boolean; ok: boolean };
    };
    expect(summary.installables.map((i) => [i.installable, i.ok])).toEqual([[".#default", true], [".#dep", true]]);
    const outputs = summary.installables.flatMap((i) => Object.values(i.outputs));
    const closure = closureOf(outputs, nixEnv(bed.confDir));
    expect(closure).toHaveLength(3);
    for (const path of closure) expect(bed.server.storePaths().has(path), path).toBe(scenario.pushes);
    expect(summary.push).toMatchObject({ attempted: scenario.pushes, ok: scenario.pushes });

    const newPins = [...bed.server.pins].filter(([name, path]) => pinsBefore.get(name) !== path).map(([name]) => name).sort();
    expect(newPins).toEqual([...scenario.pins].sort());
    for (const [index, pin] of scenario.pins.entries()) expect(bed.server.pins.get(pin)).toBe(outputs[index]);
  });
});
