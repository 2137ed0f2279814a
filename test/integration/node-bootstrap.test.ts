// The components on an image without Node.js 22 (the default, nixos/nix), run by gitlab-ci-local:
// a job fetches Node through Nix (`nix build nixpkgs#nodejs_22`), runs the helper with it, and
// leaves its store path in the job's cache for later jobs. Offline, `nixpkgs` is a local flake,
// named in a flake registry of the test's own, whose nodejs_22 wraps this process's Node (and npm,
// as nixpkgs' has it).
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { COMPONENT_PROJECT, makeConsumerProject, runPipeline } from "../helpers/gitlab-ci-local.ts";
import { closureOf, makeFixtureFlake, nixEnv } from "../helpers/nix.ts";
import { startPackageRegistry } from "../helpers/npm-registry.ts";
import { BUNDLE } from "../helpers/repo.ts";
import { useNiks3TestBed } from "../helpers/test-bed.ts";

const bed = useNiks3TestBed();

/** A NIX_CONF_DIR of the test's own whose flake registry names `nixpkgs` as the flake at `path`. */
function confNaming(path: string): string {
  const confDir = mkdtempSync(join(tmpdir(), "niks3-bootstrap-conf-"));
  const registry = { version: 2, flakes: [{ from: { type: "indirect", id: "nixpkgs" }, to: { type: "path", path } }] };
  writeFileSync(join(confDir, "registry.json"), JSON.stringify(registry));
  writeFileSync(join(confDir, "nix.conf"), `${readFileSync(join(bed.confDir, "nix.conf"), "utf8")}flake-registry = ${join(confDir, "registry.json")}\n`);
  return confDir;
}

/** A nixpkgs whose nodejs_22 is this process's Node; returns a NIX_CONF_DIR whose registry names it. */
function fakeNixpkgs(): string {
  const nixpkgs = mkdtempSync(join(tmpdir(), "niks3-fake-nixpkgs-"));
  const npm = realpathSync(execFileSync("sh", ["-c", "command -v npm"], { encoding: "utf8" }).trim());
  writeFileSync(
    join(nixpkgs, "flake.nix"),
    `{
  outputs = { self }:
    let
      nodejs = system: derivation {
        name = "nodejs-22-fake";
        inherit system;
        builder = "/bin/sh";
        args = [ "-c" "mkdir -p $out/bin && ln -s ${process.execPath} $out/bin/node && ln -s ${npm} $out/bin/npm" ];
        PATH = "/usr/bin:/bin";
      };
    in {
      legacyPackages.x86_64-linux.nodejs_22 = nodejs "x86_64-linux";
      legacyPackages.aarch64-linux.nodejs_22 = nodejs "aarch64-linux";
    };
}
`,
  );
  return confNaming(nixpkgs);
}

let confDir: string;
beforeAll(() => {
  confDir = fakeNixpkgs();
});

const include = (component: string) => [
  "include:",
  `  - component: $CI_SERVER_FQDN/${COMPONENT_PROJECT}/${component}@$CI_COMMIT_SHA`,
  "    inputs:",
  `      server_url: ${bed.server.url}`,
  // `node` as the image would have it: whichever is first on PATH.
  `      helper: node ${BUNDLE}`,
];
const buildYaml = () => [...include("build"), ""].join("\n");
const components = [
  { component: "build", job: "niks3-build", yaml: buildYaml },
  // The fixture flake has a package that fails on purpose; warm would report it.
  { component: "warm", job: "niks3-warm", yaml: () => [...include("warm"), "      exclude: packages.broken", ""].join("\n") },
  {
    component: "setup",
    job: "nix-job",
    yaml: () => [...include("setup"), "nix-job:", "  extends: .niks3", "  script:", "    - nix build .#default", ""].join("\n"),
  },
];

describe("the components on an image without Node.js 22", () => {
  it.each(components)("$component: fetches Node through Nix, then runs the helper with it", async ({ component, job, yaml }) => {
    const flake = makeFixtureFlake();
    const project = makeConsumerProject({ ".gitlab-ci.yml": yaml() }, { flakeDir: flake.dir });
    // No Node 22 on PATH: at most the system's older one.
    const env = { ...nixEnv(confDir), PATH: `${bed.binDir}:/usr/local/bin:/usr/bin:/bin` };
    const variables = { CI_SERVER_URL: "https://gitlab.example.com", NIKS3_TOKEN: bed.token, CI_COMMIT_REF_PROTECTED: "true" };
    const result = await runPipeline(project, { variables, jobs: [job] }, env);

    expect(result.all).toMatch(new RegExp(`PASS\\s+${job}`));
    expect(result.all).toContain("niks3: no Node.js >= 22 in the image; bootstrapping it through Nix");
    expect(result.all).toContain("niks3: pipeline: default branch");
    if (component === "setup") {
      // The after_script, a shell of its own, runs the Node the before_script fetched, to upload.
      expect(result.all.match(/bootstrapping it through Nix/g), result.all).toHaveLength(1);
      expect(result.all).toMatch(/niks3: no Node\.js >= 22 in the image; using \/nix\/store\/\S+-nodejs-22-fake from Nix/);
      expect(result.all).toContain("niks3: uploaded while building: 3 paths");
    }
    if (component !== "build") return;
    // The build job, all the way: its outputs are in the cache.
    const summaryPath = join(project.dir, ".niks3-gitlab", "summary.json");
    expect(existsSync(summaryPath), result.all).toBe(true);
    const summary = JSON.parse(readFileSync(summaryPath, "utf8")) as { installables: { outputs: Record<string, string> }[] };
    const outputs = summary.installables.flatMap((installable) => Object.values(installable.outputs));
    for (const path of closureOf(outputs, nixEnv(bed.confDir))) expect(bed.server.storePaths().has(path), path).toBe(true);
  });
});

describe("the Node.js that the job's cache names", () => {
  const variables = { CI_SERVER_URL: "https://gitlab.example.com", NIKS3_TOKEN: bed.token, CI_COMMIT_REF_PROTECTED: "true" };
  const envWith = (nixConfDir: string) => ({ ...nixEnv(nixConfDir), PATH: `${bed.binDir}:/usr/local/bin:/usr/bin:/bin` });
  const buildJob = () => {
    const flake = makeFixtureFlake();
    return makeConsumerProject({ ".gitlab-ci.yml": buildYaml() }, { flakeDir: flake.dir });
  };
  const cacheDir = (projectDir: string) => join(projectDir, ".niks3-gitlab", "cache");
  const nodeFiles = (projectDir: string) => readdirSync(cacheDir(projectDir)).filter((name) => name.startsWith("nodejs_22"));
  const thisWeeksFile = () => `nodejs_22-${execFileSync("uname", ["-m"], { encoding: "utf8" }).trim()}-${execFileSync("date", ["+%G-%V"], { encoding: "utf8" }).trim()}`;

  it("a later job runs it without fetching or evaluating nixpkgs", async () => {
    const project = buildJob();
    const first = await runPipeline(project, { variables, jobs: ["niks3-build"] }, envWith(confDir));
    expect(first.all).toMatch(/PASS\s+niks3-build/);
    expect(nodeFiles(project.dir)).toEqual([thisWeeksFile()]);
    const node = readFileSync(join(cacheDir(project.dir), thisWeeksFile()), "utf8").trim();
    expect(node).toMatch(/^\/nix\/store\/[a-z0-9]{32}-nodejs-22-fake$/);

    // nixpkgs is gone: only the path the cache names can give the job its Node.
    const noNixpkgs = confNaming(join(tmpdir(), "niks3-no-such-nixpkgs"));
    const later = await runPipeline(project, { variables, jobs: ["niks3-build"] }, envWith(noNixpkgs));
    expect(later.all).toMatch(/PASS\s+niks3-build/);
    expect(later.all).toContain(`niks3: no Node.js >= 22 in the image; using ${node} from Nix, as the job's cache names it`);
    expect(later.all).not.toContain("bootstrapping it through Nix");
    expect(later.all).toContain("niks3: pipeline: default branch");
  });

  it("one that cannot be realised any more, or that an earlier week named, is fetched again", async () => {
    const project = buildJob();
    mkdirSync(cacheDir(project.dir), { recursive: true });
    const gone = "/nix/store/00000000000000000000000000000000-nodejs-22-gone";
    writeFileSync(join(cacheDir(project.dir), thisWeeksFile()), `${gone}\n`);
    writeFileSync(join(cacheDir(project.dir), "nodejs_22-x86_64-2000-01"), `${gone}\n`);
    const result = await runPipeline(project, { variables, jobs: ["niks3-build"] }, envWith(confDir));

    expect(result.all).toMatch(/PASS\s+niks3-build/);
    expect(result.all).toContain("bootstrapping it through Nix");
    // This week's file names the Node just fetched; no other week's file, and no out-link, is left.
    expect(nodeFiles(project.dir)).toEqual([thisWeeksFile()]);
    expect(readFileSync(join(cacheDir(project.dir), thisWeeksFile()), "utf8")).toMatch(/^\/nix\/store\/[a-z0-9]{32}-nodejs-22-fake\n$/);
  });
});

describe("the default helper on an image without Node.js 22", () => {
  it("the first job installs it with the Node and npm from Nix; the next one starts it with that Node, without npm", async () => {
    const registry = await startPackageRegistry();
    try {
      const flake = makeFixtureFlake();
      const project = makeConsumerProject({ ".gitlab-ci.yml": [...include("build").filter((line) => !line.includes("helper:")), ""].join("\n") }, { flakeDir: flake.dir });
      // The system's Node, if any, is older than 22: the helper fails on it.
      const env = { ...nixEnv(confDir), PATH: `${bed.binDir}:/usr/local/bin:/usr/bin:/bin` };
      const variables = { CI_SERVER_URL: "https://gitlab.example.com", NIKS3_TOKEN: bed.token, CI_COMMIT_REF_PROTECTED: "true", npm_config_registry: registry.url };

      const first = await runPipeline(project, { variables, jobs: ["niks3-build"] }, env);
      expect(first.all).toMatch(/PASS\s+niks3-build/);
      expect(first.all).toContain("bootstrapping it through Nix");
      expect(first.all).toContain("niks3: installing niks3-gitlab@");
      expect(first.all).toContain("niks3: pipeline: default branch");
      expect(registry.tarballDownloads).toBe(1);

      const requests = registry.requests;
      const later = await runPipeline(project, { variables, jobs: ["niks3-build"] }, env);
      expect(later.all).toMatch(/PASS\s+niks3-build/);
      expect(later.all).toContain("from Nix, as the job's cache names it");
      expect(later.all).not.toContain("niks3: installing");
      expect(later.all).toContain("niks3: pipeline: default branch");
      expect(registry.requests).toBe(requests);
    } finally {
      await registry.close();
    }
  });
});
