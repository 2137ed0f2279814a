// Upload while building, end to end on real Nix (single-user, root: Nix runs a post-build-hook):
// the `ci` command, and the setup component run by gitlab-ci-local around a consumer's own job.
// The niks3 and niks3-hook doubles push into the fake server's signed cache over loopback.
//
// The fallback (store diff) is exercised with upload_mode: store-diff. This machine's store always
// allows a hook (root, writable /nix/store) and cannot be made to refuse one without a second Nix
// user and a nix-daemon, so "a store that allows no hook" is forced by the setting; the detection
// itself (root/writable store, trusted-users) is covered by the decision table in test/unit/upload.test.ts.
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runJob } from "../helpers/ci-job.ts";
import { PIPELINES } from "../helpers/ci-env.ts";
import { closureOf, nixEnv } from "../helpers/nix.ts";
import { lines } from "../helpers/run-helper.ts";
import { useNiks3TestBed } from "../helpers/test-bed.ts";
import { makeUploadFlake, runSetupJob } from "../helpers/upload.ts";

const bed = useNiks3TestBed();
const { token } = bed;

/** outPath asks Nix where an installable's output is (without building it). */
const outPath = (flakeDir: string, attr: string): string =>
  execFileSync("nix", ["eval", "--raw", `${flakeDir}#${attr}.outPath`], { env: nixEnv(bed.confDir), encoding: "utf8" }).trim();

/** newInCache runs `job` and returns the store paths the cache gained meanwhile. */
async function newInCache<T>(job: () => Promise<T>): Promise<{ result: T; added: string[] }> {
  const before = bed.server.storePaths();
  const result = await job();
  return { result, added: [...bed.server.storePaths()].filter((path) => !before.has(path)).sort() };
}

/** names drops the store hash: runs with different salts are compared by derivation name. */
const names = (paths: readonly string[]) => paths.map((path) => path.slice("/nix/store/".length + 33)).sort();
const modeLines = (log: string) => lines(log).filter((line) => /niks3: (uploading while building|uploading after the build|not uploading)/.test(line));

const ciJob = (flakeDir: string, env: Record<string, string>) =>
  runJob({ confDir: bed.confDir, binDir: bed.binDir, flakeDir, env: bed.jobVariables(PIPELINES.defaultBranch, env) });

describe("niks3-gitlab ci: upload while building", () => {
  let daemonNames: string[];

  /** untilThirdFails builds `attr` (first, second, then a third that fails): exit 1, first and second in the cache. */
  async function untilThirdFails(attr: string, message: string) {
    const flake = makeUploadFlake();
    const { result: job, added } = await newInCache(() => ciJob(flake.dir, { NIKS3_INSTALLABLES: `.#${attr}` }));
    expect(job.run.exitCode, job.run.all).toBe(1);
    expect(job.run.all).toContain(message);
    expect(added).toEqual([outPath(flake.dir, "first"), outPath(flake.dir, "second")].sort());
    return { job, added };
  }

  it("a build whose third derivation fails: the first two are in the cache, uploaded by niks3-hook as they finished", async () => {
    const { job, added } = await untilThirdFails("third", "third fails on purpose");
    // The installable failed, so no `niks3 push` ran: niks3-hook uploaded them during the build.
    expect(job.doubleCalls).toEqual([]);
    expect(modeLines(job.run.all)).toEqual([expect.stringContaining("uploading while building (niks3-hook): Nix builds in this job's own store")]);
    expect(job.run.all).toContain("uploaded while building: 2 paths, nothing left in the queue");
    expect(job.run.all).not.toContain(token);
    daemonNames = names(added);
  });

  it("a quick build whose third derivation fails: the first two go up in one push when it ends, no niks3-hook", async () => {
    const { job } = await untilThirdFails("thirdFast", "third fails on purpose, at once");
    expect(job.run.all).not.toContain("niks3-hook serve starting");
    expect(storePathCounts(job.doubleCalls)).toEqual([2]);
  });

  it("where the store allows no hook (upload_mode: store-diff): says so once, pushes the same set plus the flake's source", async () => {
    const flake = makeUploadFlake();
    const { result: job, added } = await newInCache(() => ciJob(flake.dir, { NIKS3_INSTALLABLES: ".#third", NIKS3_UPLOAD_MODE: "store-diff" }));
    expect(job.run.exitCode, job.run.all).toBe(1);
    expect(modeLines(job.run.all)).toEqual([expect.stringContaining("uploading after the build (store diff): upload_mode is store-diff")]);
    expect(added).toEqual(expect.arrayContaining([outPath(flake.dir, "first"), outPath(flake.dir, "second")]));
    // A store diff also catches what Nix copied or fetched: here the flake's own source.
    // The store is shared with other tests building at the same time: look at this flake's paths.
    expect(names(added).filter((name) => name.startsWith("upload-"))).toEqual(daemonNames);
    expect(job.doubleCalls.map((call) => call.argv[0])).toEqual(["push"]);
  });

  it("a quick build with a build-time dependency: the pinned output goes up first, then the dependency its closure lacks", async () => {
    const flake = makeUploadFlake();
    const { result: job, added } = await newInCache(() => ciJob(flake.dir, { NIKS3_INSTALLABLES: ".#withTool" }));
    expect(job.run.exitCode, job.run.all).toBe(0);
    expect(job.run.all).not.toContain("niks3-hook serve starting");
    expect(added).toEqual([outPath(flake.dir, "first"), outPath(flake.dir, "withTool")].sort());
    expect(job.doubleCalls.map((call) => call.argv.filter((arg) => arg === "--pin" || arg.startsWith("/nix/store/")))).toEqual([
      ["--pin", outPath(flake.dir, "withTool")],
      [outPath(flake.dir, "first")],
    ]);
    expect(bed.server.pins.get("acme-widgets-main")).toBe(outPath(flake.dir, "withTool"));
  });

  it("outputs already in a warm store are still pushed (the closures of the installables)", async () => {
    const flake = makeUploadFlake();
    execFileSync("nix", ["build", "--no-link", `${flake.dir}#second`], { env: nixEnv(bed.confDir) });
    const { result: job, added } = await newInCache(() => ciJob(flake.dir, { NIKS3_INSTALLABLES: ".#second" }));
    expect(job.run.exitCode, job.run.all).toBe(0);
    expect(added).toEqual([outPath(flake.dir, "first"), outPath(flake.dir, "second")].sort());
    expect(job.run.all).toContain("Nix built nothing in this job: nothing to upload while building");
  });

  /** binWithHook: the niks3 double, and a niks3-hook that runs `line` first (then the double). */
  function binWithHook(line: string): string {
    const binDir = mkdtempSync(join(tmpdir(), "niks3-faulty-hook-"));
    copyFileSync(join(bed.binDir, "niks3"), join(binDir, "niks3"));
    writeFileSync(join(binDir, "niks3-hook"), ["#!/bin/sh", line, `exec ${join(bed.binDir, "niks3-hook")} "$@"`, ""].join("\n"), { mode: 0o755 });
    return binDir;
  }
  const ciJobWith = (binDir: string, flakeDir: string, env: Record<string, string>) =>
    runJob({ confDir: bed.confDir, binDir, flakeDir, env: bed.jobVariables(PIPELINES.defaultBranch, env) });
  /** storePathCounts: how many store paths each `niks3 push` was given. */
  const storePathCounts = (calls: readonly { argv: string[] }[]) => calls.map((call) => call.argv.filter((arg) => arg.startsWith("/nix/store/")).length);

  /**
   * A chain of three 1 s steps: the first path is recorded after 1 s, when the helper starts
   * niks3-hook (the build has run for a second), and the build still has two seconds to go.
   */
  const slowFlake = () => makeUploadFlake({ slowCount: 3, slowSeconds: 1 });
  const slowClosure = (flakeDir: string) => closureOf([outPath(flakeDir, "slow")], nixEnv(bed.confDir));

  it("a build that runs long enough for niks3-hook: uploads while building, then pins the output with its own push", async () => {
    const flake = slowFlake();
    const { result: job, added } = await newInCache(() => ciJob(flake.dir, { NIKS3_INSTALLABLES: ".#slow" }));
    expect(job.run.exitCode, job.run.all).toBe(0);
    expect(job.run.all).toContain("niks3-hook serve starting");
    expect(job.run.all).toContain("uploaded while building: 3 paths, nothing left in the queue");
    expect(added).toEqual(slowClosure(flake.dir));
    // niks3-hook may fold a path into the closure of another one; a pin needs the path's own closure,
    // so the pinned output gets a push of its own (which finds everything cached).
    expect(job.doubleCalls.map((call) => call.argv.filter((arg) => arg === "--pin" || arg.startsWith("/nix/store/")))).toEqual([
      ["--pin", outPath(flake.dir, "slow")],
    ]);
    expect(bed.server.pins.get("acme-widgets-main")).toBe(outPath(flake.dir, "slow"));
  });

  it("when niks3-hook does not start: says why once, and pushes what Nix built after the build", async () => {
    const flake = slowFlake();
    const binDir = binWithHook(`[ "$1" = serve ] && { echo 'level=ERROR msg="Fatal error" error="opening queue: unable to open database file"' >&2; exit 1; }`);
    const { result: job, added } = await newInCache(() => ciJobWith(binDir, flake.dir, { NIKS3_INSTALLABLES: ".#slow" }));
    expect(job.run.exitCode, job.run.all).toBe(0);
    expect(lines(job.run.all).filter((line) => line.includes("niks3-hook did not start"))).toEqual([
      "niks3: warning: niks3-hook did not start (niks3-hook serve exited: opening queue: unable to open database file); what Nix builds is pushed after the build instead",
    ]);
    expect(added).toEqual(slowClosure(flake.dir));
    // One push of the three paths the hook recorded, then the pinned push of the output.
    expect(storePathCounts(job.doubleCalls)).toEqual([3, 1]);
    expect(job.doubleCalls.map((call) => call.argv.includes("--pin"))).toEqual([false, true]);
    expect(job.run.all).not.toContain(token);
  });

  it("when a send fails (niks3-hook send still exits 0): warns, and pushes what Nix built after the build", async () => {
    const flake = slowFlake();
    const binDir = binWithHook(`[ "$1" = send ] && { echo "niks3-hook send: sending request: broken pipe" >&2; exit 0; }`);
    const { result: job, added } = await newInCache(() => ciJobWith(binDir, flake.dir, { NIKS3_INSTALLABLES: ".#slow" }));
    expect(job.run.exitCode, job.run.all).toBe(0);
    expect(job.run.all).toContain("niks3-hook serve starting");
    expect(job.run.all).toContain(
      "niks3: warning: niks3-hook did not get every path Nix built (niks3-hook send: sending request: broken pipe); pushing the 3 paths now",
    );
    expect(added).toEqual(slowClosure(flake.dir));
    expect(storePathCounts(job.doubleCalls)).toEqual([3, 1]);
  });

  it("when uploads hang: stops within push_timeout with a heartbeat, says how many built paths were not uploaded, exit 3", async () => {
    const flake = slowFlake();
    bed.server.faults = { push: { hang: true } };
    const started = Date.now();
    const job = await ciJob(flake.dir, { NIKS3_INSTALLABLES: ".#slow", NIKS3_PUSH_TIMEOUT: "3s" });
    expect(job.run.exitCode, job.run.all).toBe(3);
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(job.run.all).toMatch(/niks3: still uploading \(\d+s\): \d+ paths? queued; giving up in \d+s/);
    expect(job.run.all).toMatch(/niks3: warning: niks3-hook did not finish uploading within 3s: 3 built paths were not uploaded/);
  });
});

describe("the setup component, extended by a consumer's own job (gitlab-ci-local)", () => {
  const defaultBranch = { ...PIPELINES.defaultBranch };
  const forkMergeRequest = { ...PIPELINES.forkMergeRequest };
  const setupJob = (flakeDir: string, script: string[], pipeline: Record<string, string>, inputs: Record<string, string> = {}) =>
    runSetupJob({ serverUrl: bed.server.url, token, script, inputs, pipeline, flakeDir, binDir: bed.binDir, nixEnv: nixEnv(bed.confDir) });

  it("a script that builds three derivations, the third failing: the job fails, the first two are in the cache", async () => {
    const flake = makeUploadFlake();
    const { result: job, added } = await newInCache(() => setupJob(flake.dir, ["nix build .#first", "nix build .#second", "nix build .#third"], defaultBranch));
    expect(job.result.exitCode, job.result.all).not.toBe(0);
    expect(job.result.all).toContain("third fails on purpose");
    expect(job.result.all).toContain("Running after script...");
    expect(added).toEqual([outPath(flake.dir, "first"), outPath(flake.dir, "second")].sort());
    expect(modeLines(job.result.all)).toHaveLength(1);
    expect(job.result.all).toContain("uploaded while building: 2 paths, nothing left in the queue");
  });

  it("everything the job's own nix build built is pushed, and the token shows nowhere", async () => {
    const flake = makeUploadFlake();
    const { result: job, added } = await newInCache(() => setupJob(flake.dir, ["nix build .#second"], defaultBranch));
    expect(job.result.exitCode, job.result.all).toBe(0);
    expect(job.result.all).toContain("PASS");
    expect(added).toEqual([outPath(flake.dir, "first"), outPath(flake.dir, "second")].sort());
    expect(job.result.all).toMatch(/niks3: pushed: 2 paths uploaded/);
    expect(job.result.all).not.toContain(token);
  });

  it("the same job in a merge request from a fork pulls only and pushes nothing", async () => {
    const flake = makeUploadFlake();
    const requestsBefore = bed.server.requests.length;
    const { result: job, added } = await newInCache(() => setupJob(flake.dir, ["nix build .#second"], forkMergeRequest));
    expect(job.result.exitCode, job.result.all).toBe(0);
    expect(added).toEqual([]);
    expect(bed.server.requests.slice(requestsBefore).filter((r) => r.path.startsWith("/api/") && r.path !== "/api/cache-config")).toEqual([]);
    expect(job.result.all).toContain("merge request from a fork: pulling from the cache only, nothing is pushed");
    expect(modeLines(job.result.all)).toEqual([expect.stringContaining("not uploading: this job only pulls")]);
  });

  it("when the executor ended niks3-hook before after_script: after_script starts it again and uploads what was queued", async () => {
    const flake = makeUploadFlake();
    // The daemon's first upload never returns, so its queue still holds both paths when the script
    // kills it (as an executor that ends background processes would); later uploads go through.
    bed.server.faults = { push: { hang: true, times: 1 } };
    const state = (field: string) => `"$(node -p 'JSON.parse(require("fs").readFileSync(".niks3-gitlab/upload-state.json", "utf8")).${field}')"`;
    // The hook's sends run in the background: once they are done, both paths are in the queue.
    const sendsDone = `while [ -n "$(ls ${state("stateDir")}/pending)" ]; do sleep 0.05; done`;
    // The kill waits until the server holds the hanging upload (the fault is used up by then).
    const go = join(mkdtempSync(join(tmpdir(), "niks3-go-")), "go");
    const uploadHangs = `while [ ! -e ${go} ]; do sleep 0.05; done`;
    const killDaemon = `kill -KILL ${state("daemon.pid")}`;
    // Not "a request without a response yet": the job's own cache-config request can be one.
    const heldBefore = bed.server.held;
    const hanging = () => bed.server.held > heldBefore;
    const { result: job, added } = await newInCache(async () => {
      // A hang the test did not plan for ends the job within 20 s, with its log, not at the test's timeout.
      const pipeline = { ...defaultBranch, NIKS3_PUSH_TIMEOUT: "20s" };
      const running = setupJob(flake.dir, ["nix build .#second", sendsDone, uploadHangs, killDaemon], pipeline);
      try {
        await expect.poll(hanging, { timeout: 60_000 }).toBe(true);
      } finally {
        writeFileSync(go, ""); // never leave the job waiting
      }
      return running;
    });
    expect(job.result.exitCode, job.result.all).toBe(0);
    expect(job.result.all).toContain("niks3: warning: niks3-hook was no longer running; starting it again to upload the 2 queued paths");
    expect(job.result.all).toMatch(/msg="Resuming with pending paths from previous run" pending=2/);
    expect(job.result.all).toContain("uploaded while building: 2 paths, nothing left in the queue");
    expect(added).toEqual([outPath(flake.dir, "first"), outPath(flake.dir, "second")].sort());
  });

  it("with upload_mode: store-diff: says so once and pushes the same set (plus the flake's source) from after_script", async () => {
    const flake = makeUploadFlake();
    const { result: job, added } = await newInCache(() => setupJob(flake.dir, ["nix build .#second"], defaultBranch, { upload_mode: "store-diff" }));
    expect(job.result.exitCode, job.result.all).toBe(0);
    expect(modeLines(job.result.all)).toEqual([expect.stringContaining("uploading after the build (store diff): upload_mode is store-diff")]);
    expect(names(added).filter((name) => name.startsWith("upload-"))).toEqual(["upload-first", "upload-second"]);
    expect(added).toEqual(expect.arrayContaining([outPath(flake.dir, "first"), outPath(flake.dir, "second")]));
  });
});
