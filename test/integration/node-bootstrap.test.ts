// The components on an image without Node.js 22 (the default, nixos/nix), run by gitlab-ci-local:
// each job fetches Node through Nix (`nix shell nixpkgs#nodejs_22`) and runs the helper with it.
// Offline, `nixpkgs` is a local flake, named in a flake registry of the test's own, whose nodejs_22
// wraps this process's Node.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { COMPONENT_PROJECT, makeConsumerProject, runPipeline } from "../helpers/gitlab-ci-local.ts";
import { closureOf, makeFixtureFlake, nixEnv } from "../helpers/nix.ts";
import { BUNDLE } from "../helpers/repo.ts";
import { useNiks3TestBed } from "../helpers/test-bed.ts";

const bed = useNiks3TestBed();

/** A nixpkgs whose nodejs_22 is this process's Node; returns a NIX_CONF_DIR whose registry names it. */
function fakeNixpkgs(): string {
  const nixpkgs = mkdtempSync(join(tmpdir(), "niks3-fake-nixpkgs-"));
  writeFileSync(
    join(nixpkgs, "flake.nix"),
    `{
  outputs = { self }:
    let
      nodejs = system: derivation {
        name = "nodejs-22-fake";
        inherit system;
        builder = "/bin/sh";
        args = [ "-c" "mkdir -p $out/bin && ln -s ${process.execPath} $out/bin/node" ];
        PATH = "/usr/bin:/bin";
      };
    in {
      legacyPackages.x86_64-linux.nodejs_22 = nodejs "x86_64-linux";
      legacyPackages.aarch64-linux.nodejs_22 = nodejs "aarch64-linux";
    };
}
`,
  );
  const confDir = mkdtempSync(join(tmpdir(), "niks3-bootstrap-conf-"));
  const registry = { version: 2, flakes: [{ from: { type: "indirect", id: "nixpkgs" }, to: { type: "path", path: nixpkgs } }] };
  writeFileSync(join(confDir, "registry.json"), JSON.stringify(registry));
  writeFileSync(join(confDir, "nix.conf"), `${readFileSync(join(bed.confDir, "nix.conf"), "utf8")}flake-registry = ${join(confDir, "registry.json")}\n`);
  return confDir;
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
const components = [
  { component: "build", job: "niks3-build", yaml: () => [...include("build"), ""].join("\n") },
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
    // The setup job's after_script bootstraps Node again, in a shell of its own, to upload.
    if (component === "setup") expect(result.all).toContain("niks3: uploaded while building: 3 paths");
    if (component !== "build") return;
    // The build job, all the way: its outputs are in the cache.
    const summaryPath = join(project.dir, ".niks3-gitlab", "summary.json");
    expect(existsSync(summaryPath), result.all).toBe(true);
    const summary = JSON.parse(readFileSync(summaryPath, "utf8")) as { installables: { outputs: Record<string, string> }[] };
    const outputs = summary.installables.flatMap((installable) => Object.values(installable.outputs));
    for (const path of closureOf(outputs, nixEnv(bed.confDir))) expect(bed.server.storePaths().has(path), path).toBe(true);
  });
});
