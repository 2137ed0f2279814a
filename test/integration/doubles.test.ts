// The niks3 doubles with real Nix: the CLI double pushes a fixture closure into the fake server,
// Nix substitutes it back from the fake server's signed cache, and the CLI is as strict as niks3.
import { execFile, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeNiks3Server, type FakeNiks3Server } from "../doubles/fake-niks3-server.ts";
import { NIKS3_CLI } from "../doubles/niks3-bin.ts";

const FIXTURE = new URL("../fixtures/flake/flake.nix", import.meta.url);
const TOKEN = `tok-${randomBytes(12).toString("hex")}`;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

let server: FakeNiks3Server;
let work: string;
let nixEnv: NodeJS.ProcessEnv;
let flakeDir: string;
let tokenFile: string;
let app: string;
let closure: string[];

/** run runs a command asynchronously: the fake server lives in this process and must keep serving. */
function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === "number" ? err.code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

/** cliEnv is a clean environment: no NIKS3_* from outside, an empty XDG config dir. */
function cliEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const clean = Object.fromEntries(Object.entries(nixEnv).filter(([k]) => !k.startsWith("NIKS3_")));
  const home = mkdtempSync(join(work, "home-"));
  return { ...clean, HOME: home, XDG_CONFIG_HOME: join(home, ".config"), NIKS3_DOUBLE_RETRY_BASE_MS: "1", ...extra };
}

function niks3(args: string[], extra: NodeJS.ProcessEnv = {}): Promise<Run> {
  return run(process.execPath, [NIKS3_CLI, ...args], cliEnv(extra));
}

const auth = (): string[] => ["--server-url", server.url, "--auth-token-path", tokenFile];

function buildDefault(extra: string[] = []): Promise<Run> {
  return run("nix", ["build", "--json", "--no-link", ...extra, `path:${flakeDir}#default`], nixEnv);
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "niks3-doubles-"));
  const confDir = join(work, "nixconf");
  mkdirSync(confDir);
  writeFileSync(join(confDir, "nix.conf"), "substituters =\nsandbox = false\nexperimental-features = nix-command flakes\n");
  nixEnv = { ...process.env, NIX_CONF_DIR: confDir, NIX_USER_CONF_FILES: join(confDir, "none.conf") };
  flakeDir = join(work, "flake");
  mkdirSync(flakeDir);
  writeFileSync(join(flakeDir, "flake.nix"), readFileSync(FIXTURE, "utf8").replace("@SALT@", randomBytes(8).toString("hex")));
  tokenFile = join(work, "token");
  writeFileSync(tokenFile, TOKEN + "\n", { mode: 0o600 });
  server = await startFakeNiks3Server({ token: TOKEN });
  const built = await buildDefault();
  expect(built.code, built.stderr).toBe(0);
  app = (JSON.parse(built.stdout) as { outputs: { out: string } }[])[0]?.outputs.out ?? "";
  closure = execFileSync("nix-store", ["-qR", app], { env: nixEnv, encoding: "utf8" }).split("\n").filter(Boolean).sort();
});

afterAll(async () => {
  await server?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("niks3 double pushing into the fake server", () => {
  it("pushes the fixture's whole closure, logging like niks3 and printing nothing on stdout", async () => {
    expect(closure).toHaveLength(3);
    const r = await niks3(["push", ...auth(), app]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^time=\S+ level=INFO msg="Uploading 3 paths to 127\.0\.0\.1 \(0 already cached\)"$/m);
    expect(r.stderr).toMatch(/level=INFO msg="Uploading \w{32}-fixture-dep \(\d+B\)"/);
    expect(r.stderr).toMatch(/level=INFO msg="Uploading 3 narinfos"/);
    expect(r.stderr).toMatch(/level=INFO msg="Upload complete\. \(\d+(\.\d+)?m?s\)"$/m);
    expect(r.stderr).not.toContain(TOKEN);
    expect([...server.storePaths()].sort()).toEqual(closure);
    expect(server.pushes).toBe(1);
  });

  it("reports a fully cached closure on the second push", async () => {
    const r = await niks3(["push", ...auth(), app]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('msg="Uploading 0 paths to 127.0.0.1 (3 already cached)"');
    expect(r.stderr).not.toContain("narinfos");
  });

  it("lets real Nix substitute the closure from the cache instead of building it", async () => {
    execFileSync("nix", ["store", "delete", ...closure], { env: nixEnv, stdio: "pipe" });
    const r = await buildDefault(["--option", "substituters", server.substituterUrl, "--option", "trusted-public-keys", server.publicKey]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr.match(/copying path '[^']+' from 'http:\/\/127\.0\.0\.1:\d+\/cache'/g)).toHaveLength(3);
    expect(r.stderr).not.toMatch(/building/);
  });

  it("is refused by Nix under a key it does not trust (the signatures are real)", async () => {
    execFileSync("nix", ["store", "delete", ...closure], { env: nixEnv, stdio: "pipe" });
    const otherKey = "other-1:" + Buffer.alloc(32, 7).toString("base64");
    const r = await buildDefault(["--option", "substituters", server.substituterUrl, "--option", "trusted-public-keys", otherKey]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/copying path/);
    expect(r.stderr).toMatch(/building '.*fixture-app\.drv'/);
  });

  it("pins a pushed path with push --pin", async () => {
    const r = await niks3(["push", ...auth(), "--pin", "fixture.main", app]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`level=INFO msg="Created pin" name=fixture\\.main store_path=${app}$`, "m"));
    expect(server.pins.get("fixture.main")).toBe(app);
    const listed = await niks3(["pins", "list", "--names-only", ...auth()]);
    expect(listed.stdout).toBe("fixture.main\n");
  });

  it("retries a 503 from the server like niks3 and then succeeds", async () => {
    server.faults.push = { status: 503, times: 2 };
    const r = await niks3(["push", ...auth(), app]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr.match(/level=WARN msg="Request returned retryable status, retrying" attempt=\d max_attempts=6 .* status=503/g)).toHaveLength(2);
  });

  it("pushes two top-level paths as two closures", async () => {
    const lib = closure.find((p) => p.endsWith("-fixture-lib")) ?? "";
    const before = server.pushes;
    const r = await niks3(["push", ...auth(), app, lib]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('msg="Uploading 0 paths to 127.0.0.1 (3 already cached)"');
    expect(server.pushes).toBe(before + 2);
  });

  it("prints push help on stderr and exits 0 for --help", async () => {
    const r = await niks3(["push", "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^Usage: niks3 push \[flags\] <store-paths\.\.\.>\n/);
  });

  it("hangs with a hung server (no client timeout) until SIGTERM, then exits 1 with context canceled", async () => {
    server.faults.push = { hang: true, times: 1 };
    const child = execFile(process.execPath, [NIKS3_CLI, "push", ...auth(), app], { env: cliEnv() });
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    const deadline = Date.now() + 10_000;
    while (server.requests.at(-1)?.path !== "/api/pending_closures" || server.requests.at(-1)?.status !== 0) {
      if (Date.now() > deadline) throw new Error("the push never reached the server");
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, 200));
    expect(child.exitCode).toBeNull();
    child.kill("SIGTERM");
    expect(await exited).toBe(1);
    expect(stderr).toMatch(/error="pushing paths: creating pending closures: creating pending closure: sending request: Post \\"http:\/\/127\.0\.0\.1:\d+\/api\/pending_closures\\": context canceled"/);
  });

  it("records argv and token source in NIKS3_DOUBLE_LOG without the token", async () => {
    const log = join(work, "calls.jsonl");
    const script = `sh -c 'printf "{\\"token\\":\\"%s\\"}" "$(cat ${tokenFile})"'`;
    const viaScript = await niks3(["push", "--server-url", server.url, "--auth-token-script", script, "--auth-token-path", "/nonexistent", app], { NIKS3_DOUBLE_LOG: log });
    expect(viaScript.code, viaScript.stderr).toBe(0);
    const viaFlag = await niks3(["push", "--server-url", server.url, "--auth-token", TOKEN, app], { NIKS3_DOUBLE_LOG: log });
    expect(viaFlag.stderr).toContain('level=WARN msg="--auth-token is deprecated');
    const viaEnv = await niks3(["push", app], { NIKS3_DOUBLE_LOG: log, NIKS3_SERVER_URL: server.url, NIKS3_AUTH_TOKEN_FILE: tokenFile });
    expect(viaEnv.code, viaEnv.stderr).toBe(0);
    const text = readFileSync(log, "utf8");
    expect(text).not.toContain(TOKEN);
    const calls = text.trim().split("\n").map((l) => JSON.parse(l) as { argv: string[]; tokenSource: string; exitCode: number });
    expect(calls.map((c) => [c.tokenSource, c.exitCode])).toEqual([["script", 0], ["flag", 0], ["env-file", 0]]);
    expect(calls[1]?.argv).toEqual(["push", "--server-url", server.url, "--auth-token", "[redacted]", app]);
  });
});

interface StrictCase {
  name: string;
  args: () => string[];
  env?: () => NodeJS.ProcessEnv;
  stderr: RegExp;
}

const strictCases: StrictCase[] = [
  {
    name: "unknown flag",
    args: () => ["push", "--frobnicate", ...auth(), app],
    stderr: /^flag provided but not defined: -frobnicate\n\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d ERROR Fatal error error="parsing flags: flag provided but not defined: -frobnicate"\n$/,
  },
  {
    name: "a flag after a path is a path (--pin treated as a store path)",
    args: () => ["push", ...auth(), app, "--pin", "late"],
    stderr: /level=ERROR msg="Fatal error" error="pushing paths: resolving symlinks: path does not exist: --pin: readlink --pin: no such file or directory"/,
  },
  {
    name: "--pin with two paths",
    args: () => ["push", ...auth(), "--pin", "two", app, closure[0] ?? ""],
    stderr: /level=ERROR msg="Fatal error" error="--pin requires exactly one store path"/,
  },
  {
    name: "no server URL",
    args: () => ["push", "--auth-token-path", tokenFile, app],
    stderr: /level=ERROR msg="Fatal error" error="server URL is required \(use --server-url or NIKS3_SERVER_URL env var\)"/,
  },
  {
    name: "no token anywhere",
    args: () => ["push", "--server-url", server.url, app],
    stderr: /level=ERROR msg="Fatal error" error="auth token is required \(use --auth-token-path, --auth-token-script, NIKS3_AUTH_TOKEN_FILE, or \$XDG_CONFIG_HOME\/niks3\/auth-token\)"/,
  },
  {
    name: "empty token file",
    args: () => {
      const empty = join(work, "empty-token");
      writeFileSync(empty, " \n");
      return ["push", "--server-url", server.url, "--auth-token-path", empty, app];
    },
    stderr: /error="pushing paths: creating pending closures: creating pending closure: sending request: resolving auth token: auth token file \\".*empty-token\\" is empty"/,
  },
  {
    name: "wrong token",
    args: () => {
      const wrong = join(work, "wrong-token");
      writeFileSync(wrong, "not-the-token\n");
      return ["push", "--server-url", server.url, "--auth-token-path", wrong, app];
    },
    stderr: /level=ERROR msg="Fatal error" error="pushing paths: creating pending closures: creating pending closure: server returned 401: Unauthorized\\n"$/m,
  },
  {
    name: "--version is an unknown command",
    args: () => ["--version"],
    stderr: /^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d ERROR Fatal error error="unknown command: --version"\n$/,
  },
];

describe("niks3 double strictness", () => {
  it.each(strictCases)("$name: exit 1, nothing pushed", async (c) => {
    const pushesBefore = server.pushes;
    const pinsBefore = new Map(server.pins);
    const r = await niks3(c.args(), c.env?.() ?? {});
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(c.stderr);
    expect(server.pushes).toBe(pushesBefore);
    expect(new Map(server.pins)).toEqual(pinsBefore);
  });
});
