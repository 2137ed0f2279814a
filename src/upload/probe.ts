// Probing the facts the upload mode is picked from (src/upload/mode.ts): who we are, whether Nix
// builds in this process's store, and Nix's trusted-users. Runs `nix show-config --json` (or
// `nix config show --json` where that is gone), and `id -Gn` only when trusted-users names a group.

import { constants } from "node:fs";
import { access } from "node:fs/promises";
import { userInfo } from "node:os";
import { join } from "node:path";
import { runProcess } from "../edges/proc.ts";
import { NIX_FEATURES } from "../nix/build.ts";
import type { UploadFacts } from "./mode.ts";
import { storeDirOf } from "./store-diff.ts";

export interface NixSettings {
  store: string | undefined;
  trustedUsers: string[] | undefined;
}

/** parseNixConfigJson reads `nix config show --json`: each setting is `{value, …}` (or a bare value). */
export function parseNixConfigJson(text: string): NixSettings {
  const data = JSON.parse(text) as Record<string, unknown>;
  const valueOf = (key: string): unknown => {
    const entry = data[key];
    return entry !== null && typeof entry === "object" && !Array.isArray(entry) && "value" in entry ? (entry as { value: unknown }).value : entry;
  };
  const store = valueOf("store");
  const trusted = valueOf("trusted-users");
  return {
    store: typeof store === "string" ? store : undefined,
    trustedUsers: Array.isArray(trusted)
      ? trusted.filter((u): u is string => typeof u === "string")
      : typeof trusted === "string"
        ? trusted.split(/\s+/).filter(Boolean)
        : undefined,
  };
}

async function writable(path: string): Promise<boolean> {
  try {
    await access(path, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The spellings of Nix's settings command, tried in turn. Every Nix and Lix in use knows
 * `show-config` (since 2.20 a deprecated alias of `config show`, which warns on stderr); a Nix
 * without the alias costs one more start. Not both at once: each Nix start takes a core while the
 * helper is still loading, on the way to the build.
 */
const SETTINGS_COMMANDS = [["show-config"], ["config", "show"]];

async function readNixSettings(env: NodeJS.ProcessEnv): Promise<NixSettings & { error?: string }> {
  let last = "";
  for (const command of SETTINGS_COMMANDS) {
    const result = await runProcess("nix", [...command, ...NIX_FEATURES, "--json"], { env });
    if (result.exitCode === 0) {
      try {
        return parseNixConfigJson(result.stdout);
      } catch {
        last = `nix ${command.join(" ")} printed no JSON`;
        continue;
      }
    }
    last = result.stderr.trim().split("\n").at(-1) || `nix ${command.join(" ")} exited with code ${result.exitCode}`;
  }
  return { store: undefined, trustedUsers: undefined, error: last };
}

/**
 * nixUserName: the name the Nix daemon matches against trusted-users. That is the passwd name, or
 * the uid where /etc/passwd has no entry for it (a container run with a bare `--user 1000`), where
 * Node's userInfo() throws.
 */
function nixUserName(): string {
  try {
    return userInfo().username;
  } catch {
    return String(process.getuid?.() ?? "");
  }
}

/** probeUploadFacts gathers the facts once, before anything is built. */
export async function probeUploadFacts(env: NodeJS.ProcessEnv, niks3Hook: string | undefined): Promise<UploadFacts> {
  const storeDir = storeDirOf(env);
  const stateDir = env.NIX_STATE_DIR || "/nix/var/nix";
  const [settings, storeOk, dbOk] = await Promise.all([readNixSettings(env), writable(storeDir), writable(join(stateDir, "db"))]);
  const user = nixUserName();
  let groups: string[] = [];
  if (settings.trustedUsers?.some((entry) => entry.startsWith("@"))) {
    const id = await runProcess("id", ["-Gn"], { env });
    groups = id.exitCode === 0 ? id.stdout.trim().split(/\s+/) : [];
  }
  return {
    niks3Hook,
    user,
    groups,
    storeWritable: storeOk && dbOk,
    store: settings.store,
    trustedUsers: settings.trustedUsers,
    ...(settings.error !== undefined ? { probeError: settings.error } : {}),
  };
}
