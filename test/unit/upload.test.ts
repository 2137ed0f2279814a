// The upload mode's decision table, the parsers and small pure pieces of upload-while-building, and
// the post-build-hook script itself (run with sh, with a fake niks3-hook and nix-store).
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { uploadLimitSeconds } from "../../src/commands/upload.ts";
import { isBackingOff, lastUploadError, mergeOutcomes } from "../../src/upload/finish.ts";
import { builtPaths, hasBuilt, niks3HookServeArgs, pendingSends, sendErrors, shellWord, tokenScriptCommand, writeHookFiles } from "../../src/upload/hook.ts";
import { describeMode, pickUploadMode, type UploadFacts, type UploadModeInput } from "../../src/upload/mode.ts";
import { parseNixConfigJson, probeUploadFacts } from "../../src/upload/probe.ts";
import { envFileText } from "../../src/upload/state.ts";
import { isPushCandidate, newEntries } from "../../src/upload/store-diff.ts";
import { tokenScriptOutput } from "../../src/upload/token-script.ts";
import { shellSplit } from "../doubles/niks3-token.ts";
import { makeToken } from "../helpers/token.ts";

const HOOK = "/opt/niks3/niks3-hook";
const rootInImage: UploadFacts = { niks3Hook: HOOK, user: "root", groups: [], storeWritable: true, store: "auto", trustedUsers: ["root"] };
const runnerUser: UploadFacts = { niks3Hook: HOOK, user: "gitlab-runner", groups: ["gitlab-runner", "docker"], storeWritable: false, store: "daemon", trustedUsers: ["root"] };
const auto: UploadModeInput = { setting: "auto", push: true, blockedPush: undefined };

describe("pickUploadMode", () => {
  it.each<{ name: string; input?: Partial<UploadModeInput>; facts: UploadFacts; mode: string; reason: RegExp }>([
    { name: "root in nixos/nix (writable store): niks3-hook", facts: rootInImage, mode: "daemon", reason: /own store \(writable by root\)/ },
    { name: "a user of a multi-user store, not trusted: store diff", facts: runnerUser, mode: "store-diff", reason: /gitlab-runner is not in its trusted-users/ },
    { name: "a trusted user of a multi-user store: niks3-hook", facts: { ...runnerUser, trustedUsers: ["root", "gitlab-runner"] }, mode: "daemon", reason: /in Nix's trusted-users/ },
    { name: "trusted through a group (@docker)", facts: { ...runnerUser, trustedUsers: ["root", "@docker"] }, mode: "daemon", reason: /trusted-users/ },
    { name: "trusted-users = *", facts: { ...runnerUser, trustedUsers: ["*"] }, mode: "daemon", reason: /trusted-users/ },
    { name: "root talking to a daemon (store = daemon) and trusted", facts: { ...rootInImage, store: "daemon" }, mode: "daemon", reason: /trusted-users/ },
    { name: "Nix settings unreadable, store not local: store diff", facts: { ...runnerUser, trustedUsers: undefined, probeError: "nix: not found" }, mode: "store-diff", reason: /could not be read \(nix: not found\)/ },
    { name: "no niks3-hook in the install: store diff", facts: { ...rootInImage, niks3Hook: undefined }, mode: "store-diff", reason: /no niks3-hook/ },
    { name: "upload_mode store-diff wins over a hook-capable store", input: { setting: "store-diff" }, facts: rootInImage, mode: "store-diff", reason: /upload_mode is store-diff/ },
    { name: "upload_mode daemon trusts the user", input: { setting: "daemon" }, facts: runnerUser, mode: "daemon", reason: /upload_mode is daemon/ },
    { name: "the plan does not push (fork MR, no token): none", input: { push: false }, facts: rootInImage, mode: "none", reason: /only pulls/ },
    { name: "the audience is wrong: none", input: { blockedPush: "aud mismatch" }, facts: rootInImage, mode: "none", reason: /refuse the token/ },
  ])("$name", ({ input, facts, mode, reason }) => {
    const decision = pickUploadMode({ ...auto, ...input }, facts);
    expect(decision.mode).toBe(mode);
    expect(decision.reason).toMatch(reason);
  });

  it("says which mode and why in one line", () => {
    expect(describeMode({ mode: "daemon", reason: "because" })).toBe("uploading while building (niks3-hook): because");
    expect(describeMode({ mode: "store-diff", reason: "because" })).toBe("uploading after the build (store diff): because");
  });
});

describe("parsers", () => {
  it("reads store and trusted-users from Nix 2.8's show-config --json", () => {
    const recorded = readFileSync(new URL("../fixtures/recorded/nix-show-config-2.8.json", import.meta.url), "utf8");
    expect(parseNixConfigJson(recorded)).toEqual({ store: "auto", trustedUsers: ["root"] });
    expect(parseNixConfigJson(JSON.stringify({ store: "daemon", "trusted-users": "root @wheel" }))).toEqual({ store: "daemon", trustedUsers: ["root", "@wheel"] });
  });

  it("finds why niks3-hook could not upload in its log", () => {
    const log = [
      'time=2026-06-20T13:15:27.360Z level=INFO msg="Uploading batch" count=2',
      'time=2026-06-20T13:15:27.400Z level=ERROR msg="Drain upload failed, paths remain in queue for next start" error="creating pending closures: creating pending closure: server returned 401: Unauthorized\\n" count=2',
    ].join("\n");
    expect(lastUploadError(log)).toBe("creating pending closures: creating pending closure: server returned 401: Unauthorized");
    expect(lastUploadError('level=INFO msg="Upload complete. (1s)"')).toBeUndefined();
  });

  it("tells when niks3-hook sits in a backoff after a failed upload (then it is told to drain at once)", () => {
    const failed = 'level=INFO msg="Uploading batch" count=1\nlevel=ERROR msg="Upload failed" error="x" count=1';
    expect(isBackingOff(failed)).toBe(true);
    expect(isBackingOff(`${failed}\nlevel=INFO msg="Uploading batch" count=2`)).toBe(false);
    expect(isBackingOff(`${failed}\nlevel=INFO msg="Uploading batch" count=2\nlevel=INFO msg="Upload complete. (1s)"`)).toBe(false);
  });
});

describe("reading Nix's settings", () => {
  /** A fake nix that knows only the commands given (their JSON answers), logging each call. */
  function fakeNix(spellings: Record<string, string>): { env: NodeJS.ProcessEnv; calls: () => string[] } {
    const dir = mkdtempSync(join(tmpdir(), "niks3-fake-nix-"));
    const calls = join(dir, "calls");
    const cases = Object.entries(spellings).map(([spelling, json]) => `  "${spelling}") echo '${json}' ;;`);
    writeFileSync(
      join(dir, "nix"),
      ["#!/bin/sh", `echo "$*" >> ${calls}`, 'case "$1" in', ...cases, `  *) echo "error: '$1' is not a recognised command" >&2; exit 1 ;;`, "esac", ""].join("\n"),
    );
    chmodSync(join(dir, "nix"), 0o755);
    const read = () => (existsSync(calls) ? readFileSync(calls, "utf8").trim().split("\n") : []);
    return { env: { PATH: `${dir}:/usr/bin:/bin`, NIX_STORE_DIR: dir }, calls: read };
  }
  const daemonSettings = JSON.stringify({ store: { value: "daemon" }, "trusted-users": { value: ["root", "@ci"] } });

  it("asks show-config, which every Nix in use knows, and nothing else when it answers", async () => {
    const nix = fakeNix({ "show-config": daemonSettings, config: daemonSettings });
    const facts = await probeUploadFacts(nix.env, undefined);
    expect(facts).toMatchObject({ store: "daemon", trustedUsers: ["root", "@ci"] });
    expect(nix.calls().map((call) => call.split(" ")[0])).toEqual(["show-config"]);
  });

  it("falls back to config show on a Nix without the show-config alias", async () => {
    const nix = fakeNix({ config: daemonSettings });
    const facts = await probeUploadFacts(nix.env, undefined);
    expect(facts).toMatchObject({ store: "daemon", trustedUsers: ["root", "@ci"] });
    expect(facts.probeError).toBeUndefined();
    expect(nix.calls().map((call) => call.split(" ")[0])).toEqual(["show-config", "config"]);
  });

  it("says why when neither spelling answers (the upload mode then says it could not read them)", async () => {
    const nix = fakeNix({});
    const facts = await probeUploadFacts(nix.env, undefined);
    expect(facts).toMatchObject({ store: undefined, trustedUsers: undefined, probeError: "error: 'config' is not a recognised command" });
  });
});

describe("store diff", () => {
  it.each([
    ["abcdfghijklmnpqrsvwxyz0123456789-hello-1.0", true],
    ["abcdfghijklmnpqrsvwxyz0123456789-hello-1.0.drv", false],
    ["abcdfghijklmnpqrsvwxyz0123456789-hello-1.0.lock", false],
    ["abcdfghijklmnpqrsvwxyz0123456789-hello-1.0.drv.chroot", false],
    ["abcdfghijklmnpqrsvwxyz0123456789-hello-1.0.check", false],
    [".links", false],
    ["not-a-store-path", false],
  ])("%s is pushed: %s", (name, pushed) => {
    expect(isPushCandidate(name)).toBe(pushed);
  });

  it("lists only what appeared since the first listing", () => {
    expect(newEntries("/nix/store", ["a", "b"], ["b", "c", "a", "d"])).toEqual(["/nix/store/c", "/nix/store/d"]);
  });
});

describe("daemon mode pieces", () => {
  it("the token script prints the token with expires_at from the JWT's exp, as niks3 parses it", () => {
    const exp = Math.floor(Date.UTC(2030, 0, 2, 3, 4, 5) / 1000);
    const token = makeToken({ exp });
    expect(JSON.parse(tokenScriptOutput(token))).toEqual({ token, expires_at: "2030-01-02T03:04:05Z" });
    expect(JSON.parse(tokenScriptOutput("static-token-not-a-jwt"))).toEqual({ token: "static-token-not-a-jwt" });
  });

  it("niks3 splits the token script command back into the same argv, spaces and quotes included", () => {
    const helper = ["/opt/node 22/bin/node", "/builds/it's/niks3-gitlab.mjs"];
    expect(shellSplit(tokenScriptCommand(helper, "/tmp/x y/token"))).toEqual([...helper, "token-script", "--file", "/tmp/x y/token"]);
    expect(shellWord("/plain/path")).toBe("/plain/path");
  });

  it("niks3-hook serve gets only flags (Go stops at the first positional), the token only behind a script", () => {
    const args = niks3HookServeArgs({ serverUrl: "https://c", tokenScript: "node h token-script --file /t", socket: "/s", dbPath: "/q.db", idleExitSeconds: 3600, debug: false });
    expect(args).toEqual(["serve", "--server-url", "https://c", "--auth-token-script", "node h token-script --file /t", "--socket", "/s", "--db-path", "/q.db", "--idle-exit-timeout", "3600s"]);
    expect(niks3HookServeArgs({ serverUrl: "u", tokenScript: "t", socket: "s", dbPath: "d", idleExitSeconds: 0, debug: true }).slice(-3)).toEqual(["--idle-exit-timeout", "0", "--debug"]);
  });

  it("the env file exports values a shell reads back unchanged", () => {
    const value = "/tmp/a b/upload.conf:/it's/nix.conf";
    const dir = mkdtempSync(join(tmpdir(), "niks3-envfile-"));
    writeFileSync(join(dir, "setup.env"), envFileText({ NIX_USER_CONF_FILES: value }));
    expect(execFileSync("sh", ["-c", '. ./setup.env && printf %s "$NIX_USER_CONF_FILES"'], { cwd: dir, encoding: "utf8" })).toBe(value);
  });

  it("the after_script's upload stops 30 s before GitLab's after_script limit", () => {
    expect(uploadLimitSeconds(1800, undefined)).toBe(270);
    expect(uploadLimitSeconds(1800, "10m")).toBe(570);
    expect(uploadLimitSeconds(120, "1h")).toBe(120);
  });

  it("counts what the daemon uploaded once: the later push of the outputs finds them cached", () => {
    const merged = mergeOutcomes(
      { mode: "daemon", ok: true, uploaded: 3, cached: 0, leftover: 0, error: undefined, runs: [] },
      { ok: true, uploaded: 0, cached: 3, pinned: ["p"], error: undefined },
    );
    expect(merged).toMatchObject({ ok: true, uploaded: 3, cached: 0, pinned: ["p"] });
    const failed = mergeOutcomes({ mode: "daemon", ok: false, uploaded: 1, cached: 0, leftover: 2, error: "2 built paths could not be uploaded", runs: [] }, undefined);
    expect(failed).toMatchObject({ ok: false, error: "2 built paths could not be uploaded" });
  });
});

describe("the post-build-hook script", () => {
  /**
   * fakeTools writes a niks3-hook that records its OUT_PATHS and argv (blocked until a `release`
   * file exists when asked, printing an error when asked), and a nix-store that records its calls
   * and prints two outputs per derivation.
   */
  function fakeTools(options: { hookExit?: number; blockUntilReleased?: boolean; sendError?: string } = {}) {
    const dir = mkdtempSync(join(tmpdir(), "niks3-hookscript-"));
    const record = join(dir, "record");
    const release = join(dir, "release");
    const niks3Hook = join(dir, "niks3-hook");
    writeFileSync(
      niks3Hook,
      [
        "#!/bin/sh",
        options.blockUntilReleased ? `while [ ! -e ${release} ]; do sleep 0.01; done` : "",
        `echo "$OUT_PATHS|$*" > ${record}`,
        options.sendError ? `echo "${options.sendError}" >&2` : "",
        `exit ${options.hookExit ?? 0}`,
        "",
      ].join("\n"),
    );
    chmodSync(niks3Hook, 0o755);
    const nixStore = join(dir, "nix-store");
    const nixStoreCalls = join(dir, "nix-store-calls");
    writeFileSync(
      nixStore,
      [
        "#!/bin/sh",
        `echo "$*" >> ${nixStoreCalls}`,
        '[ "$1 $2" = "-q --outputs" ] || exit 1',
        "shift 2",
        `for drv in "$@"; do name=\${drv##*/}; name=\${name%.drv}; printf '/nix/store/%s-out\\n/nix/store/%s-dev\\n' "$name" "$name"; done`,
        "",
      ].join("\n"),
    );
    chmodSync(nixStore, 0o755);
    return { dir, record, release, niks3Hook, nixStore, nixStoreCalls, socket: join(dir, "hook.sock") };
  }
  const runHook = (hook: string, env: Record<string, string>) => spawnSync(hook, [], { env: { ...env }, encoding: "utf8" });
  /** sent: what the fake niks3-hook recorded, once the hook's background send is done. */
  const sent = async (tools: { dir: string; record: string }) => {
    await expect.poll(() => pendingSends(tools.dir).length).toBe(0);
    return readFileSync(tools.record, "utf8").replace(/\s+/g, " ").trim();
  };
  const servers: Server[] = [];
  afterEach(() => servers.splice(0).forEach((server) => server.close()));
  /** listen opens the unix socket, as niks3-hook serve does once it has started. */
  const listen = (path: string) =>
    new Promise<void>((resolve) => {
      servers.push(createServer().listen(path, () => resolve()));
    });

  it("hands OUT_PATHS to niks3-hook send with the socket, with no PATH at all", async () => {
    const tools = fakeTools();
    await listen(tools.socket);
    const hook = writeHookFiles(tools.dir, tools);
    const run = runHook(hook, { OUT_PATHS: "/nix/store/zzz-a /nix/store/yyy-b", DRV_PATH: "/nix/store/q.drv" });
    expect(run.status).toBe(0);
    expect(await sent(tools)).toBe(`/nix/store/zzz-a /nix/store/yyy-b|send --socket ${tools.socket}`);
    expect(await builtPaths(tools.dir, process.env)).toEqual(["/nix/store/zzz-a", "/nix/store/yyy-b"]);
    expect(sendErrors(tools.dir)).toEqual([]);
  });

  it("asks nix-store for the outputs to send when Nix (2.8) passes an empty OUT_PATHS", async () => {
    const tools = fakeTools();
    await listen(tools.socket);
    expect(runHook(writeHookFiles(tools.dir, tools), { OUT_PATHS: "", DRV_PATH: "/nix/store/q.drv" }).status).toBe(0);
    expect(await sent(tools)).toBe(`/nix/store/q-out /nix/store/q-dev|send --socket ${tools.socket}`);
    expect(await builtPaths(tools.dir, process.env)).toEqual(["/nix/store/q-out", "/nix/store/q-dev"]);
  });

  it("with an empty OUT_PATHS and nothing listening, records the derivation; its outputs are read later, all in one call", async () => {
    const tools = fakeTools();
    const stateDir = mkdtempSync(join(tmpdir(), "niks3-hookstate-"));
    const hook = writeHookFiles(stateDir, tools);
    for (const drv of ["/nix/store/p.drv", "/nix/store/q.drv"]) expect(runHook(hook, { OUT_PATHS: "", DRV_PATH: drv }).status).toBe(0);
    expect(runHook(hook, { OUT_PATHS: "/nix/store/r", DRV_PATH: "/nix/store/r.drv" }).status).toBe(0);
    expect(existsSync(tools.nixStoreCalls)).toBe(false);
    expect(hasBuilt(stateDir)).toBe(true);
    // The job removes its state as soon as it has asked: the answer must not need it.
    const reading = builtPaths(stateDir, process.env);
    rmSync(stateDir, { recursive: true });
    expect(await reading).toEqual(["/nix/store/r", "/nix/store/p-out", "/nix/store/p-dev", "/nix/store/q-out", "/nix/store/q-dev"]);
    expect(readFileSync(tools.nixStoreCalls, "utf8")).toBe("-q --outputs /nix/store/p.drv /nix/store/q.drv\n");
  });

  it("returns before the send is done, so Nix goes on building; the send's marker stays until it is", async () => {
    const tools = fakeTools({ blockUntilReleased: true });
    await listen(tools.socket);
    expect(runHook(writeHookFiles(tools.dir, tools), { OUT_PATHS: "/nix/store/zzz-a" }).status).toBe(0);
    expect(pendingSends(tools.dir)).toHaveLength(1);
    writeFileSync(tools.release, "");
    expect(await sent(tools)).toBe(`/nix/store/zzz-a|send --socket ${tools.socket}`);
  });

  it("while niks3-hook is not listening yet, only records the paths (the helper sends them later)", async () => {
    const tools = fakeTools();
    expect(runHook(writeHookFiles(tools.dir, tools), { OUT_PATHS: "/nix/store/zzz-a" }).status).toBe(0);
    expect(hasBuilt(tools.dir)).toBe(true);
    expect(await builtPaths(tools.dir, process.env)).toEqual(["/nix/store/zzz-a"]);
    expect(pendingSends(tools.dir)).toEqual([]);
    expect(existsSync(tools.record)).toBe(false);
  });

  it("keeps what a failed send printed (niks3-hook send exits 0 even then)", async () => {
    const tools = fakeTools({ sendError: "niks3-hook send: connecting to socket: connection refused" });
    await listen(tools.socket);
    expect(runHook(writeHookFiles(tools.dir, tools), { OUT_PATHS: "/nix/store/zzz-a" }).status).toBe(0);
    await sent(tools);
    expect(sendErrors(tools.dir)).toEqual(["niks3-hook send: connecting to socket: connection refused"]);
  });

  it("never fails, so Nix keeps building: niks3-hook failing or missing still exits 0", async () => {
    const failing = fakeTools({ hookExit: 1 });
    await listen(failing.socket);
    expect(runHook(writeHookFiles(failing.dir, failing), { OUT_PATHS: "/nix/store/zzz-a" }).status).toBe(0);
    const missing = fakeTools();
    await listen(missing.socket);
    expect(runHook(writeHookFiles(missing.dir, { ...missing, niks3Hook: join(missing.dir, "gone"), nixStore: "" }), { OUT_PATHS: "/nix/store/zzz-a" }).status).toBe(0);
    await expect.poll(() => pendingSends(missing.dir).length).toBe(0);
    expect(sendErrors(missing.dir).join("\n")).toContain("gone");
  });

  it("records store paths whose names hold glob characters as they are", async () => {
    const tools = fakeTools();
    writeFileSync(join(tools.dir, "zzz-a"), "");
    expect(runHook(writeHookFiles(tools.dir, tools), { OUT_PATHS: `${tools.dir}/zzz-? ${tools.dir}/*` }).status).toBe(0);
    expect(await builtPaths(tools.dir, process.env)).toEqual([`${tools.dir}/zzz-?`, `${tools.dir}/*`]);
  });
});
