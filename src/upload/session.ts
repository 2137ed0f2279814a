// Uploading what a job builds, around the build: beginUpload before it (pick the mode and say why,
// start niks3-hook or list the store), endUpload after it (drain niks3-hook within a time limit, or
// push the store diff). The ci command calls both in one process; the setup component calls
// beginUpload in its before_script and endUpload in its after_script (src/upload/state.ts carries
// the state between them). The closures of the requested installables are pushed afterwards by the
// caller (src/job/push.ts), whatever the mode.

import { mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { BackgroundProcess } from "../edges/proc.ts";
import { trackChild } from "../edges/children.ts";
import { processStartTime, signalProcess } from "../edges/proc.ts";
import { findOnPath } from "../install/tool-cache.ts";
import type { Niks3Install } from "../install/index.ts";
import type { Logger } from "../log.ts";
import type { PushOutcome } from "../niks3/push.ts";
import { userConfFiles } from "../nix/config.ts";
import type { JobPlan } from "../policy.ts";
import type { Settings } from "../settings.ts";
import { writeTokenFile } from "../token.ts";
import { spawnDaemon, type DaemonReady } from "./daemon.ts";
import { giveUpOnDaemon, hookConfText, niks3HookServeArgs, pendingSendPids, tokenScriptCommand, writeHookFiles } from "./hook.ts";
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
  /** The daemon, when this process started it (ci). */
  process: BackgroundProcess | undefined;
  /** Settles once niks3-hook listens, or has failed to (then state.daemonFailure says why). */
  daemonReady: Promise<DaemonReady> | undefined;
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

interface SpawnedUploadDaemon {
  process: BackgroundProcess;
  ready: Promise<DaemonReady>;
  state: NonNullable<UploadState["daemon"]>;
  nixEnv: Record<string, string>;
}

async function spawnUploadDaemon(job: UploadJob, options: BeginOptions, stateDir: string, tokenDir: string, lines: string[]): Promise<SpawnedUploadDaemon> {
  const niks3Hook = job.install?.niks3Hook ?? "";
  const socket = join(stateDir, "hook.sock");
  const dbPath = join(stateDir, "queue.db");
  const logFile = options.detached ? join(stateDir, "niks3-hook.log") : undefined;
  const nixStore = (await findOnPath(job.childEnv.PATH ?? "", "nix-store")) ?? "";
  const hook = writeHookFiles(stateDir, { niks3Hook, nixStore, socket });
  const conf = join(stateDir, "upload.conf");
  writeFileSync(conf, hookConfText(hook), { mode: 0o644 });
  const args = niks3HookServeArgs({
    serverUrl: job.settings.serverUrl,
    tokenScript: tokenScriptCommand(options.helper, join(tokenDir, "token")),
    socket,
    dbPath,
    idleExitSeconds: options.idleExitSeconds,
    debug: job.settings.debug,
  });
  const spawned = await spawnDaemon({
    niks3Hook,
    args,
    env: job.childEnv,
    cwd: options.cwd,
    socket,
    detached: options.detached,
    ...(logFile !== undefined
      ? { logFile }
      : {
          onLine: (line: string) => {
            lines.push(line);
            options.log.raw(`${line}\n`);
          },
        }),
  });
  const pid = spawned.process.pid;
  return {
    ...spawned,
    state: { pid, startTime: await processStartTime(pid), niks3Hook, args, socket, dbPath, logFile },
    nixEnv: { NIX_USER_CONF_FILES: userConfFiles(conf, job.childEnv) },
  };
}

/**
 * beginUpload picks the mode, says which and why (once), and starts uploading. In daemon mode it
 * does not wait for niks3-hook to listen unless the process is about to exit (setup): the build
 * can start at once, since the hook's sends wait for the socket themselves.
 */
export async function beginUpload(job: UploadJob, options: BeginOptions): Promise<UploadSession> {
  const decision = await decide(job, options);
  const base = { schema: 1 as const, startedAt: Date.now(), niks3: job.install?.niks3 };
  if (decision.mode === "none" || job.settings.token === undefined) {
    options.log.info(describeMode(decision));
    const state = { ...base, ...decision, stateDir: undefined, tokenDir: undefined, daemon: undefined, daemonFailure: undefined, listing: undefined };
    return { state, nixEnv: {}, process: undefined, daemonReady: undefined, lines: [] };
  }
  const stateDir = makeStateDir();
  const lines: string[] = [];
  const session: UploadSession = {
    state: { ...base, ...decision, stateDir, tokenDir: undefined, daemon: undefined, daemonFailure: undefined, listing: undefined },
    nixEnv: {},
    process: undefined,
    daemonReady: undefined,
    lines,
  };
  if (decision.mode === "daemon") {
    const tokenFile = writeTokenFile(job.settings.token, stateDir, { keepAfterExit: options.detached });
    const daemon = await spawnUploadDaemon(job, options, stateDir, dirname(tokenFile.path), lines);
    Object.assign(session.state, { tokenDir: dirname(tokenFile.path), daemon: daemon.state });
    session.nixEnv = daemon.nixEnv;
    session.process = daemon.process;
    session.daemonReady = daemon.ready.then((ready) => {
      if (!ready.ok) {
        // The hook keeps recording what Nix builds; endUpload pushes it after the build.
        giveUpOnDaemon(stateDir);
        tokenFile.remove();
        Object.assign(session.state, { tokenDir: undefined, daemon: undefined, daemonFailure: ready.why });
        options.log.warn(`niks3-hook did not start (${ready.why}); what Nix builds is pushed after the build instead`);
      }
      return ready;
    });
    options.log.info(describeMode(decision));
    if (options.detached) await session.daemonReady;
    // The hook's sends run beside Nix, not under this process: a cancelled job stops them too.
    else trackChild(() => pendingSendPids(stateDir).forEach((pid) => signalProcess(pid, "SIGTERM")));
    return session;
  }
  session.state.listing = join(stateDir, "store-before.txt");
  await saveListing(session.state.listing, await listStore(storeDirOf(job.childEnv)));
  options.log.info(describeMode(decision));
  return session;
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
