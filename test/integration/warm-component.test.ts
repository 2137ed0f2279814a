// The warm component through gitlab-ci-local: which pipelines run it, its systems matrix, and a
// scheduled pipeline that really runs it (shell executor, the bundled helper, real Nix, the niks3
// double and the fake server).
import { dirname } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { COMPONENT_PROJECT, makeConsumerProject, runGitlabCiLocal, runPipeline, variableArgs, type ConsumerProject } from "../helpers/gitlab-ci-local.ts";
import { makeFixtureFlake } from "../helpers/nix.ts";
import { BUNDLE } from "../helpers/repo.ts";
import { useNiks3TestBed } from "../helpers/test-bed.ts";

const AUDIENCE = "https://niks3.example.com";

function warmInclude(inputs: Record<string, string>): string {
  return [
    "include:",
    `  - component: $CI_SERVER_FQDN/${COMPONENT_PROJECT}/warm@$CI_COMMIT_SHA`,
    "    inputs:",
    ...Object.entries({ server_url: AUDIENCE, ...inputs }).map(([key, value]) => `      ${key}: ${value}`),
    "",
  ].join("\n");
}

interface ListedJob {
  name: string;
  when: string;
}

/** listJobs: the jobs gitlab-ci-local would create for a pipeline with these variables. */
async function listJobs(project: ConsumerProject, variables: Record<string, string>): Promise<ListedJob[]> {
  const result = await runGitlabCiLocal(project.dir, ["--list-json", ...variableArgs(variables)]);
  expect(result.exitCode, result.all).toBe(0);
  const json = result.stdout.slice(result.stdout.indexOf("["), result.stdout.lastIndexOf("]") + 1);
  return (JSON.parse(json) as ListedJob[]).filter((job) => job.when !== "never");
}

describe("the warm component in gitlab-ci-local", () => {
  let project: ConsumerProject;
  beforeAll(() => {
    project = makeConsumerProject({ ".gitlab-ci.yml": warmInclude({}) });
  });

  it.each<{ name: string; variables: Record<string, string>; jobs: string[] }>([
    { name: "a scheduled pipeline", variables: { CI_PIPELINE_SOURCE: "schedule" }, jobs: ["niks3-warm"] },
    { name: "a push to the default branch", variables: { CI_PIPELINE_SOURCE: "push" }, jobs: ["niks3-warm"] },
    { name: "a merge request pipeline", variables: { CI_PIPELINE_SOURCE: "merge_request_event", CI_MERGE_REQUEST_IID: "7" }, jobs: [] },
    { name: "a push to another branch", variables: { CI_PIPELINE_SOURCE: "push", CI_COMMIT_BRANCH: "feature/x" }, jobs: [] },
  ])("$name runs: $jobs", async ({ variables, jobs }) => {
    expect((await listJobs(project, variables)).map((job) => job.name)).toEqual(jobs);
  });

  it("matrix: true makes one job per system, each on runners tagged with the system's name", async () => {
    const matrix = makeConsumerProject({ ".gitlab-ci.yml": warmInclude({ matrix: "true", systems: "[x86_64-linux, aarch64-darwin]" }) });
    expect((await listJobs(matrix, { CI_PIPELINE_SOURCE: "schedule" })).map((job) => job.name)).toEqual([
      "niks3-warm: [x86_64-linux]",
      "niks3-warm: [aarch64-darwin]",
    ]);
    const preview = await runGitlabCiLocal(matrix.dir, ["--preview"]);
    expect(preview.all).toContain("json schema validated");
    const job = (parse(preview.stdout.slice(preview.stdout.indexOf("---"))) as Record<string, Record<string, unknown>>)["niks3-warm"]!;
    expect(job.parallel).toEqual({ matrix: [{ NIKS3_WARM_SYSTEM: ["x86_64-linux", "aarch64-darwin"] }] });
    expect(job.tags).toEqual(["$NIKS3_WARM_SYSTEM"]);

    // Without matrix: one job, any runner, the runner's own system.
    const single = await runGitlabCiLocal(project.dir, ["--preview"]);
    const plain = (parse(single.stdout.slice(single.stdout.indexOf("---"))) as Record<string, Record<string, unknown>>)["niks3-warm"]!;
    expect(plain.parallel).toBeUndefined();
    expect(plain.tags).toBeUndefined();
    expect(plain.variables).toMatchObject({ NIKS3_WARM_SYSTEM: "" });
  });

  describe("a scheduled pipeline, run", () => {
    const bed = useNiks3TestBed({ audience: AUDIENCE });
    const { token } = bed;

    it("builds, pushes and pins every output of the flake, and never shows the token", async () => {
      const { server } = bed;
      const consumer = makeConsumerProject(
        {
          ".gitlab-ci.yml": warmInclude({
            server_url: server.url,
            audience: AUDIENCE,
            exclude: "packages.broken",
            helper: `${process.execPath} ${BUNDLE}`,
          }),
        },
        { flakeDir: makeFixtureFlake().dir },
      );
      // gitlab-ci-local has no id_tokens: the token comes in as a variable, as GitLab would set it.
      const result = await runPipeline(
        consumer,
        { variables: { CI_PIPELINE_SOURCE: "schedule", NIKS3_TOKEN: token } },
        { ...bed.env(), PATH: `${bed.binDir}:${dirname(process.execPath)}:${process.env.PATH}`, HOME: consumer.dir },
      );
      expect(result.exitCode, result.all).toBe(0);
      expect(result.all).toContain("PASS  niks3-warm");
      const pins = [...server.pins.keys()].sort();
      expect(pins).toHaveLength(7);
      for (const pin of pins) expect(pin).toMatch(/^niks3-niks3-gitlab-main-(packages|checks|devShells|formatter)\./);
      for (const path of server.pins.values()) expect(server.storePaths().has(path)).toBe(true);
      expect(result.all).not.toContain(token);
    });
  });
});
