// Uploading what a job builds, around the build: beginUpload before it (pick the mode and say why,
// set up the post-build-hook and niks3-hook, or list the store), endUpload after it (drain
// niks3-hook within a time limit, or push the store diff). The ci command calls both in one
// process; the setup component calls beginUpload in its before_script and endUpload in its
// after_script (src/upload/state.ts carries the state between them). The closures of the
// requested installables are pushed afterwards by the caller (src/job/push.ts), whatever the mode.

import { mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { dirname, join } from "node:path";
import { isCancelled, trackChild } from "../edges/children.ts";
import { processStartTime, runProcess, signalProcess, type BackgroundProcess } from "../edges/proc.ts";
import { findOnPath } from "../install/tool-cache.ts";
import type { Niks3Install } from "../install/index.ts";
import type { Logger } from "../log.ts";
import { userConfFiles } from "../nix/config.ts";
import type { JobPlan } from "../policy.ts";
import type { Settings } from "../settings.ts";
import { writeTokenFile } from "../token.ts";
import { spawnDaemon, type DaemonReady } from "./daemon.ts";
import { builtPaths, hasBuilt, hookConfText, niks3HookServeArgs, pendingSendPids, recordSendOutput, tokenScriptCommand, writeHookFiles } from "./hook.ts";
import { describeMode, pickUploadMode, type UploadFacts, type UploadModeDecision } from "./mode.ts";
import { probeUploadFacts } from "./probe.ts";
import { listStore, saveListing, storeDirOf } from "./store-diff.ts";
import type { UploadState } from "./state.ts";

export { abortUpload, endUpload, mergeOutcomes, type UploadOutcome } from "./finish.ts";

/** The parts of a prepared job that uploading needs. */
export interface UploadJob {
  settings: Pick<Settings, "serverUrl" | "token" | "debug" | "uploadMode" | "pushTimeoutSeconds">;
  plan: Pick<JobPlan, "push">;
  install: Niks3Install | undefined;
  blockedPush: string | undefined;
  /** Nix's and niks3's environment (no token in it). */
  childEnv: NodeJS.ProcessEnv;
  /** The facts, if already being probed (prepareJob starts it early). */
  uploadFacts?: Promise<UploadFacts> | undefined;
}

export interface BeginOptions {
  cwd: string;
  log: Logger;
  /** How to run this helper (node and its script), for niks3's --auth-token-script. */
  helper: readonly string[];
  /** Outlive this process (setup): the daemon logs to a file, the token file stays until after_script. */
  detached: boolean;
  /** niks3-hook's --idle-exit-timeout: the job's timeout (it cannot go idle within a job); 0 = never. */
  idleExitSeconds: number;
  /** Facts already probed (tests); probed here otherwise. */
  facts?: UploadFacts;
}

export interface UploadSession {
  state: UploadState;
  /** What Nix must see to run the post-build-hook (empty unless daemon mode). */
  nixEnv: Record<string, string>;
  /** The daemon, once this process has started it (ci). */
  process: BackgroundProcess | undefined;
  /**
   * Settles once niks3-hook listens, or has failed to (then state.daemonFailure says why), or with
   * undefined when it was never started (the build was over first).
   */
  daemonReady: Promise<DaemonReady | undefined> | undefined;
  /** Tells a niks3-hook that waits to be started that the build is over (it is not needed then). */
  buildEnded: () => void;
  /** The daemon's log lines, when this process collects them. */
  lines: string[];
}

/** helperCommand: this helper as argv (node and the real path of its script), for token-script. */
export function helperCommand(execPath: string, script: string | undefined): string[] {
  if (script === undefined) return [execPath];
  try {
    return [execPath, realpathSync(script)];
  } catch {
    return [execPath, script];
  }
}

/** makeStateDir: a private temp dir whose socket path fits a unix socket address (108 bytes). */
function makeStateDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "niks3-gitlab-"));
  if (join(dir, "hook.sock").length < 100) return dir;
  rmSync(dir, { recursive: true, force: true });
  return mkdtempSync("/tmp/niks3-");
}

async function decide(job: UploadJob, options: BeginOptions): Promise<UploadModeDecision> {
  const niks3Hook = job.install?.niks3Hook;
  const input = { setting: job.settings.uploadMode, push: job.plan.push && job.install !== undefined, blockedPush: job.blockedPush };
  const needProbe = input.push && input.blockedPush === undefined && input.setting === "auto" && niks3Hook !== undefined;
  const facts: UploadFacts =
    options.facts ??
    (needProbe
      ? { ...(await (job.uploadFacts ?? probeUploadFacts(job.childEnv, undefined))), niks3Hook }
      : { niks3Hook, user: "", groups: [], storeWritable: false, store: undefined, trustedUsers: undefined });
  return pickUploadMode(input, facts);
}

/**
 * How long the build must have been running (and have built something) before the ci command
 * starts niks3-hook. What a build over sooner built goes up with the push after it: niks3-hook
 * (its own start-up, then one upload per batch it is sent) would only make such a job slower.
 */
export const DAEMON_START_DELAY_MS = 1000;

interface DaemonPlan {
  niks3Hook: string;
  args: string[];
  socket: string;
  dbPath: string;
  logFile: string | undefined;
}

/** writeDaemonFiles writes the post-build-hook and its nix.conf, and says how niks3-hook will run. */
async function writeDaemonFiles(job: UploadJob, options: BeginOptions, stateDir: string, tokenDir: string): Promise<{ plan: DaemonPlan; nixEnv: Record<string, string> }> {
  const niks3Hook = job.install?.niks3Hook ?? "";
  const socket = join(stateDir, "hook.sock");
  const nixStore = (await findOnPath(job.childEnv.PATH ?? "", "nix-store")) ?? "";
  const conf = join(stateDir, "upload.conf");
  writeFileSync(conf, hookConfText(writeHookFiles(stateDir, { niks3Hook, nixStore, socket })), { mode: 0o644 });
  const dbPath = join(stateDir, "queue.db");
  const args = niks3HookServeArgs({
    serverUrl: job.settings.serverUrl,
    tokenScript: tokenScriptCommand(options.helper, join(tokenDir, "token")),
    socket,
    dbPath,
    idleExitSeconds: options.idleExitSeconds,
    debug: job.settings.debug,
  });
  const logFile = options.detached ? join(stateDir, "niks3-hook.log") : undefined;
  return { plan: { niks3Hook, args, socket, dbPath, logFile }, nixEnv: { NIX_USER_CONF_FILES: userConfFiles(conf, job.childEnv) } };
}

/**
 * waitForFirstBuild resolves true once Nix has built something and the build has been running for
 * the start delay, false if the build ended first.
 */
async function waitForFirstBuild(stateDir: string, ended: Promise<void>): Promise<boolean> {
  const deadline = Date.now() + DAEMON_START_DELAY_MS;
  let over = false;
  void ended.then(() => (over = true));
  const tick = () => Promise.race([sleep(20), ended]);
  while (!over && !(hasBuilt(stateDir) && Date.now() >= deadline)) await tick();
  return !over && !isCancelled();
}

/** sendBacklog hands niks3-hook what the hook recorded before it listened (in chunks: OUT_PATHS is one env var). */
async function sendBacklog(job: UploadJob, plan: DaemonPlan, stateDir: string): Promise<void> {
  const paths = await builtPaths(stateDir, job.childEnv);
  for (let i = 0; i < paths.length; i += 500) {
    const sent = await runProcess(plan.niks3Hook, ["send", "--socket", plan.socket], { env: { ...job.childEnv, OUT_PATHS: paths.slice(i, i + 500).join(" ") } });
    recordSendOutput(stateDir, `${sent.stdout}${sent.stderr}`);
  }
}

/**
 * beginUpload picks the mode, says which and why (once), and starts uploading. In daemon mode the
 * setup component starts niks3-hook at once and waits until it listens (the user's builds follow
 * its before_script); the ci command starts it once Nix has been building for a while, and sends it
 * what the hook recorded meanwhile.
 */
export async function beginUpload(job: UploadJob, options: BeginOptions): Promise<UploadSession> {
  const decision = await decide(job, options);
  const base = { schema: 1 as const, startedAt: Date.now(), niks3: job.install?.niks3, ...decision };
  const none = { stateDir: undefined, tokenDir: undefined, daemon: undefined, daemonFailure: undefined, listing: undefined };
  if (decision.mode === "none" || job.settings.token === undefined) {
    options.log.info(describeMode(decision));
    return sessionOf({ ...base, ...none });
  }
  const stateDir = makeStateDir();
  const session = sessionOf({ ...base, ...none, stateDir });
  if (decision.mode === "store-diff") {
    session.state.listing = join(stateDir, "store-before.txt");
    await saveListing(session.state.listing, await listStore(storeDirOf(job.childEnv)));
    options.log.info(describeMode(decision));
    return session;
  }
  const tokenFile = writeTokenFile(job.settings.token, stateDir, { keepAfterExit: options.detached });
  session.state.tokenDir = dirname(tokenFile.path);
  const { plan, nixEnv } = await writeDaemonFiles(job, options, stateDir, session.state.tokenDir);
  session.nixEnv = nixEnv;
  const start = async (): Promise<DaemonReady> => {
    const spawned = await spawnDaemon({
      ...plan,
      env: job.childEnv,
      cwd: options.cwd,
      detached: options.detached,
      ...(plan.logFile === undefined
        ? {
            onLine: (line: string) => {
              session.lines.push(line);
              options.log.raw(`${line}\n`);
            },
          }
        : {}),
    });
    session.process = spawned.process;
    session.state.daemon = { ...plan, pid: spawned.process.pid, startTime: await processStartTime(spawned.process.pid) };
    const ready = await spawned.ready;
    if (!ready.ok) {
      tokenFile.remove();
      Object.assign(session.state, { tokenDir: undefined, daemon: undefined, daemonFailure: ready.why });
      options.log.warn(`niks3-hook did not start (${ready.why}); what Nix builds is pushed after the build instead`);
    } else if (!options.detached) {
      await sendBacklog(job, plan, stateDir);
    }
    return ready;
  };
  options.log.info(describeMode(decision));
  if (options.detached) {
    session.daemonReady = start();
    await session.daemonReady;
    return session;
  }
  let endBuild = () => {};
  const ended = new Promise<void>((resolve) => (endBuild = resolve));
  session.buildEnded = endBuild;
  session.daemonReady = waitForFirstBuild(stateDir, ended).then((needed) => (needed ? start() : undefined));
  // The hook's sends run beside Nix, not under this process: a cancelled job stops them too.
  trackChild(() => pendingSendPids(stateDir).forEach((pid) => signalProcess(pid, "SIGTERM")));
  return session;
}

/**
 * sessionOf: a session of `state` with nothing started in this process yet (the setup component's
 * after_script resumes the state its before_script saved this way).
 */
export function sessionOf(state: UploadState): UploadSession {
  return { state, nixEnv: {}, process: undefined, daemonReady: undefined, buildEnded: () => {}, lines: [] };
}

/** readDaemonLog returns what the daemon logged, from its log file or the collected lines. */
export function readDaemonLog(session: Pick<UploadSession, "state" | "lines">): string {
  const file = session.state.daemon?.logFile;
  if (file === undefined) return session.lines.join("\n");
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
}
