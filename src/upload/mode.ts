// How what a job builds reaches the cache: the upload mode, picked once per job from facts probed
// beforehand (src/upload/probe.ts). Pure: no environment reads, no I/O.
//
//   plan does not push (fork MR, no token, push: never)   → none
//   the token's audience is not the server's               → none
//   upload_mode: store-diff                                → store-diff
//   no niks3-hook beside niks3                             → store-diff
//   upload_mode: daemon                                    → daemon (the user vouches for the hook)
//   Nix builds in this process (writable store, local)     → daemon
//   the user is in trusted-users (a Nix daemon builds)     → daemon
//   otherwise                                              → store-diff
//
// daemon: niks3-hook serve uploads each derivation's outputs as soon as Nix has built it, so what
//   finished before a failure (or a cancel) is cached. Only what was *built* here is uploaded: paths
//   substituted from other caches are not (cachix-action#206). Needs Nix to run a post-build-hook.
// store-diff: the store is listed before and after; every new valid path is pushed after the build.
//   Works for any user, also catches fetched sources, but uploads nothing while building, and on a
//   store shared by concurrent jobs it also pushes what the other jobs built.
// Both are followed by a push of the closures of the installables the job was asked for, so outputs
// that were already in a warm store are cached too (olafkfreund/nixarchy#450).

import type { UploadModeSetting } from "../settings-table.ts";

export type UploadMode = "daemon" | "store-diff" | "none";

export interface UploadFacts {
  /** Absolute path of niks3-hook, when the niks3 install has one. */
  niks3Hook: string | undefined;
  user: string;
  /** The user's groups, for `@group` entries in trusted-users (empty when not looked up). */
  groups: readonly string[];
  /** The store dir and Nix's database are writable by this user. */
  storeWritable: boolean;
  /** Nix's `store` setting (auto, local, daemon, unix://…); undefined when it could not be read. */
  store: string | undefined;
  /** Nix's trusted-users; undefined when it could not be read. */
  trustedUsers: readonly string[] | undefined;
  /** Why Nix's settings could not be read, if they could not. */
  probeError?: string;
}

export interface UploadModeInput {
  setting: UploadModeSetting;
  /** The plan pushes. */
  push: boolean;
  /** Why nothing is pushed although the plan would (the audience check), if so. */
  blockedPush: string | undefined;
}

export interface UploadModeDecision {
  mode: UploadMode;
  /** One clause saying why, shown after the mode. */
  reason: string;
}

/** isLocalStore: Nix opens the store itself rather than asking a daemon (`auto` does when it can write). */
export function isLocalStore(facts: Pick<UploadFacts, "store" | "storeWritable">): boolean {
  const store = facts.store ?? "auto";
  if (store === "auto") return facts.storeWritable;
  return (store === "local" || store.startsWith("local?") || store.startsWith("/")) && facts.storeWritable;
}

/** isTrustedUser: trusted-users names the user, one of its groups (`@wheel`), or everyone (`*`). */
export function isTrustedUser(user: string, groups: readonly string[], trusted: readonly string[]): boolean {
  return trusted.some((entry) => entry === "*" || entry === user || (entry.startsWith("@") && groups.includes(entry.slice(1))));
}

/** pickUploadMode applies the table at the top of this file. */
export function pickUploadMode(input: UploadModeInput, facts: UploadFacts): UploadModeDecision {
  if (!input.push) return { mode: "none", reason: "this job only pulls (see the notice above)" };
  if (input.blockedPush !== undefined) return { mode: "none", reason: "the server would refuse the token (see the warning above)" };
  if (input.setting === "store-diff") return { mode: "store-diff", reason: "upload_mode is store-diff" };
  if (facts.niks3Hook === undefined) return { mode: "store-diff", reason: "the niks3 install has no niks3-hook beside niks3" };
  if (input.setting === "daemon") return { mode: "daemon", reason: "upload_mode is daemon" };
  if (isLocalStore(facts)) {
    return { mode: "daemon", reason: `Nix builds in this job's own store (writable by ${facts.user}), so it runs a post-build-hook` };
  }
  if (facts.trustedUsers === undefined) {
    return { mode: "store-diff", reason: `Nix's settings could not be read (${facts.probeError ?? "unknown error"}), so a post-build-hook may be ignored` };
  }
  if (isTrustedUser(facts.user, facts.groups, facts.trustedUsers)) {
    return { mode: "daemon", reason: `${facts.user} is in Nix's trusted-users, so the Nix daemon runs a post-build-hook` };
  }
  return {
    mode: "store-diff",
    reason: `the Nix daemon builds and ${facts.user} is not in its trusted-users, so it would ignore a post-build-hook`,
  };
}

/** describeMode is the one line that says how this job uploads, and why. */
export function describeMode(decision: UploadModeDecision): string {
  if (decision.mode === "daemon") return `uploading while building (niks3-hook): ${decision.reason}`;
  if (decision.mode === "store-diff") return `uploading after the build (store diff): ${decision.reason}`;
  return `not uploading: ${decision.reason}`;
}
