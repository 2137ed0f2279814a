// `npm run demo`: the whole build job, locally, on the example flake (test/fixtures/flake with a
// fresh salt, so every run builds something new). It pushes to a local niks3-compatible server (the
// test double) unless NIKS3_SERVER_URL names a real one (then NIKS3_TOKEN must hold a token it
// accepts, and the real niks3 is installed as in CI). Then it plays a merge request pipeline on a
// clean store, which must substitute everything and build nothing.

import { execFileSync } from "node:child_process";
import { execa } from "execa";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startFakeNiks3Server } from "../test/doubles/fake-niks3-server.ts";
import { writeNiks3Bin } from "../test/doubles/niks3-bin.ts";
import { PIPELINES } from "../test/helpers/ci-env.ts";
import { closureOf, deleteFromStore, makeFixtureFlake, nixEnv, testNixConfDir } from "../test/helpers/nix.ts";
import { BUNDLE } from "../test/helpers/repo.ts";
import { makeToken } from "../test/helpers/token.ts";

const realServer = process.env.NIKS3_SERVER_URL;
const token = realServer ? process.env.NIKS3_TOKEN : makeToken({ aud: "https://niks3.example.com" });
if (realServer && !token) {
  console.error("niks3: demo: NIKS3_SERVER_URL is set, so NIKS3_TOKEN must hold a token that server accepts");
  process.exit(2);
}

const server = realServer ? undefined : await startFakeNiks3Server({ token: token ?? "", oidcAudience: "https://niks3.example.com" });
const serverUrl = realServer ?? server?.url ?? "";
const binDir = mkdtempSync(join(tmpdir(), "niks3-demo-bin-"));
if (server) writeNiks3Bin(binDir);

// Offline-safe Nix settings for the demo's own builds (the helper adds the niks3 substituter).
const confDir = testNixConfDir();
const flake = makeFixtureFlake();
const baseEnv = { ...nixEnv(confDir), PATH: `${binDir}:${process.env.PATH}`, CI_PROJECT_DIR: flake.dir, NIKS3_SERVER_URL: serverUrl, NIKS3_TOKEN: token };

// The job runs as a child process; asynchronously, since the fake server lives in this process.
async function job(title: string, pipeline: Record<string, string>): Promise<{ installables: { outputs: Record<string, string> }[]; push: unknown }> {
  console.log(`\n=== ${title} ===\n`);
  const result = await execa(process.execPath, [BUNDLE, "ci"], {
    cwd: flake.dir,
    env: { ...baseEnv, ...pipeline, NIKS3_INSTALLABLES: ".#default .#lib" },
    extendEnv: false,
    stdio: "inherit",
    reject: false,
  });
  if (result.exitCode !== 0) console.log(`(the job exited with ${result.exitCode})`);
  return JSON.parse(readFileSync(join(flake.dir, ".niks3-gitlab", "summary.json"), "utf8"));
}

try {
  console.log(`niks3 server: ${serverUrl}${server ? " (local test double; set NIKS3_SERVER_URL for a real one)" : ""}`);
  console.log(`example flake: ${flake.dir}`);
  const first = await job("default branch pipeline: build, push, pin", PIPELINES.defaultBranch);
  const outputs = first.installables.flatMap((i) => Object.values(i.outputs));

  const env = nixEnv(confDir);
  const closure = closureOf(outputs, env);
  deleteFromStore([...closure].reverse(), env);
  console.log(`\n(deleted the ${closure.length} paths of the closure from the local store)`);
  await job("merge request pipeline on a clean store: everything is substituted", PIPELINES.mergeRequest);
  const builtAgain = closure.filter((path) => {
    try {
      execFileSync("nix-store", ["--check-validity", path], { env, stdio: "ignore" });
      return false;
    } catch {
      return true;
    }
  });

  console.log("\n=== what was pushed ===\n");
  if (server) {
    const cached = closure.filter((path) => server.storePaths().has(path));
    console.log(`cache holds ${cached.length}/${closure.length} closure paths, signed by ${server.publicKey.split(":")[0]}:`);
    for (const path of cached) console.log(`  ${path}`);
    console.log("pins:");
    for (const [name, path] of server.pins) console.log(`  ${name} -> ${path}`);
  } else {
    console.log(JSON.stringify(first.push, null, 2));
  }
  console.log(builtAgain.length === 0 ? "every path is back in the store, substituted from the cache" : `not restored: ${builtAgain.join(" ")}`);
} finally {
  await server?.close();
}
