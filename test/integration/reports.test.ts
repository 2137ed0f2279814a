// The build component's reports after a real gitlab-ci-local run (shell executor, the fixture
// flake, the niks3 double, the fake server): every report file exists, parses, and says the right
// thing about each installable; the dotenv outputs reach a later job; the log has its sections.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { XMLParser, XMLValidator } from "fast-xml-parser";
import { parseEnv as parseDotenv } from "node:util";
import { describe, expect, it } from "vitest";
import { COMPONENT_PROJECT, makeConsumerProject, runPipeline, type GclResult } from "../helpers/gitlab-ci-local.ts";
import { closureOf, makeFixtureFlake, nixEnv } from "../helpers/nix.ts";
import { BUNDLE } from "../helpers/repo.ts";
import { useNiks3TestBed } from "../helpers/test-bed.ts";

const bed = useNiks3TestBed();
const { token } = bed;
const PIN_BASE = COMPONENT_PROJECT.replace("/", "-");

// A later job that needs the build job and prints the dotenv variables it received.
const consumerYaml = (installables: string) =>
  [
    "include:",
    `  - component: $CI_SERVER_FQDN/${COMPONENT_PROJECT}/build@$CI_COMMIT_SHA`,
    "    inputs:",
    `      server_url: ${bed.server.url}`,
    `      installables: ${installables}`,
    `      helper: ${process.execPath} ${BUNDLE}`,
    "",
    "deploy:",
    "  stage: deploy",
    "  needs: [niks3-build]",
    "  script:",
    '    - echo "got NIKS3_STATUS=$NIKS3_STATUS"',
    '    - echo "got NIKS3_PUSHED_COUNT=$NIKS3_PUSHED_COUNT"',
    '    - echo "got NIKS3_PINS=$NIKS3_PINS"',
    '    - echo "got NIKS3_OUT_PATHS=$NIKS3_OUT_PATHS"',
    "",
  ].join("\n");

interface Run {
  result: GclResult;
  dir: string;
  report: (file: string) => string;
}

async function pipeline(installables: string, variables: Record<string, string>): Promise<Run> {
  const flake = makeFixtureFlake();
  const project = makeConsumerProject({ ".gitlab-ci.yml": consumerYaml(installables) }, { flakeDir: flake.dir });
  const result = await runPipeline(project, { variables: { CI_SERVER_URL: "https://gitlab.example.com", NIKS3_TOKEN: token, ...variables } }, bed.env());
  const reportDir = join(project.dir, ".niks3-gitlab");
  return { result, dir: project.dir, report: (file) => readFileSync(join(reportDir, file), "utf8") };
}

interface TestCase {
  "@_classname": string;
  "@_name": string;
  failure?: { "@_message": string; "#text": string };
  "system-out"?: string;
}

function junitCases(xml: string): { suite: Record<string, unknown>; cases: TestCase[] } {
  expect(XMLValidator.validate(xml)).toBe(true);
  const doc = new XMLParser({ ignoreAttributes: false, isArray: (name) => name === "testcase" || name === "testsuite" }).parse(xml) as {
    testsuites: { testsuite: (Record<string, unknown> & { testcase: TestCase[] })[] };
  };
  const suite = doc.testsuites.testsuite[0] as Record<string, unknown> & { testcase: TestCase[] };
  return { suite, cases: suite.testcase };
}

const gotLine = (result: GclResult, key: string) => new RegExp(`> got ${key}=(.*)$`, "m").exec(result.all)?.[1]?.trim();

describe("build component reports in gitlab-ci-local", () => {
  it("default branch: JUnit, annotations, dotenv and summary describe every installable; a later job gets the outputs", async () => {
    const run = await pipeline(".#default .#dep", { CI_COMMIT_REF_PROTECTED: "true" });
    expect(run.result.exitCode, run.result.all).toBe(0);
    expect(run.result.all).not.toContain(token);

    const summary = JSON.parse(run.report("summary.json")) as {
      installables: { installable: string; ok: boolean; outputs: Record<string, string>; closure_size: number; pin: string }[];
      push: { ok: boolean; uploaded: number; cached: number; pinned: string[]; runs: { pin: string; uploaded: number; cached: number }[] };
      durations_ms: Record<string, number>;
    };
    const [app, dep] = summary.installables;
    const appPath = app?.outputs.out as string;
    const depPath = dep?.outputs.out as string;
    expect(summary.installables.map((i) => [i.installable, i.ok, i.pin])).toEqual([
      [".#default", true, `${PIN_BASE}-main-default`],
      [".#dep", true, `${PIN_BASE}-main-dep`],
    ]);
    // Closure sizes are the NAR sizes of each closure: app ⊃ lib ⊃ dep.
    expect(closureOf([appPath], nixEnv(bed.confDir))).toHaveLength(3);
    expect(app?.closure_size).toBeGreaterThan(dep?.closure_size ?? Infinity);
    expect(dep?.closure_size).toBeGreaterThan(0);
    // All three paths are new to the cache; each pinned push saw its whole closure, new or already
    // cached.
    expect(summary.push).toMatchObject({ ok: true, uploaded: 3, pinned: [`${PIN_BASE}-main-default`, `${PIN_BASE}-main-dep`] });
    expect(summary.push.runs.map((r) => [r.pin, r.uploaded + r.cached])).toEqual([
      [`${PIN_BASE}-main-default`, 3],
      [`${PIN_BASE}-main-dep`, 1],
    ]);
    expect(Object.keys(summary.durations_ms)).toEqual(expect.arrayContaining(["build", "configure", "install", "push"]));

    const { suite, cases } = junitCases(run.report("junit.xml"));
    expect(suite).toMatchObject({ "@_name": "niks3-build", "@_tests": "2", "@_failures": "0" });
    expect(cases.map((c) => [c["@_name"], c.failure === undefined])).toEqual([[".#default", true], [".#dep", true]]);
    expect(cases[0]?.["system-out"]).toContain(`out: ${appPath}`);
    expect(cases[0]?.["system-out"]).toContain(`pin: ${PIN_BASE}-main-default`);
    expect(cases[0]?.["system-out"]).toContain("pushed: yes");

    const annotations = JSON.parse(run.report("annotations.json")) as { niks3: { external_link: { label: string; url: string } }[] };
    const links = annotations.niks3.map((a) => a.external_link);
    expect(links[0]).toEqual({ label: `binary cache ${bed.server.substituterUrl}`, url: bed.server.substituterUrl });
    for (const pin of [`${PIN_BASE}-main-default`, `${PIN_BASE}-main-dep`]) {
      const link = links.find((l) => l.label === `pin ${pin}`);
      expect(link?.url).toBe(`${bed.server.substituterUrl}/pins/${pin}`);
      // The link leads to the pinned store path, as niks3 serves pins.
      expect((await (await fetch(link?.url ?? "")).text()).trim()).toBe(pin.endsWith("default") ? appPath : depPath);
    }
    const narinfo = links.find((l) => l.label === ".#default narinfo");
    expect(await (await fetch(narinfo?.url ?? "")).text()).toContain(`StorePath: ${appPath}`);

    const dotenvText = run.report("niks3.env");
    expect(dotenvText).toMatch(/^([A-Za-z0-9_]+=[^\n]*\n)+$/);
    expect(Buffer.byteLength(dotenvText)).toBeLessThan(5 * 1024);
    expect(parseDotenv(dotenvText)).toEqual({
      NIKS3_STATUS: "success",
      NIKS3_SUBSTITUTER: bed.server.substituterUrl,
      NIKS3_PUSHED: "true",
      NIKS3_PUSHED_COUNT: "3",
      NIKS3_CACHED_COUNT: String(summary.push.cached),
      NIKS3_PINS: `${PIN_BASE}-main-default ${PIN_BASE}-main-dep`,
      NIKS3_OUT_PATHS: `${appPath} ${depPath}`,
    });
    // gitlab-ci-local honours reports:dotenv as GitLab does: the later job received the variables.
    expect(gotLine(run.result, "NIKS3_STATUS")).toBe("success");
    expect(gotLine(run.result, "NIKS3_PUSHED_COUNT")).toBe("3");
    expect(gotLine(run.result, "NIKS3_PINS")).toBe(`${PIN_BASE}-main-default ${PIN_BASE}-main-dep`);
    expect(gotLine(run.result, "NIKS3_OUT_PATHS")).toBe(`${appPath} ${depPath}`);

    // artifacts:paths exported every report; none holds the token.
    for (const file of ["summary.json", "junit.xml", "annotations.json", "niks3.env"]) {
      const exported = join(run.dir, ".gitlab-ci-local", "artifacts", "niks3-build", ".niks3-gitlab", file);
      expect(existsSync(exported), file).toBe(true);
      expect(readFileSync(exported, "utf8")).not.toContain(token);
    }

    // The log: gitlab-ci-local parses GitLab's section markers as GitLab does; one section per step.
    for (const step of ["configure", "install", "build", "push"]) {
      expect(run.result.all).toMatch(new RegExp(`niks3-build niks3_${step}_started`));
      expect(run.result.all).toMatch(new RegExp(`niks3-build niks3_${step} took \\d+ms`));
    }
    expect(run.result.all).toMatch(/niks3: installable\s+status\s+closure\s+pin\s+out path/);
    expect(run.result.all).toMatch(/niks3: \.#dep\s+built\s+\d+ B\s+\S+-main-dep\s+\/nix\/store\/\S+-fixture-dep/);
  });

  it("merge request with a failing installable: the JUnit failure carries the Nix log, the others pass", async () => {
    const run = await pipeline(".#broken .#default", {
      CI_PIPELINE_SOURCE: "merge_request_event",
      CI_MERGE_REQUEST_IID: "5",
      CI_PROJECT_ID: "1000",
      CI_MERGE_REQUEST_PROJECT_ID: "1000",
      CI_MERGE_REQUEST_SOURCE_PROJECT_ID: "1000",
    });
    // The job fails (gitlab-ci-local's own exit code does not tell, as a later job passed).
    expect(run.result.all).toMatch(/FAIL\s+niks3-build/);

    const { suite, cases } = junitCases(run.report("junit.xml"));
    expect(suite).toMatchObject({ "@_tests": "2", "@_failures": "1" });
    const [broken, app] = cases;
    expect(broken?.["@_name"]).toBe(".#broken");
    expect(broken?.failure?.["@_message"]).toMatch(/^error: builder for '\/nix\/store\/\S+-fixture-broken\.drv' failed/);
    expect(broken?.failure?.["#text"]).toContain("broken on purpose");
    expect(broken?.failure?.["#text"]).not.toMatch(/\u001b/);
    expect(app?.["@_name"]).toBe(".#default");
    expect(app?.failure).toBeUndefined();
    expect(app?.["system-out"]).toContain("pushed: yes");

    const env = parseDotenv(run.report("niks3.env"));
    expect(env.NIKS3_STATUS).toBe("build-failed");
    expect(env.NIKS3_PINS).toBe("");
    expect(env.NIKS3_OUT_PATHS).toMatch(/^\/nix\/store\/[a-z0-9]{32}-fixture-app$/);

    const summary = JSON.parse(run.report("summary.json")) as { installables: { installable: string; ok: boolean; error?: string }[]; exit_code: number };
    expect(summary.exit_code).toBe(1);
    expect(summary.installables.map((i) => [i.installable, i.ok])).toEqual([[".#broken", false], [".#default", true]]);
    expect(run.result.all).toMatch(/niks3: \.#broken\s+FAILED/);
    // A later job still gets the outputs of what did build.
    expect(gotLine(run.result, "NIKS3_STATUS")).toBe("build-failed");
  });
});
