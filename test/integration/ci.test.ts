// `niks3-gitlab ci` end to end: real Nix builds the fixture flake, the bundled helper runs as users
// run it, and the niks3 double pushes into the fake server's signed binary cache over loopback.
import { readdirSync, existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { checksumsTxt, makeReleaseFiles } from "../doubles/niks3-bin.ts";
import { assetName } from "../../src/install/platform.ts";
import { PIPELINES } from "../helpers/ci-env.ts";
import { runJob, secretLeaks, type JobRun } from "../helpers/ci-job.ts";
import { closureOf, deleteFromStore, isValidPath, makeFixtureFlake, nixEnv } from "../helpers/nix.ts";
import { lines } from "../helpers/run-helper.ts";
import { useNiks3TestBed } from "../helpers/test-bed.ts";
import { makeToken } from "../helpers/token.ts";

const bed = useNiks3TestBed();
const { token, audience: AUDIENCE } = bed;

function job(pipeline: Record<string, string>, settings: Record<string, string>, options: { flakeDir?: string; path?: string } = {}): Promise<JobRun> {
  return runJob({
    confDir: bed.confDir,
    binDir: bed.binDir,
    flakeDir: options.flakeDir ?? makeFixtureFlake().dir,
    path: options.path,
    env: bed.jobVariables(pipeline, settings),
  });
}

const outputsOf = (summary: Record<string, unknown> | undefined) =>
  ((summary?.installables ?? []) as { outputs: Record<string, string> }[]).flatMap((i) => Object.values(i.outputs));

describe("niks3-gitlab ci", () => {
  let defaultBranch: JobRun;

  it("on the default branch: builds, pushes every closure signed, pins project/branch, never shows the token", async () => {
    defaultBranch = await job(PIPELINES.defaultBranch, { NIKS3_INSTALLABLES: ".#default" });
    expect(defaultBranch.run.exitCode, defaultBranch.run.all).toBe(0);
    const outputs = outputsOf(defaultBranch.summary);
    expect(outputs).toHaveLength(1);
    const closure = closureOf(outputs, nixEnv(bed.confDir));
    expect(closure).toHaveLength(3);
    for (const path of closure) {
      expect(bed.server.storePaths().has(path), `${path} in the cache`).toBe(true);
      const narinfo = await (await fetch(`${bed.server.substituterUrl}/${path.slice(11, 43)}.narinfo`)).text();
      expect(narinfo).toMatch(/^Sig: \S+:\S+$/m);
    }
    expect(bed.server.pins.get("acme-widgets-main")).toBe(outputs[0]);
    expect(defaultBranch.summary?.push).toMatchObject({ ok: true, uploaded: 3, pinned: ["acme-widgets-main"] });
    // The build was over in well under a second, so niks3-hook was never started: what Nix built
    // went up with the pinned push of the output, whose closure holds all three paths.
    expect(defaultBranch.run.all).not.toContain("niks3-hook serve starting");
    expect(defaultBranch.run.all).toContain("what Nix built goes up with the push that follows");
    expect(defaultBranch.doubleCalls.map((call) => call.argv.filter((arg) => arg === "--pin" || arg.startsWith("/nix/store/")))).toEqual([
      ["--pin", outputs[0]],
    ]);
    // The token went to niks3 as a file path only.
    for (const call of defaultBranch.doubleCalls) expect(call.argv).toContain("--auth-token-path");
    expect(secretLeaks(defaultBranch, token)).toEqual([]);
  });

  it("in a same-project MR on a clean store: substitutes everything, builds 0 derivations", async () => {
    const outputs = outputsOf(defaultBranch.summary);
    const env = nixEnv(bed.confDir);
    const closure = closureOf(outputs, env);
    deleteFromStore([...closure].reverse(), env);
    for (const path of closure) expect(isValidPath(path, env)).toBe(false);

    const mr = await job(PIPELINES.mergeRequest, { NIKS3_INSTALLABLES: ".#default" }, { flakeDir: defaultBranch.flakeDir });
    expect(mr.run.exitCode, mr.run.all).toBe(0);
    expect(lines(mr.run.all).filter((line) => /^building '/.test(line))).toEqual([]);
    expect(mr.run.all).toContain("copying path");
    for (const path of closure) expect(isValidPath(path, env)).toBe(true);
    expect(mr.summary?.push).toMatchObject({ ok: true, uploaded: 0, cached: 3, pinned: [] });
  });

  it("in a fork MR: builds and pulls, pushes nothing, exits 0 with a one-line notice", async () => {
    const before = bed.server.requests.length;
    const fork = await job(PIPELINES.forkMergeRequest, { NIKS3_INSTALLABLES: ".#default" });
    expect(fork.run.exitCode, fork.run.all).toBe(0);
    expect(fork.doubleCalls).toEqual([]);
    expect(bed.server.requests.slice(before).filter((r) => r.path.startsWith("/api/") && r.path !== "/api/cache-config")).toEqual([]);
    const notices = lines(fork.run.stderr).filter((line) => line.includes("fork"));
    expect(notices.length).toBeGreaterThan(0);
    expect(notices.join("\n")).toMatch(/merge request from a fork: pulling from the cache only, nothing is pushed/);
    expect(fork.summary?.push).toMatchObject({ planned: false, attempted: false });
  });

  it("when one installable fails: pushes the others, reports the failure, exits 1", async () => {
    const partial = await job(PIPELINES.defaultBranch, { NIKS3_INSTALLABLES: ".#default .#broken .#dep" });
    expect(partial.run.exitCode, partial.run.all).toBe(1);
    const installables = partial.summary?.installables as { installable: string; ok: boolean; outputs: Record<string, string>; error?: string }[];
    expect(installables.map((i) => [i.installable, i.ok])).toEqual([[".#default", true], [".#broken", false], [".#dep", true]]);
    expect(installables[1]?.error).toContain("broken on purpose");
    for (const path of closureOf(outputsOf({ installables: installables.filter((i) => i.ok) }), nixEnv(bed.confDir))) {
      expect(bed.server.storePaths().has(path)).toBe(true);
    }
  });

  it("when an installable does not evaluate: still builds and pushes the others", async () => {
    const partial = await job(PIPELINES.mergeRequest, { NIKS3_INSTALLABLES: ".#nope .#lib" });
    expect(partial.run.exitCode).toBe(1);
    const installables = partial.summary?.installables as { installable: string; ok: boolean; error?: string }[];
    expect(installables.map((i) => [i.installable, i.ok])).toEqual([[".#nope", false], [".#lib", true]]);
    expect(installables[0]?.error).toContain("does not provide attribute");
  });

  it("when the server refuses the token: the build stays good, exit 3 with a hint; strict makes it 1", async () => {
    const wrong = makeToken({ aud: AUDIENCE });
    const refused = await job(PIPELINES.defaultBranch, { NIKS3_TOKEN: wrong });
    expect(refused.run.exitCode, refused.run.all).toBe(3);
    expect(refused.run.stderr).toMatch(/server returned 401/);
    expect(refused.run.stderr).toMatch(/audience.*issuer.*bound_claims/);
    expect(secretLeaks(refused, wrong)).toEqual([]);

    const strict = await job(PIPELINES.defaultBranch, { NIKS3_TOKEN: wrong, NIKS3_STRICT: "true" });
    expect(strict.run.exitCode).toBe(1);
  });

  it("when the token's audience is not the server's: explains before pushing, pushes nothing", async () => {
    const other = makeToken({ aud: "https://other.example.com" });
    const result = await job(PIPELINES.defaultBranch, { NIKS3_TOKEN: other });
    expect(result.run.exitCode).toBe(3);
    expect(result.run.stderr).toContain("the token's aud is https://other.example.com but the server expects https://niks3.example.com");
    expect(result.run.stderr).toContain("set the component input audience");
    expect(result.doubleCalls).toEqual([]);
  });

  it("when the server is unreachable: warns once, builds without the cache", async () => {
    const result = await job(PIPELINES.mergeRequest, { NIKS3_SERVER_URL: "http://127.0.0.1:9", NIKS3_PUSH: "never" });
    expect(result.run.exitCode, result.run.all).toBe(0);
    expect(lines(result.run.stderr).filter((line) => line.includes("niks3: warning:"))).toHaveLength(1);
    expect(result.run.stderr).toContain("building without the cache");
  });

  it("without niks3 on PATH: downloads the pinned release, verifies it, and the next job uses the cache", async () => {
    bed.server.serveRelease("9.9.1", makeReleaseFiles());
    const flakeDir = makeFixtureFlake().dir;
    const settings = { NIKS3_VERSION: "9.9.1", NIKS3_DOWNLOAD_URL: `${bed.server.url}/releases` };
    const cold = await job(PIPELINES.mergeRequest, settings, { flakeDir, path: process.env.PATH ?? "" });
    expect(cold.run.exitCode, cold.run.all).toBe(0);
    expect(cold.run.stderr).toMatch(/downloading niks3 9\.9\.1/);
    expect(cold.run.stderr).toMatch(/verified sha256/);
    expect(cold.summary?.push).toMatchObject({ ok: true });
    const warm = await job(PIPELINES.mergeRequest, settings, { flakeDir, path: process.env.PATH ?? "" });
    expect(warm.run.exitCode).toBe(0);
    expect(warm.run.stderr).not.toMatch(/downloading niks3/);
    expect(warm.run.stderr).toMatch(/from cache/);
  });

  it("on a checksum mismatch: one line, non-zero exit, niks3 never runs, nothing is cached", async () => {
    const asset = assetName(process.platform, process.arch);
    const files = makeReleaseFiles();
    const genuine = files[asset] ?? Buffer.alloc(0);
    // The archive served is not the one checksums.txt describes.
    const tampered = Buffer.concat([genuine, Buffer.from("tampered")]);
    bed.server.serveRelease("9.9.2", { [asset]: tampered, "checksums.txt": Buffer.from(checksumsTxt({ [asset]: genuine })) });
    const result = await job(PIPELINES.defaultBranch, { NIKS3_VERSION: "9.9.2", NIKS3_DOWNLOAD_URL: `${bed.server.url}/releases` }, { path: process.env.PATH ?? "" });
    expect(result.run.exitCode).toBe(1);
    const errors = lines(result.run.stderr).filter((line) => /sha256/.test(line) && /mismatch|does not match/i.test(line));
    expect(errors).toHaveLength(1);
    expect(result.doubleCalls).toEqual([]);
    const cacheDir = join(result.flakeDir, ".niks3-gitlab", "cache");
    const leftovers = existsSync(cacheDir) ? readdirSync(cacheDir, { recursive: true }).map(String).filter((f) => f.includes("niks3")) : [];
    expect(leftovers).toEqual([]);
  });

  it.each<{ name: string; env: Record<string, string>; input: string }>([
    { name: "server_url not a URL", env: { NIKS3_SERVER_URL: "niks3.example.com" }, input: "server_url" },
    { name: "push=maybe", env: { NIKS3_PUSH: "maybe" }, input: "push" },
    { name: "empty installables", env: { NIKS3_INSTALLABLES: "" }, input: "installables" },
  ])("bad input ($name): one line naming $input, exit 2, nothing runs", async ({ env, input }) => {
    const result = await job(PIPELINES.defaultBranch, env);
    expect(result.run.exitCode).toBe(2);
    const output = lines(result.run.all).filter(Boolean);
    expect(output).toHaveLength(1);
    expect(output[0]).toMatch(new RegExp(`^niks3: invalid ${input} \\(`));
    expect(result.doubleCalls).toEqual([]);
    expect(result.summary).toBeUndefined();
  });
});
