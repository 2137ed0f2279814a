// Faults, cancellation, bad input and secrets (issue: "nothing is lost and nothing leaks"). Each
// scenario injects one fault and checks the outcome a user sees: the build goes on or the job ends
// with the documented exit code and one clear line. In every scenario the token must appear in no
// output, no argv of a child (niks3 and nix are wrapped to record theirs), and no file the job left.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { beforeAll, describe, expect, it } from "vitest";
import { PIPELINES } from "../helpers/ci-env.ts";
import { makeFixtureFlake, nixEnv } from "../helpers/nix.ts";
import { BUNDLE } from "../helpers/repo.ts";
import { lines } from "../helpers/run-helper.ts";
import { useNiks3TestBed } from "../helpers/test-bed.ts";
import { makeUploadFlake } from "../helpers/upload.ts";

const bed = useNiks3TestBed();
const { token } = bed;
let wrapDir: string;

beforeAll(() => {
  // nix and nix-store wrappers that record their argv (NIX_ARGV_LOG) before running the real ones.
  wrapDir = mkdtempSync(join(tmpdir(), "niks3-faults-wrap-"));
  for (const tool of ["nix", "nix-store"]) {
    const real = execaSyncWhich(tool);
    writeFileSync(join(wrapDir, tool), `#!/bin/sh\n[ -n "$NIX_ARGV_LOG" ] && echo "${tool} $*" >> "$NIX_ARGV_LOG"\nexec ${real} "$@"\n`);
    chmodSync(join(wrapDir, tool), 0o755);
  }
});

function execaSyncWhich(tool: string): string {
  for (const dir of (process.env.PATH ?? "").split(":")) {
    const candidate = join(dir, tool);
    if (existsSync(candidate)) return candidate;
  }
  throw new Error(`${tool} not on PATH`);
}

interface Run {
  exitCode: number;
  stdout: string;
  stderr: string;
  all: string;
  flakeDir: string;
  tmp: string;
  argvLogs: string;
}

interface RunOptions {
  env?: Record<string, string>;
  flakeDir?: string;
  /** The job's TMPDIR, where its token file lives while niks3 runs. */
  tmp?: string;
  /** Called with each stderr line while the job runs; may send the job a signal. */
  onLine?: (line: string, child: { kill(signal: NodeJS.Signals): void }) => void;
}

async function runJob(pipeline: Record<string, string>, options: RunOptions = {}): Promise<Run> {
  const flakeDir = options.flakeDir ?? makeFixtureFlake().dir;
  const tmp = options.tmp ?? mkdtempSync(join(tmpdir(), "niks3-faults-tmp-"));
  const logs = mkdtempSync(join(tmpdir(), "niks3-faults-argv-"));
  const env = {
    ...nixEnv(bed.confDir),
    PATH: `${wrapDir}:${bed.binDir}:${process.env.PATH}`,
    HOME: flakeDir,
    TMPDIR: tmp,
    NIX_ARGV_LOG: join(logs, "nix.log"),
    NIKS3_DOUBLE_LOG: join(logs, "niks3.jsonl"),
    NIKS3_DOUBLE_RETRY_BASE_MS: "1",
    CI_PROJECT_DIR: flakeDir,
    ...bed.jobVariables(pipeline, options.env),
  };
  const child = execa(process.execPath, [BUNDLE, "ci"], { cwd: flakeDir, env, extendEnv: false, reject: false, all: true, stdin: "ignore" });
  if (options.onLine) {
    let pending = "";
    child.stderr?.on("data", (chunk: Buffer) => {
      pending += chunk.toString();
      const parts = pending.split("\n");
      pending = parts.pop() ?? "";
      for (const line of parts) options.onLine?.(line, child);
    });
  }
  const result = await child;
  const argvLogs = readdirSync(logs).map((f) => readFileSync(join(logs, f), "utf8")).join("\n");
  return { exitCode: result.exitCode ?? 1, stdout: String(result.stdout), stderr: String(result.stderr), all: String(result.all), flakeDir, tmp, argvLogs };
}

/** expectNoLeak: the token is in no output, no child's argv, no report or artifact, and no temp file remains. */
function expectNoLeak(run: Run): void {
  expect(run.all).not.toContain(token);
  expect(run.argvLogs).not.toContain(token);
  expect(run.argvLogs).not.toMatch(/--auth-token[ =]/);
  expect(run.argvLogs).not.toContain("--debug");
  const files = (dir: string): string[] =>
    existsSync(dir)
      ? readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)]))
      : [];
  for (const file of files(join(run.flakeDir, ".niks3-gitlab"))) {
    if (statSync(file).size < 5_000_000) expect(readFileSync(file, "utf8"), file).not.toContain(token);
  }
  expect(filesHoldingToken(run.tmp)).toEqual([]);
}

/** filesHoldingToken lists the files under dir whose content includes the token. */
function filesHoldingToken(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name))
    .filter((file) => readFileSync(file, "utf8").includes(token));
}

const warnings = (run: Run) => lines(run.stderr).filter((line) => line.includes("niks3: warning:"));

describe("cache-config faults: the build goes on without the substituter, with one warning", () => {
  it.each([
    { name: "5xx", fault: { status: 503 } },
    { name: "garbage JSON", fault: { status: 200, body: "{not json", headers: { "content-type": "application/json" } } },
    { name: "JSON that is not a cache-config", fault: { status: 200, body: '{"hello":"world"}', headers: { "content-type": "application/json" } } },
    { name: "a very slow answer", fault: { delayMs: 60_000 }, env: { NIKS3_CACHE_CONFIG_TIMEOUT: "1s" } },
    { name: "no answer at all", fault: { hang: true }, env: { NIKS3_CACHE_CONFIG_TIMEOUT: "1s" } },
  ])("$name", async ({ fault, env }) => {
    bed.server.faults.cacheConfig = fault;
    const run = await runJob(PIPELINES.mergeRequest, { env: { NIKS3_PUSH: "never", ...env } });
    expect(run.exitCode, run.all).toBe(0);
    expect(warnings(run)).toHaveLength(1);
    expect(warnings(run)[0]).toContain("building without the cache");
    const summary = JSON.parse(readFileSync(join(run.flakeDir, ".niks3-gitlab", "summary.json"), "utf8")) as { installables: { ok: boolean }[] };
    expect(summary.installables.map((i) => i.ok)).toEqual([true]);
    expectNoLeak(run);
  });
});

describe("push faults follow the warn/strict policy", () => {
  it.each([
    { name: "5xx from the server", fault: { status: 500 }, message: /server returned 500/ },
    { name: "a server that never answers", fault: { hang: true }, env: { NIKS3_PUSH_TIMEOUT: "3s" }, message: /did not finish within 3s/ },
  ])("$name: exit 3 with the reason, exit 1 when strict", async ({ fault, env, message }) => {
    bed.server.faults.push = fault;
    const run = await runJob(PIPELINES.defaultBranch, { env: { ...env } });
    expect(run.exitCode, run.all).toBe(3);
    expect(run.stderr).toMatch(message);
    expect(run.stderr).toMatch(/the build succeeded but the push failed/);
    expectNoLeak(run);

    bed.server.faults.push = fault;
    const strict = await runJob(PIPELINES.defaultBranch, { env: { ...env, NIKS3_STRICT: "true" } });
    expect(strict.exitCode).toBe(1);
    expectNoLeak(strict);
  });
});

/** A flake whose only package builds until it is stopped. */
function slowFlake(): { dir: string; marker: string } {
  const dir = mkdtempSync(join(tmpdir(), "niks3-slow-flake-"));
  const marker = `slow-${Math.random().toString(36).slice(2)}`;
  writeFileSync(
    join(dir, "flake.nix"),
    `{ outputs = { self }: let mk = system: derivation { name = "${marker}"; inherit system; builder = "/bin/sh"; args = [ "-c" "echo build-started; exec /bin/sleep 3600" ]; }; in {
      packages.x86_64-linux.default = mk "x86_64-linux"; packages.aarch64-linux.default = mk "aarch64-linux"; }; }\n`,
  );
  return { dir, marker };
}

async function processesMatching(text: string): Promise<string[]> {
  const ps = await execa("ps", ["-eo", "pid,args"], { reject: false });
  return String(ps.stdout).split("\n").filter((line) => line.includes(text) && !line.includes("ps -eo"));
}

describe("cancellation (GitLab sends SIGTERM)", () => {
  it("during the build: Nix stops, the token file is gone, exit 143", async () => {
    const flake = slowFlake();
    let sent = false;
    const run = await runJob(PIPELINES.defaultBranch, {
      flakeDir: flake.dir,
      onLine: (line, child) => {
        if (!sent && line.includes("build-started")) {
          sent = true;
          child.kill("SIGTERM");
        }
      },
    });
    expect(sent).toBe(true);
    expect(run.exitCode, run.all).toBe(143);
    expect(run.stderr).toContain("received SIGTERM");
    expect(await processesMatching(flake.marker)).toEqual([]);
    expectNoLeak(run);
  });

  /**
   * cancelWhenUploadHangs runs a job whose uploads hang, and sends it SIGTERM once an upload of its
   * own waits on the server; `whileHanging` sees the job's temp dir at that moment.
   */
  async function cancelWhenUploadHangs(options: Omit<RunOptions, "tmp" | "onLine">, whileHanging: (tmp: string) => void = () => {}) {
    bed.server.faults.push = { hang: true };
    const tmp = mkdtempSync(join(tmpdir(), "niks3-faults-tmp-"));
    let job: { kill(signal: NodeJS.Signals): void } | undefined;
    const earlier = bed.server.held;
    const running = runJob(PIPELINES.defaultBranch, { ...options, tmp, onLine: (_line, child) => (job = child) });
    const hanging = () => bed.server.held > earlier;
    await expect.poll(hanging, { timeout: 60_000 }).toBe(true);
    whileHanging(tmp);
    job?.kill("SIGTERM");
    return { run: await running, tmp };
  }

  it("during the push: niks3 is stopped, the 0600 token file is removed, exit 143", async () => {
    let tokenFileModes: number[] = [];
    const { run, tmp } = await cancelWhenUploadHangs({}, (dir) => {
      tokenFileModes = filesHoldingToken(dir).map((file) => statSync(file).mode & 0o777);
    });
    // While niks3 ran, the token was in a 0600 file (and only there).
    expect(tokenFileModes.length, run.all).toBeGreaterThan(0);
    for (const mode of tokenFileModes) expect(mode).toBe(0o600);
    expect(run.exitCode).toBe(143);
    // niks3 ended with the job instead of hanging on (its arguments name the job's temp dir).
    expect(await processesMatching(tmp)).toEqual([]);
    expectNoLeak(run);
  });

  it("while niks3-hook uploads during the build: it is killed when its drain hangs, the token file is removed, exit 143", async () => {
    // Three 1 s steps: the helper starts niks3-hook during the build, and its first upload hangs.
    const flakeDir = makeUploadFlake({ slowCount: 3, slowSeconds: 1 }).dir;
    const { run, tmp } = await cancelWhenUploadHangs({ flakeDir, env: { NIKS3_INSTALLABLES: ".#slow" } });
    expect(run.exitCode, run.all).toBe(143);
    expect(run.all).toContain("niks3-hook serve starting");
    // niks3-hook drains on SIGTERM, which never ends here: it was killed with everything it started.
    expect(await processesMatching(tmp)).toEqual([]);
    expectNoLeak(run);
  });
});

describe("bad input: one line naming the input and what is allowed, exit 2, no stack trace", () => {
  const cases: [string, Record<string, string>][] = [
    ["server_url", { NIKS3_SERVER_URL: "niks3.example.com" }],
    ["server_url", { NIKS3_SERVER_URL: "ftp://niks3.example.com" }],
    ["server_url", { NIKS3_SERVER_URL: "https://" }],
    ["server_url", { NIKS3_SERVER_URL: "" }],
    ["push", { NIKS3_PUSH: "maybe" }],
    ["push", { NIKS3_PUSH: "yes" }],
    ["pin", { NIKS3_PIN: "acme/main" }],
    ["pin", { NIKS3_PIN: "a b" }],
    ["pin", { NIKS3_PIN: "x".repeat(300) }],
    ["installables", { NIKS3_INSTALLABLES: "" }],
    ["installables", { NIKS3_INSTALLABLES: "   " }],
    ["installables", { NIKS3_INSTALLABLES: ".#a --impure" }],
    ["niks3_version", { NIKS3_VERSION: "latest" }],
    ["niks3_version", { NIKS3_VERSION: "1.7" }],
    ["niks3_version", { NIKS3_VERSION: "1.7.0; rm -rf /" }],
    ["download_url", { NIKS3_DOWNLOAD_URL: "github.com/Mic92/niks3" }],
    ["strict", { NIKS3_STRICT: "sometimes" }],
    ["push_timeout", { NIKS3_PUSH_TIMEOUT: "soon" }],
    ["push_timeout", { NIKS3_PUSH_TIMEOUT: "-5m" }],
    ["push_timeout", { NIKS3_PUSH_TIMEOUT: "0" }],
    ["cache_config_timeout", { NIKS3_CACHE_CONFIG_TIMEOUT: "1d" }],
    ["debug", { NIKS3_DEBUG: "on" }],
  ];
  it.each(cases)("%s: %j", async (input, env) => {
    const flakeDir = mkdtempSync(join(tmpdir(), "niks3-badinput-"));
    mkdirSync(flakeDir, { recursive: true });
    const run = await runJob(PIPELINES.defaultBranch, { env, flakeDir });
    expect(run.exitCode).toBe(2);
    const output = lines(run.all).filter(Boolean);
    expect(output).toHaveLength(1);
    expect(output[0]).toMatch(new RegExp(`^niks3: (invalid )?${input} \\(NIKS3_\\w+ / --[\\w-]+\\).*(expected|required)`));
    expect(run.all).not.toMatch(/^\s+at /m);
    expect(run.argvLogs).toBe("");
    expectNoLeak(run);
  });
});
