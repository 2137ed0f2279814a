// niks3-pathinfo: how the niks3 double learns about store paths, as niks3 does: the store dir
// (NIX_STORE_DIR, else `nix eval builtins.storeDir`, else /nix/store), symlink resolution until a
// path is inside the store, `nix path-info --recursive --json` in both JSON shapes, build logs, and
// realisations of CA paths.

import { execFile, execFileSync } from "node:child_process";
import { existsSync, readlinkSync } from "node:fs";
import { basename, dirname, isAbsolute, join } from "node:path";
import { goFsError } from "./niks3-token.ts";
import { hashFromPathInfo, isNix32, NIX32_ALPHABET, toNix32Hash } from "./nix32.ts";

export interface PathInfo {
  path: string;
  narHash: string;
  narSize: number;
  references: string[] | null;
  deriver?: string;
  signatures?: string[];
  ca?: string;
}

export interface Realisation {
  id: string;
  outPath: string;
  signatures?: string[];
  dependentRealisations?: Record<string, string>;
}

/** getStoreDir mirrors client.GetStoreDir. */
export function getStoreDir(env: NodeJS.ProcessEnv): string {
  if (env.NIX_STORE_DIR) return env.NIX_STORE_DIR;
  try {
    const out = execFileSync("nix", ["--extra-experimental-features", "nix-command", "eval", "--raw", "--expr", "builtins.storeDir"], {
      stdio: ["ignore", "pipe", "ignore"],
    });
    const dir = out.toString("utf8").trim();
    if (dir !== "") return dir;
  } catch {
    // fall through, like niks3
  }
  return "/nix/store";
}

/** resolveSymlinks mirrors client.resolveSymlinks: follow links until the path is in the store. */
export function resolveSymlinks(paths: readonly string[], storeDir: string): string[] {
  return paths.map((path) => {
    let cur = path;
    for (let i = 0; i < 255; i++) {
      if (cur.startsWith(storeDir + "/")) break;
      let target: string;
      try {
        target = readlinkSync(cur);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") {
          throw new Error(`path does not exist: ${cur}: ${goFsError("readlink", cur, err)}`);
        }
        break;
      }
      cur = isAbsolute(target) ? target : join(dirname(cur), target);
    }
    return cur;
  });
}

/** getStorePathHash mirrors client.GetStorePathHash. */
export function getStorePathHash(storePath: string): string {
  const base = basename(storePath);
  const dash = base.indexOf("-");
  if (dash < 0) throw new Error(`invalid store path format (missing hyphen): ${storePath}`);
  const hash = base.slice(0, dash);
  if (hash.length !== 32) throw new Error(`invalid hash length ${hash.length} (expected 32): ${storePath}`);
  if (!isNix32(hash, 32)) {
    const i = [...hash].findIndex((ch) => !NIX32_ALPHABET.includes(ch));
    throw new Error(`invalid character '${hash[i] ?? ""}' at position ${i} in hash: ${storePath}`);
  }
  return hash;
}

function caString(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (value === null || typeof value !== "object") return undefined;
  const { method, hash } = value as { method?: unknown; hash?: unknown };
  if (typeof method !== "string" || method === "") return undefined;
  const sri = hashFromPathInfo(hash);
  let h: string;
  try {
    h = toNix32Hash(sri);
  } catch {
    h = sri;
  }
  const prefix: Record<string, string> = { text: "text:", flat: "fixed:", nar: "fixed:r:", git: "fixed:git:" };
  return (prefix[method] ?? `${method}:`) + h;
}

function toPathInfo(path: string, raw: Record<string, unknown>): PathInfo {
  const info: PathInfo = {
    path,
    narHash: hashFromPathInfo(raw.narHash),
    narSize: typeof raw.narSize === "number" ? raw.narSize : 0,
    references: Array.isArray(raw.references) ? raw.references.map(String) : null,
  };
  if (typeof raw.deriver === "string") info.deriver = raw.deriver;
  if (Array.isArray(raw.signatures)) info.signatures = raw.signatures.map(String);
  const ca = caString(raw.ca);
  if (ca !== undefined) info.ca = ca;
  return info;
}

/** parsePathInfoJson accepts Nix's object keyed by path (≥ 2.19) and the array shape (Nix 2.8, Lix). */
export function parsePathInfoJson(text: string): Map<string, PathInfo> {
  const data: unknown = JSON.parse(text);
  const out = new Map<string, PathInfo>();
  if (Array.isArray(data)) {
    for (const item of data as Record<string, unknown>[]) {
      const path = String(item.path ?? "");
      out.set(path, toPathInfo(path, item));
    }
  } else if (data !== null && typeof data === "object") {
    for (const [path, item] of Object.entries(data as Record<string, unknown>)) {
      if (item === null) throw new Error(`path '${path}' is not valid`);
      out.set(path, toPathInfo(path, item as Record<string, unknown>));
    }
  } else {
    throw new Error("parsing nix path-info output: unexpected JSON");
  }
  return out;
}

/** getPathInfoRecursive runs the exact command niks3 runs and parses its output. */
export function getPathInfoRecursive(paths: readonly string[]): Promise<Map<string, PathInfo>> {
  const args = ["--extra-experimental-features", "nix-command", "path-info", "--recursive", "--json", "--", ...paths];
  return new Promise((resolve, reject) => {
    execFile("nix", args, { maxBuffer: 1 << 30 }, (err, stdout, stderr) => {
      const cmd = "nix " + args.join(" ");
      if (err) {
        const status = typeof err.code === "number" ? `exit status ${err.code}` : err.message;
        reject(new Error(`command failed: ${cmd}\nstderr: ${stderr}\nerror: ${status}`));
        return;
      }
      try {
        resolve(parsePathInfoJson(stdout));
      } catch (e) {
        reject(new Error(`parsing nix path-info output: ${(e as Error).message}`));
      }
    });
  });
}

/** getBuildLogPath mirrors client.GetBuildLogPath: <store parent>/var/log/nix/drvs/xx/rest[.bz2]. */
export function getBuildLogPath(drvPath: string): string {
  const drvName = basename(drvPath);
  const logPath = join(dirname(dirname(drvPath)), "var", "log", "nix", "drvs", drvName.slice(0, 2), drvName.slice(2));
  if (existsSync(logPath)) return logPath;
  if (existsSync(logPath + ".bz2")) return logPath + ".bz2";
  return "";
}

/** queryRealisations mirrors client.QueryRealisations: only CA paths, failures are skipped. */
export function queryRealisations(infos: Map<string, PathInfo>): Map<string, Realisation> {
  const result = new Map<string, Realisation>();
  const caPaths = [...infos.values()].filter((i) => i.ca).map((i) => i.path);
  if (caPaths.length === 0) return result;
  let out: Buffer;
  try {
    out = execFileSync("nix", ["--extra-experimental-features", "nix-command ca-derivations", "realisation", "info", "--json", ...caPaths], {
      stdio: ["ignore", "pipe", "ignore"],
    });
  } catch {
    return result;
  }
  for (const r of JSON.parse(out.toString("utf8")) as Realisation[]) result.set(`realisations/${r.id}.doi`, r);
  return result;
}
