// Every include in the README is valid GitLab CI: gitlab-ci-local expands it (inputs, rules) and
// validates the result against GitLab's CI JSON schema.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { COMPONENT_PROJECT, makeConsumerProject, runGitlabCiLocal } from "../helpers/gitlab-ci-local.ts";
import { MANIFEST_COMPONENTS, REPO_ROOT } from "../helpers/repo.ts";

const URL_INPUT = "server_url: https://niks3.example.com";
const readme = readFileSync(`${REPO_ROOT}/README.md`, "utf8");
const includeExamples = [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)]
  .map((match) => match[1] ?? "")
  .filter((yaml) => yaml.includes("component:"));

describe("README include examples", () => {
  it("cover every component", () => {
    for (const name of MANIFEST_COMPONENTS) expect(includeExamples.some((y) => y.includes(`/${name}@`))).toBe(true);
  });

  it.each(includeExamples.map((yaml, index) => ({ index, yaml })))("example $index passes gitlab-ci-local --preview", async ({ yaml }) => {
    // The README pins a release; here the component is resolved at the consumer's HEAD.
    const project = makeConsumerProject({ ".gitlab-ci.yml": yaml.replace(/@[\w.]+$/gm, "@$CI_COMMIT_SHA") });
    expect(yaml).toContain(`$CI_SERVER_FQDN/${COMPONENT_PROJECT}/`);
    const result = await runGitlabCiLocal(project.dir, ["--preview"]);
    expect(result.exitCode, result.all).toBe(0);
    expect(result.all).toContain("json schema validated");
    const expanded = parse(result.stdout.slice(result.stdout.indexOf("---"))) as Record<string, { id_tokens?: unknown; script?: string[] }>;
    const jobs = Object.entries(expanded).filter(([name]) => !["stages", "variables", "default", "workflow"].includes(name));
    expect(jobs.length).toBeGreaterThan(0);
    for (const [, job] of jobs) {
      expect(job.id_tokens).toHaveProperty("NIKS3_TOKEN");
      // The token is never put on a command line by the template itself.
      expect(JSON.stringify(job.script)).not.toContain("$NIKS3_TOKEN");
    }
  });

  it("adds no global keywords to the consumer's pipeline", async () => {
    const project = makeConsumerProject({ ".gitlab-ci.yml": (includeExamples[0] ?? "").replace(/@[\w.]+$/gm, "@$CI_COMMIT_SHA") });
    const result = await runGitlabCiLocal(project.dir, ["--preview"]);
    const expanded = parse(result.stdout.slice(result.stdout.indexOf("---"))) as Record<string, unknown>;
    expect(Object.keys(expanded)).not.toContain("default");
    expect(Object.keys(expanded)).not.toContain("workflow");
    expect(Object.keys(expanded)).not.toContain("variables");
    expect(expanded.stages).toEqual([".pre", "build", "test", "deploy", ".post"]);
  });

  it.each([
    { name: "push outside its options", inputs: [URL_INPUT, "push: maybe"], error: "not in the list of allowed options" },
    { name: "server_url that is not a URL", inputs: ["server_url: niks3.example.com"], error: "does not match required regex" },
    { name: "pin with a slash", inputs: [URL_INPUT, "pin: acme/main"], error: "does not match required regex" },
    { name: "a missing server_url", inputs: ["stage: test"], error: "required value has not been provided" },
  ])("rejects $name before anything runs", async ({ inputs, error }) => {
    const yaml = [
      "include:",
      `  - component: $CI_SERVER_FQDN/${COMPONENT_PROJECT}/build@$CI_COMMIT_SHA`,
      "    inputs:",
      ...inputs.map((line) => `      ${line}`),
      "",
    ].join("\n");
    const project = makeConsumerProject({ ".gitlab-ci.yml": yaml });
    const result = await runGitlabCiLocal(project.dir, ["--preview"]);
    expect(result.exitCode).not.toBe(0);
    expect(result.all).toContain(error);
  });
});

describe("this project's own pipeline", () => {
  it("includes its components at the current commit, with the helper built from it, and is valid", async () => {
    const ownPipeline = readFileSync(`${REPO_ROOT}/.gitlab-ci.yml`, "utf8");
    const project = makeConsumerProject({ ".gitlab-ci.yml": ownPipeline });
    const result = await runGitlabCiLocal(project.dir, ["--preview", "--variable", "NIKS3_SELF_TEST_SERVER_URL=https://niks3.example.com"]);
    expect(result.exitCode, result.all).toBe(0);
    const expanded = parse(result.stdout.slice(result.stdout.indexOf("---"))) as Record<string, { variables?: Record<string, string>; needs?: unknown; release?: unknown }>;
    for (const name of MANIFEST_COMPONENTS) expect(ownPipeline).toContain(`$CI_SERVER_FQDN/$CI_PROJECT_PATH/${name}@$CI_COMMIT_SHA`);
    expect(expanded["self-test-build"]?.variables?.NIKS3_HELPER).toBe("node $CI_PROJECT_DIR/dist/niks3-gitlab.mjs");
    expect(expanded["self-test-build"]?.needs).toEqual([expect.objectContaining({ job: "test" })]);
    expect(expanded.release?.release).toMatchObject({ tag_name: "$CI_COMMIT_TAG" });
  });
});
