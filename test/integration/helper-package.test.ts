// The `helper` input at its default, `npx --yes niks3-gitlab@<version>`, run for real: `npm pack`
// makes the package as it would be published, a registry on loopback serves it, and gitlab-ci-local
// runs each component twice in one project, each time with a fresh HOME (so npm's default cache is
// new each time). The first job downloads the helper; the second finds it in npm's cache, which the
// job keeps in the job's cache, and downloads nothing. V8's compile cache of the helper is kept there too.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { COMPONENT_PROJECT, makeConsumerProject, runPipeline } from "../helpers/gitlab-ci-local.ts";
import { makeFixtureFlake } from "../helpers/nix.ts";
import { REPO_ROOT } from "../helpers/repo.ts";
import { useNiks3TestBed } from "../helpers/test-bed.ts";

const bed = useNiks3TestBed();
const pkg = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { name: string; version: string; bin: Record<string, string>; engines: Record<string, string> };

/** A registry with one package at one version; it counts the tarball downloads. */
interface Registry {
  url: string;
  tarballDownloads: number;
}

let server: Server;
const registry: Registry = { url: "", tarballDownloads: 0 };

beforeAll(async () => {
  const packDir = mkdtempSync(join(tmpdir(), "niks3-pack-"));
  const file = execFileSync("npm", ["pack", "--silent", "--pack-destination", packDir], { cwd: REPO_ROOT, encoding: "utf8" }).trim().split("\n").at(-1) ?? "";
  const tarball = readFileSync(join(packDir, file));
  const tarballPath = `/${pkg.name}/-/${pkg.name}-${pkg.version}.tgz`;
  server = createServer((req, res) => {
    if (req.url === `/${pkg.name}`) {
      const dist = {
        tarball: `${registry.url}${tarballPath}`,
        integrity: `sha512-${createHash("sha512").update(tarball).digest("base64")}`,
        shasum: createHash("sha1").update(tarball).digest("hex"),
      };
      const version = { name: pkg.name, version: pkg.version, bin: pkg.bin, engines: pkg.engines, dist };
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ name: pkg.name, "dist-tags": { latest: pkg.version }, versions: { [pkg.version]: version } }));
    } else if (req.url === tarballPath) {
      registry.tarballDownloads++;
      res.end(tarball);
    } else {
      res.statusCode = 404;
      res.end("{}");
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  registry.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

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

describe("the helper as published, through npx", () => {
  it.each(components)("$component: the first job downloads it from the registry; the next one runs it from the job's cache", async ({ job, yaml }) => {
    const project = makeConsumerProject({ ".gitlab-ci.yml": yaml() }, { flakeDir: makeFixtureFlake().dir });
    const variables = { CI_SERVER_URL: "https://gitlab.example.com", NIKS3_TOKEN: bed.token, CI_COMMIT_REF_PROTECTED: "true", npm_config_registry: registry.url };
    // `npm test` exports its own npm_* settings (the local project among them): a job has none.
    const env = Object.fromEntries(Object.entries(bed.env()).filter(([name]) => !/^npm_/i.test(name)));
    const run = () => runPipeline(project, { variables, jobs: [job] }, { ...env, HOME: mkdtempSync(join(tmpdir(), "niks3-home-")) });
    const downloadsBefore = registry.tarballDownloads;

    const first = await run();
    expect(first.exitCode, first.all).toBe(0);
    expect(first.all).toMatch(new RegExp(`PASS\\s+${job}`));
    expect(first.all).toContain("niks3: pipeline: default branch");
    expect(registry.tarballDownloads - downloadsBefore).toBe(1);
    // V8's compile of the helper is kept there too (gitlab-ci-local, unlike GitLab, sets GITLAB_CI=false).
    expect(readdirSync(join(project.dir, ".niks3-gitlab", "cache", "node-compile-cache"), { recursive: true }).length).toBeGreaterThan(1);

    const second = await run();
    expect(second.exitCode, second.all).toBe(0);
    expect(second.all).toMatch(new RegExp(`PASS\\s+${job}`));
    expect(registry.tarballDownloads - downloadsBefore).toBe(1);
  });
});
