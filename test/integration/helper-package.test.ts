// The `helper` input at its default, `niks3_npx niks3-gitlab@<version>`, run for real: `npm pack`
// makes the package as it would be published, a registry on loopback serves it, and gitlab-ci-local
// runs each component twice in one project, each time with a fresh HOME (so npm's default cache is
// new each time). The first job installs the helper into the job's cache; the second starts it from
// there and asks the registry nothing. V8's compile cache of the helper is kept there too.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { COMPONENT_PROJECT, makeConsumerProject, runPipeline } from "../helpers/gitlab-ci-local.ts";
import { makeFixtureFlake } from "../helpers/nix.ts";
import { PACKAGE as pkg, startPackageRegistry, type PackageRegistry } from "../helpers/npm-registry.ts";
import { useNiks3TestBed } from "../helpers/test-bed.ts";

const bed = useNiks3TestBed();
let registry: PackageRegistry;
beforeAll(async () => {
  registry = await startPackageRegistry();
});
afterAll(() => registry.close());

const include = (component: string) => [
  "include:",
  `  - component: $CI_SERVER_FQDN/${COMPONENT_PROJECT}/${component}@$CI_COMMIT_SHA`,
  "    inputs:",
  `      server_url: ${bed.server.url}`,
];
const components = [
  { component: "build", job: "niks3-build", yaml: () => [...include("build"), ""].join("\n") },
  // The fixture flake has a package that fails on purpose; warm would report it.
  { component: "warm", job: "niks3-warm", yaml: () => [...include("warm"), "      exclude: packages.broken", ""].join("\n") },
  {
    component: "setup",
    job: "nix-job",
    // npm's cache setting is the helper's alone: the job's own script does not see it.
    yaml: () => [...include("setup"), "nix-job:", "  extends: .niks3", "  script:", '    - test -z "$npm_config_cache"', "    - nix build .#default", ""].join("\n"),
  },
];

// `npm test` exports its own npm_* settings (the local project among them): a job has none.
const jobEnv = () => ({ ...Object.fromEntries(Object.entries(bed.env()).filter(([name]) => !/^npm_/i.test(name))), HOME: mkdtempSync(join(tmpdir(), "niks3-home-")) });
const jobVariables = { CI_SERVER_URL: "https://gitlab.example.com", NIKS3_TOKEN: bed.token, CI_COMMIT_REF_PROTECTED: "true" };
const packagesDir = (projectDir: string) => join(projectDir, ".niks3-gitlab", "cache", "npm-packages");

describe("the helper as published, installed into the job's cache", () => {
  it.each(components)("$component: the first job installs it from the registry; the next one starts it from the job's cache without asking the registry", async ({ job, yaml }) => {
    const project = makeConsumerProject({ ".gitlab-ci.yml": yaml() }, { flakeDir: makeFixtureFlake().dir });
    const run = () => runPipeline(project, { variables: { ...jobVariables, npm_config_registry: registry.url }, jobs: [job] }, jobEnv());
    const downloadsBefore = registry.tarballDownloads;

    const first = await run();
    expect(first.exitCode, first.all).toBe(0);
    expect(first.all).toMatch(new RegExp(`PASS\\s+${job}`));
    expect(first.all).toContain("niks3: pipeline: default branch");
    expect(first.all).toContain(`niks3: installing ${pkg.name}@${pkg.version} into the job's cache`);
    expect(registry.tarballDownloads - downloadsBefore).toBe(1);
    // The job's cache keeps the installed package, not npm's cache of it.
    expect(readdirSync(packagesDir(project.dir))).toEqual([`${pkg.name}@${pkg.version}`]);
    expect(readdirSync(join(packagesDir(project.dir), `${pkg.name}@${pkg.version}`))).toEqual(["node_modules"]);
    expect(existsSync(join(project.dir, ".niks3-gitlab", "cache", "npm"))).toBe(false);
    // V8's compile of the helper is kept there too (gitlab-ci-local, unlike GitLab, sets GITLAB_CI=false).
    expect(readdirSync(join(project.dir, ".niks3-gitlab", "cache", "node-compile-cache"), { recursive: true }).length).toBeGreaterThan(1);

    const requestsBefore = registry.requests;
    const second = await run();
    expect(second.exitCode, second.all).toBe(0);
    expect(second.all).toMatch(new RegExp(`PASS\\s+${job}`));
    expect(second.all).not.toContain("niks3: installing");
    expect(registry.requests - requestsBefore).toBe(0);
  });

  it("replaces another version, its compile cache, and what a cancelled install left, with this one", async () => {
    const project = makeConsumerProject({ ".gitlab-ci.yml": components[0]!.yaml() }, { flakeDir: makeFixtureFlake().dir });
    const oldCompileCache = join(project.dir, ".niks3-gitlab", "cache", "node-compile-cache", "v22-old");
    mkdirSync(oldCompileCache, { recursive: true });
    writeFileSync(join(oldCompileCache, "entry"), "compiled 0.0.1");
    const oldBin = join(packagesDir(project.dir), `${pkg.name}@0.0.1`, "node_modules", ".bin");
    mkdirSync(oldBin, { recursive: true });
    writeFileSync(join(oldBin, pkg.name), "#!/bin/sh\nexit 99\n");
    chmodSync(join(oldBin, pkg.name), 0o755);
    mkdirSync(join(packagesDir(project.dir), "partial", "node_modules", pkg.name), { recursive: true });

    const result = await runPipeline(project, { variables: { ...jobVariables, npm_config_registry: registry.url }, jobs: ["niks3-build"] }, jobEnv());
    expect(result.exitCode, result.all).toBe(0);
    expect(result.all).toMatch(/PASS\s+niks3-build/);
    expect(readdirSync(packagesDir(project.dir))).toEqual([`${pkg.name}@${pkg.version}`]);
    expect(existsSync(oldCompileCache)).toBe(false);
  });

  it("installs through the registry that the project's .npmrc names, as npx would", async () => {
    const project = makeConsumerProject({ ".gitlab-ci.yml": components[0]!.yaml(), ".npmrc": `registry=${registry.url}/\n` }, { flakeDir: makeFixtureFlake().dir });
    const downloadsBefore = registry.tarballDownloads;
    const result = await runPipeline(project, { variables: jobVariables, jobs: ["niks3-build"] }, jobEnv());
    expect(result.exitCode, result.all).toBe(0);
    expect(result.all).toMatch(/PASS\s+niks3-build/);
    expect(registry.tarballDownloads - downloadsBefore).toBe(1);
    expect(existsSync(join(packagesDir(project.dir), `${pkg.name}@${pkg.version}`, "node_modules", ".bin", pkg.name))).toBe(true);
  });
});
