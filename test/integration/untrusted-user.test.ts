// A job run as a user the Nix daemon does not trust, and with no entry in /etc/passwd: a shell
// runner on a multi-user Nix install, or a container started with a bare `--user 1000`. A real
// nix-daemon (root, on a socket of its own, the machine's store) builds for the job. The helper must
// see that the daemon would ignore a post-build-hook, upload the store diff instead, and name the
// user as the daemon does: by its uid.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { chmodSync, copyFileSync, cpSync, existsSync, linkSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writePortableNiks3Bin } from "../doubles/niks3-bin.ts";
import { PIPELINES } from "../helpers/ci-env.ts";
import { closureOf, makeFixtureFlake, nixEnv } from "../helpers/nix.ts";
import { BUNDLE } from "../helpers/repo.ts";
import { useNiks3TestBed } from "../helpers/test-bed.ts";

const bed = useNiks3TestBed();

/** A uid no passwd entry names. */
function uidWithoutPasswdEntry(): number {
  for (let uid = 54321; ; uid++) {
    try {
      execFileSync("getent", ["passwd", String(uid)], { stdio: "ignore" });
    } catch {
      return uid;
    }
  }
}

/** The files the other user runs, in a directory it can reach (this checkout may sit below a private one). */
interface Shared {
  node: string;
  bundle: string;
  binDir: string;
  confDir: string;
  socket: string;
}

let shared: Shared;
let daemon: ChildProcess;
const uid = uidWithoutPasswdEntry();

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), "niks3-untrusted-"));
  chmodSync(dir, 0o755);
  const node = join(dir, "node");
  try {
    linkSync(process.execPath, node);
  } catch {
    copyFileSync(process.execPath, node);
    chmodSync(node, 0o755);
  }
  cpSync(dirname(BUNDLE), join(dir, "dist"), { recursive: true });
  const binDir = join(dir, "bin");
  mkdirSync(binDir);
  writePortableNiks3Bin(binDir, node);
  const confDir = join(dir, "conf");
  mkdirSync(confDir);
  writeFileSync(join(confDir, "nix.conf"), readFileSync(join(bed.confDir, "nix.conf")));
  const socket = join(dir, "daemon.sock");
  shared = { node, bundle: join(dir, "dist", basename(BUNDLE)), binDir, confDir, socket };
  // trusted-users is Nix's default: root only.
  daemon = spawn("nix-daemon", [], { env: { ...nixEnv(confDir), NIX_DAEMON_SOCKET_PATH: socket }, stdio: "ignore" });
  const deadline = Date.now() + 10_000;
  while (!existsSync(socket)) {
    if (Date.now() > deadline || daemon.exitCode !== null) throw new Error("nix-daemon did not start listening");
    await sleep(10);
  }
});
afterAll(() => {
  daemon?.kill();
});

describe("a job as a user the Nix daemon does not trust, with no passwd entry", () => {
  it("uploads the store diff after the build, naming the user by its uid as the daemon does", async () => {
    const flake = makeFixtureFlake();
    chmodSync(flake.dir, 0o777);
    const home = mkdtempSync(join(tmpdir(), "niks3-untrusted-home-"));
    chmodSync(home, 0o777);
    const env = {
      PATH: `${shared.binDir}:/usr/bin:/bin`,
      HOME: home,
      NIX_CONF_DIR: shared.confDir,
      NIX_USER_CONF_FILES: join(shared.confDir, "no-user.conf"),
      NIX_REMOTE: `unix://${shared.socket}`,
      ...bed.jobVariables(PIPELINES.defaultBranch),
      CI_PROJECT_DIR: flake.dir,
    };
    const run = await execa("setpriv", [`--reuid=${uid}`, `--regid=${uid}`, "--clear-groups", shared.node, shared.bundle, "ci"], {
      cwd: flake.dir,
      env,
      extendEnv: false,
      reject: false,
      all: true,
      stdin: "ignore",
    });

    expect(run.exitCode, run.all).toBe(0);
    expect(run.all).toContain(
      `niks3: uploading after the build (store diff): the Nix daemon builds and ${uid} is not in its trusted-users, so it would ignore a post-build-hook`,
    );
    const summary = JSON.parse(readFileSync(join(flake.dir, ".niks3-gitlab", "summary.json"), "utf8")) as { installables: { outputs: Record<string, string> }[] };
    const outputs = summary.installables.flatMap((installable) => Object.values(installable.outputs));
    const closure = closureOf(outputs, nixEnv(bed.confDir));
    expect(closure).toHaveLength(3);
    for (const path of closure) expect(bed.server.storePaths().has(path), path).toBe(true);
    expect(run.all).not.toContain(bed.token);
  });
});
