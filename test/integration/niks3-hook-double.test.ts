// The niks3-hook double with real Nix and the fake server: `send` always exits 0, `serve` binds its
// socket only after opening its SQLite queue, uploads what it is sent with the niks3 CLI double's
// push code, and on SIGTERM drains and exits 0 even when the drain fails (the paths stay queued).
import { execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { countQueue } from "../../src/upload/daemon.ts";
import { nixEnv as nixEnvOf } from "../helpers/nix.ts";
import { useNiks3TestBed } from "../helpers/test-bed.ts";

const bed = useNiks3TestBed();
const TOKEN = bed.token;
let work: string;
let hookBin: string;
let env: NodeJS.ProcessEnv;
let built: string;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], extra: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env: { ...env, ...extra } }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === "number" ? err.code : 1, stdout, stderr });
    });
  });
}

/** serve starts `niks3-hook serve` and resolves once its socket exists (polling, as callers must). */
async function serve(dir: string, tokenFile: string) {
  const socket = join(dir, "hook.sock");
  const db = join(dir, "queue.db");
  const child = spawn(hookBin, ["serve", "--server-url", bed.server.url, "--auth-token-path", tokenFile, "--socket", socket, "--db-path", db, "--idle-exit-timeout", "0"], { env });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  let dbWhenSocketAppeared = false;
  for (;;) {
    if (existsSync(socket) && statSync(socket).isSocket()) {
      dbWhenSocketAppeared = existsSync(db);
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 10)); // a poll for a condition, not a timing guess
  }
  return { child, socket, db, exited, dbWhenSocketAppeared, log: () => stderr };
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "niks3-hook-double-"));
  hookBin = join(bed.binDir, "niks3-hook");
  env = { ...nixEnvOf(bed.confDir), NIKS3_DOUBLE_RETRY_BASE_MS: "1" };
  const salt = randomBytes(8).toString("hex");
  const result = await run("nix-build", ["--no-out-link", "-E", `derivation { name = "hook-double-${salt}"; system = builtins.currentSystem; builder = "/bin/sh"; args = ["-c" "echo ${salt} > $out"]; }`]);
  built = result.stdout.trim();
  expect(built).toMatch(/^\/nix\/store\//);
});

describe("niks3-hook double", () => {
  it("send exits 0 and says why when no daemon listens (the paths are lost, as with niks3-hook)", async () => {
    const result = await run(hookBin, ["send", "--socket", join(work, "nobody.sock")], { OUT_PATHS: built });
    expect(result.code).toBe(0);
    expect(result.stderr).toBe(`niks3-hook send: connecting to socket ${join(work, "nobody.sock")}: dial unix ${join(work, "nobody.sock")}: connect: no such file or directory\n`);
  });

  it("serve opens its queue before the socket, uploads what send hands it, and stops on SIGTERM with exit 0", async () => {
    const dir = mkdtempSync(join(work, "ok-"));
    const tokenFile = join(dir, "token");
    writeFileSync(tokenFile, TOKEN, { mode: 0o600 });
    const daemon = await serve(dir, tokenFile);
    expect(daemon.dbWhenSocketAppeared).toBe(true);
    const sent = await run(hookBin, ["send", "--socket", daemon.socket], { OUT_PATHS: built });
    expect(sent).toMatchObject({ code: 0, stderr: "" });
    daemon.child.kill("SIGTERM");
    expect(await daemon.exited).toBe(0);
    expect(bed.server.storePaths().has(built)).toBe(true);
    expect(daemon.log()).toMatch(/level=INFO msg="niks3-hook serve starting" socket=\S+ socket-activated=false db-path=\S+ batch-size=50 idle-exit-timeout=0s/);
    expect(daemon.log()).toContain('msg="niks3-hook serve stopped"');
    expect(await countQueue(daemon.db)).toBe(0);
    expect(existsSync(daemon.socket)).toBe(false);
  });

  it("a drain that fails still exits 0, logs it, and leaves the paths in the SQLite queue", async () => {
    const dir = mkdtempSync(join(work, "refused-"));
    const tokenFile = join(dir, "token");
    writeFileSync(tokenFile, "not-the-token", { mode: 0o600 });
    const daemon = await serve(dir, tokenFile);
    await run(hookBin, ["send", "--socket", daemon.socket], { OUT_PATHS: built });
    daemon.child.kill("SIGTERM");
    expect(await daemon.exited).toBe(0);
    expect(daemon.log()).toMatch(/level=ERROR msg="Drain upload failed, paths remain in queue for next start" error=".*server returned 401: Unauthorized\\n" count=1/);
    expect(await countQueue(daemon.db)).toBe(1);
  });

  it("is as strict as Go's flag package, and --help exits 0", async () => {
    const bad = await run(hookBin, ["serve", "--nope"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("flag provided but not defined: -nope");
    expect(bad.stderr).toMatch(/ERROR Fatal error error="parsing flags: flag provided but not defined: -nope"/);
    const help = await run(hookBin, ["serve", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stderr).toContain("Usage: niks3-hook serve [flags]");
    const noUrl = await run(hookBin, ["serve", "--auth-token-path", "/x"], { NIKS3_SERVER_URL: "" });
    expect(noUrl.code).toBe(1);
    expect(noUrl.stderr).toContain("server URL is required");
  });
});
