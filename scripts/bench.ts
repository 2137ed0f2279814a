// `npm run bench`: performance figures, each measured side by side with its baseline in this one
// invocation, as medians over several runs. It measures and asserts nothing; the README's
// Performance section quotes its output. Real Nix, real gitlab-ci-local, the niks3 double.

import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { execa } from "execa";
import { startFakeNiks3Server } from "../test/doubles/fake-niks3-server.ts";
import { makeReleaseFiles, writeNiks3Bin } from "../test/doubles/niks3-bin.ts";
import { COMPONENT_PROJECT, makeConsumerProject, runGitlabCiLocal } from "../test/helpers/gitlab-ci-local.ts";
import { closureOf, deleteFromStore, makeFixtureFlake, nixEnv, testNixConfDir } from "../test/helpers/nix.ts";
import { BUNDLE } from "../test/helpers/repo.ts";
import { PACKAGE, startPackageRegistry } from "../test/helpers/npm-registry.ts";
import { makeUploadFlake } from "../test/helpers/upload.ts";
import { benchUpload } from "./bench-upload.ts";
import { makeToken } from "../test/helpers/token.ts";

const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
};
async function timed(run: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await run();
  return performance.now() - start;
}
async function medianOf(run: () => Promise<unknown>, runs = RUNS): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) times.push(await timed(run));
  return median(times);
}

interface Row {
  figure: string;
  value: string;
  baseline: string;
  ratio: string;
  target: string;
}
const rows: Row[] = [];
const ms = (value: number) => `${value.toFixed(0)} ms`;

// 1. Start-up: the bundled CLI's --version against bare node.
async function startup(): Promise<void> {
  const node = process.execPath;
  await execa(node, [BUNDLE, "--version"]); // warm the file cache for both
  const bare = await medianOf(() => execa(node, ["-e", "0"]), RUNS * 3);
  const cli = await medianOf(() => execa(node, [BUNDLE, "--version"]), RUNS * 3);
  rows.push({ figure: "helper start-up (`--version`)", value: ms(cli), baseline: `${ms(bare)} (node -e 0)`, ratio: `${(cli / bare).toFixed(2)}×`, target: "≤ 2×" });
}

const token = makeToken({ aud: "https://niks3.example.com" });
const server = await startFakeNiks3Server({ token, oidcAudience: "https://niks3.example.com" });
const confDir = testNixConfDir();
/** The release the double serves, for the install figure and the recipe's download. */
const RECIPE_NIKS3_VERSION = "9.8.7";
server.serveRelease(RECIPE_NIKS3_VERSION, makeReleaseFiles());
const binDir = mkdtempSync(join(tmpdir(), "niks3-bench-bin-"));
writeNiks3Bin(binDir);
// `npm run bench` exports npm_* settings of its own (npm's cache among them): a job has none.
const env = { ...Object.fromEntries(Object.entries(nixEnv(confDir)).filter(([name]) => !/^npm_/i.test(name))), PATH: `${binDir}:${process.env.PATH}` };
/** The helper as published, for the jobs' default `helper`. */
const registry = await startPackageRegistry();

// 2. niks3 install: cold (download + verify from a local server) against warm (cached).
async function install(): Promise<void> {
  (globalThis as Record<string, unknown>).__NIKS3_GITLAB_MANIFEST__ = { niks3: { sha256: {} } };
  const { installNiks3 } = await import("../src/install/index.ts");
  const silent = { info() {}, warn() {}, raw() {} };
  const options = (cacheDir: string) => ({
    version: RECIPE_NIKS3_VERSION,
    downloadUrl: `${server.url}/releases`,
    cacheDir,
    path: "",
    platform: process.platform,
    arch: process.arch,
    log: silent,
  });
  const coldTimes: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const dir = mkdtempSync(join(tmpdir(), "niks3-bench-cache-"));
    coldTimes.push(await timed(() => installNiks3(options(dir))));
    rmSync(dir, { recursive: true, force: true });
  }
  const warmDir = mkdtempSync(join(tmpdir(), "niks3-bench-cache-"));
  await installNiks3(options(warmDir));
  const warm = await medianOf(() => installNiks3(options(warmDir)), RUNS * 3);
  const cold = median(coldTimes);
  rows.push({ figure: "niks3 install, cached", value: `${warm.toFixed(1)} ms`, baseline: `${ms(cold)} (download + verify)`, ratio: `${(warm / cold).toFixed(3)}×`, target: "≤ 50 ms" });
}

// 3. The build job in gitlab-ci-local against the recipe on niks3's wiki page "Using niks3 with
// GitLab CI", as a job, same flake, same double. As the wiki has it: Nix pulls from the cache through
// NIX_CONFIG, niks3 is downloaded in every job (here from the double's release server, not GitHub),
// then `nix build` and `./niks3 push ./result`.
const recipeSteps = (serverUrl: string, installable: string, niks3 = "./niks3") => ({
  build: `nix build --log-format bar-with-logs --extra-experimental-features "nix-command flakes" ${installable}`,
  download: `curl -fsSL "${serverUrl}/releases/v${RECIPE_NIKS3_VERSION}/niks3_$(uname -s)_$(uname -m).tar.gz" | tar -xzf -`,
  push: `${niks3} push --server-url ${serverUrl} --auth-token "$NIKS3_TOKEN" ./result`,
});
const recipePullConfig = (serverUrl: string) => `extra-substituters = ${serverUrl}/cache\nextra-trusted-public-keys = ${server.publicKey}\n`;
const recipeJob = (serverUrl: string, installable: string) => `
recipe:
  variables:
    NIX_CONFIG: ${JSON.stringify(recipePullConfig(serverUrl))}
  script:
${Object.values(recipeSteps(serverUrl, installable)).map((command) => `    - ${JSON.stringify(command)}`).join("\n")}
noop:
  script:
    - "true"
`;

// 3b. The floor: the build component's job with a helper that only builds and pushes, as the
// recipe does but with niks3 already installed (cached, as the helper has it). The job keeps the
// component's template, artifacts and reports, so what it takes over the recipe is the job's shape
// (here gitlab-ci-local saving the reports). A helper that builds and then pushes cannot take less
// (only uploading while building can), and what the build job takes over this one is its own.
const FLOOR_JOB = "build-and-push-only";
const floorScripts = new Map<string, string>();
const floorScript = (serverUrl: string, installable: string) => {
  const known = floorScripts.get(installable);
  if (known) return known;
  const path = join(mkdtempSync(join(tmpdir(), "niks3-bench-floor-")), "build-and-push-only.sh");
  floorScripts.set(installable, path);
  const { build, push } = recipeSteps(serverUrl, installable, "niks3");
  const reports = { "summary.json": "{}", "junit.xml": "<testsuites/>", "annotations.json": "{}", "niks3.env": "NIKS3_PUSHED=true" };
  writeFileSync(
    path,
    [
      "set -eu",
      `export NIX_CONFIG='${recipePullConfig(serverUrl)}'`,
      build,
      push,
      "mkdir -p .niks3-gitlab",
      ...Object.entries(reports).map(([name, text]) => `echo '${text}' > .niks3-gitlab/${name}`),
      "",
    ].join("\n"),
  );
  return path;
};
// The build job runs the helper as users get it by default: installed from the registry into the
// job's cache (by the warm-up run below), then started from there. The npx job starts it with
// `npx --yes` in every job instead, as the templates did before.
const NPX_JOB = "niks3-build-npx";
const componentInclude = (serverUrl: string, installable: string) => `include:
  - component: $CI_SERVER_FQDN/${COMPONENT_PROJECT}/build@$CI_COMMIT_SHA
    inputs:
      server_url: ${serverUrl}
      installables: ${installable}
  - component: $CI_SERVER_FQDN/${COMPONENT_PROJECT}/build@$CI_COMMIT_SHA
    inputs:
      as: ${NPX_JOB}
      server_url: ${serverUrl}
      installables: ${installable}
      helper: npx --yes ${PACKAGE.name}@${PACKAGE.version}
  - component: $CI_SERVER_FQDN/${COMPONENT_PROJECT}/build@$CI_COMMIT_SHA
    inputs:
      as: ${FLOOR_JOB}
      server_url: ${serverUrl}
      installables: ${installable}
      helper: sh ${floorScript(serverUrl, installable)}
`;

interface Fixture {
  /** A fresh copy of the flake (new store paths). */
  flake: () => { dir: string };
  installable: string;
  /** Extra environment for the job (the double's upload delay). */
  env?: Record<string, string>;
}

// GitLab restores the job's `cache:` (.niks3-gitlab/cache/: niks3, the installed helper, V8's
// compile cache of it) before the script, as it would from the second pipeline on;
// gitlab-ci-local starts each fresh project with none, so the bench carries it from run to run.
const jobCache = mkdtempSync(join(tmpdir(), "niks3-bench-job-cache-"));
// Each run gets a fresh project at the same path, as GitLab builds a project in the same directory
// (/builds/<group>/<project>): V8's compile cache of the helper is keyed by its path.
const projectDir = join(mkdtempSync(join(tmpdir(), "niks3-bench-")), "project");

async function gclJob(job: string, fixture: Fixture): Promise<{ wallMs: number; dir: string; output: string }> {
  const flake = fixture.flake();
  const project = makeConsumerProject(
    { ".gitlab-ci.yml": componentInclude(server.url, fixture.installable) + recipeJob(server.url, fixture.installable) },
    { flakeDir: flake.dir, dir: projectDir },
  );
  const cacheDir = join(project.dir, ".niks3-gitlab", "cache");
  cpSync(jobCache, cacheDir, { recursive: true, verbatimSymlinks: true });
  const variables = { CI_PROJECT_DIR: project.dir, NIKS3_TOKEN: token, CI_COMMIT_REF_PROTECTED: "true", npm_config_registry: registry.url };
  const args = [
    "--force-shell-executor",
    "--ignore-predefined-vars",
    Object.keys(variables).join(","),
    ...Object.entries(variables).flatMap(([k, v]) => ["--variable", `${k}=${v}`]),
    job,
  ];
  const start = performance.now();
  const result = await runGitlabCiLocal(project.dir, args, { ...env, ...fixture.env });
  const wallMs = performance.now() - start;
  // gitlab-ci-local exits 0 when a job that may fail with some exit codes (the component's
  // allow_failure: exit_codes) fails with another: only its PASS line says the job passed.
  if (result.exitCode !== 0 || !new RegExp(`PASS\\s+${job}\\b`).test(result.all)) throw new Error(`bench: job ${job} failed:\n${result.all}`);
  if (existsSync(cacheDir)) {
    rmSync(jobCache, { recursive: true, force: true });
    cpSync(cacheDir, jobCache, { recursive: true, verbatimSymlinks: true });
  }
  return { wallMs, dir: project.dir, output: result.all };
}

/** buildAndUpload: what is not overhead in a job, from its summary: Nix building, niks3 uploading. */
function buildAndUpload(projectDir: string): number {
  const summary = JSON.parse(readFileSync(join(projectDir, ".niks3-gitlab", "summary.json"), "utf8")) as { durations_ms?: Record<string, number> };
  const durations = summary.durations_ms ?? {};
  return (durations.build ?? 0) + (durations.upload ?? 0) + (durations.push ?? 0);
}

/**
 * jobAgainstRecipe: the build job and the recipe job on one fixture, each minus gitlab-ci-local's
 * own start-up; with `npx`, also the build job starting the helper through npx.
 */
async function jobAgainstRecipe(fixture: Fixture, runs: number, options: { npx?: boolean } = {}): Promise<{ job: number; recipe: number; floor: number; npx: number; overhead: number }> {
  const noop: number[] = [];
  const recipe: number[] = [];
  const floor: number[] = [];
  const component: number[] = [];
  const npx: number[] = [];
  const overhead: number[] = [];
  // Fill the job cache (niks3, the helper; npm's cache for npx), as an earlier pipeline would have.
  await gclJob("niks3-build", fixture);
  if (options.npx) await gclJob(NPX_JOB, fixture);
  for (let i = 0; i < runs; i++) {
    noop.push((await gclJob("noop", fixture)).wallMs);
    recipe.push((await gclJob("recipe", fixture)).wallMs);
    floor.push((await gclJob(FLOOR_JOB, fixture)).wallMs);
    if (options.npx) npx.push((await gclJob(NPX_JOB, fixture)).wallMs);
    const run = await gclJob("niks3-build", fixture);
    component.push(run.wallMs);
    overhead.push(run.wallMs - median(noop) - buildAndUpload(run.dir));
  }
  const base = median(noop);
  return { job: median(component) - base, recipe: median(recipe) - base, floor: median(floor) - base, npx: median(npx) - base, overhead: median(overhead) };
}

async function overhead(): Promise<void> {
  const tiny = await jobAgainstRecipe({ flake: makeFixtureFlake, installable: ".#default" }, RUNS, { npx: true });
  rows.push({ figure: "component overhead (job − nix build − upload)", value: ms(tiny.overhead), baseline: "—", ratio: "—", target: "≤ 1000 ms" });
  rows.push({
    figure: "build job on the 3-derivation fixture (builds take ms), gitlab-ci-local minus its own start-up",
    value: ms(tiny.job),
    baseline: `${ms(tiny.recipe)} (wiki recipe)`,
    ratio: `${(tiny.job / tiny.recipe).toFixed(2)}×`,
    target: "≤ 1× (no slower than the recipe)",
  });
  rows.push(floorRow("3-derivation fixture", tiny));
  rows.push({
    figure: "the same build job, helper installed in the job's cache (default `helper`) against started by `npx --yes` in every job",
    value: ms(tiny.job),
    baseline: `${ms(tiny.npx)} (npx)`,
    ratio: `${(tiny.job / tiny.npx).toFixed(2)}×`,
    target: "—",
  });
  // The same comparison where builds and uploads take time, as in real projects.
  const steps = 4;
  const slow = await jobAgainstRecipe(
    { flake: () => makeUploadFlake({ slowCount: steps, slowSeconds: 1 }), installable: ".#slow", env: { NIKS3_DOUBLE_UPLOAD_DELAY_MS: "1000" } },
    Math.min(RUNS, 3),
  );
  rows.push({
    figure: `build job on a ${steps}-step fixture (1 s builds, 1 s uploads), gitlab-ci-local minus its own start-up`,
    value: ms(slow.job),
    baseline: `${ms(slow.recipe)} (wiki recipe)`,
    ratio: `${(slow.job / slow.recipe).toFixed(2)}×`,
    target: "≤ 1× (no slower than the recipe)",
  });
  rows.push(floorRow(`${steps}-step fixture`, slow));
}

/** floorRow: a build and a push alone in the component's job: the least a build-then-push helper takes there. */
function floorRow(fixture: string, times: { recipe: number; floor: number }): Row {
  return {
    figure: `the build component's job doing only \`nix build\` and \`niks3 push\` (niks3 cached), ${fixture}`,
    value: ms(times.floor),
    baseline: `${ms(times.recipe)} (wiki recipe)`,
    ratio: `${(times.floor / times.recipe).toFixed(2)}×`,
    target: "— (the floor for build, then push)",
  };
}

// 4. An MR pipeline on a clean store after the default branch warmed the cache.
async function mergeRequestAfterWarmCache(): Promise<void> {
  const flake = makeFixtureFlake();
  const jobEnv = { ...env, CI_PROJECT_DIR: flake.dir, NIKS3_SERVER_URL: server.url, NIKS3_TOKEN: token, HOME: flake.dir };
  const pipeline = { GITLAB_CI: "true", CI_PROJECT_PATH: "acme/widgets", CI_DEFAULT_BRANCH: "main" };
  const warm = await execa(process.execPath, [BUNDLE, "ci"], {
    cwd: flake.dir,
    env: { ...jobEnv, ...pipeline, CI_PIPELINE_SOURCE: "push", CI_COMMIT_BRANCH: "main" },
    reject: false,
    all: true,
  });
  const summary = JSON.parse(readFileSync(join(flake.dir, ".niks3-gitlab", "summary.json"), "utf8")) as { installables: { outputs: Record<string, string> }[] };
  const outputs = summary.installables.flatMap((i) => Object.values(i.outputs));
  const closure = closureOf(outputs, env);
  deleteFromStore([...closure].reverse(), env);
  const mr = await execa(process.execPath, [BUNDLE, "ci"], {
    cwd: flake.dir,
    env: { ...jobEnv, ...pipeline, CI_PIPELINE_SOURCE: "merge_request_event", CI_MERGE_REQUEST_IID: "1", CI_MERGE_REQUEST_PROJECT_ID: "1", CI_MERGE_REQUEST_SOURCE_PROJECT_ID: "1" },
    reject: false,
    all: true,
  });
  const count = (text: string) => (text.match(/^building '/gm) ?? []).length;
  rows.push({
    figure: "derivations built by an MR on a clean store",
    value: String(count(String(mr.all))),
    baseline: `${count(String(warm.all))} (default branch, cold cache)`,
    ratio: "—",
    target: "0",
  });
}

// BENCH_FIGURES=overhead,mr (say) measures only those; all by default.
const FIGURES = {
  startup,
  install,
  overhead,
  mr: mergeRequestAfterWarmCache,
  // Slow derivations and a slow uplink: seconds per run, so fewer runs.
  upload: async () => void rows.push(await benchUpload({ runs: Math.min(RUNS, 3), steps: 4, stepSeconds: 1, uploadMs: 1000 })),
};
const chosen = process.env.BENCH_FIGURES?.split(",").filter(Boolean) ?? Object.keys(FIGURES);
try {
  for (const name of chosen) {
    const figure = FIGURES[name as keyof typeof FIGURES];
    if (!figure) throw new Error(`bench: no figure ${name}; there are ${Object.keys(FIGURES).join(", ")}`);
    await figure();
  }
} finally {
  await server.close();
  await registry.close();
}

const header = ["figure", "measured (median)", "baseline, same run", "ratio", "target"];
console.log(`\nniks3-gitlab bench: ${RUNS} runs per figure, ${new Date().toISOString().slice(0, 10)}, node ${process.version}\n`);
console.log(`| ${header.join(" | ")} |\n|${header.map(() => "---").join("|")}|`);
for (const row of rows) console.log(`| ${row.figure} | ${row.value} | ${row.baseline} | ${row.ratio} | ${row.target} |`);
