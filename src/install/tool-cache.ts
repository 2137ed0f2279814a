// Tool-cache verbs for niks3, after actions/toolkit tool-cache: small functions that take and return
// paths. A cached version lives in `<cacheDir>/<version>/<asset stem>/` and counts only once its
// marker `<…>/<asset stem>.complete` exists; the marker is written last. The folder only ever
// appears by an atomic rename of a verified, fully extracted temp folder. Nothing here downloads.

import { constants } from "node:fs";
import { access, mkdir, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { delimiter, dirname, join, relative, resolve } from "node:path";
import { InstallError } from "../errors.ts";
import { sha256File } from "./checksums.ts";

/** isExecutableFile: a regular file (after symlinks) that this process may execute. */
export async function isExecutableFile(path: string): Promise<boolean> {
  try {
    const info = await stat(path);
    if (!info.isFile()) return false;
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** findOnPath returns the absolute path of the first executable `name` in a PATH string. Empty entries are skipped. */
export async function findOnPath(pathList: string, name: string): Promise<string | undefined> {
  for (const entry of pathList.split(delimiter)) {
    if (entry === "") continue;
    const candidate = resolve(entry, name);
    if (await isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

/** cachedToolDir is where a version's binaries live in the cache. */
export function cachedToolDir(cacheDir: string, version: string, stem: string): string {
  return join(resolve(cacheDir), version, stem);
}

function markerPath(toolDir: string): string {
  return `${toolDir}.complete`;
}

/** findCached returns the cached folder when its marker exists and it holds an executable niks3. */
export async function findCached(toolDir: string): Promise<string | undefined> {
  try {
    await access(markerPath(toolDir));
  } catch {
    return undefined;
  }
  return (await isExecutableFile(join(toolDir, "niks3"))) ? toolDir : undefined;
}

// Only plain files and folders come out of a release archive: no links, devices or fifos.
const EXTRACTED_TYPES = new Set(["File", "OldFile", "ContiguousFile", "Directory"]);

/**
 * extractArchive unpacks a .tar.gz into `destDir` (which must exist). Owners are not preserved
 * (jobs often run as root), entries outside `destDir` are refused by tar, and any damage (a cut-off
 * gzip stream, not a tar at all) is a one-line InstallError naming the archive.
 */
export async function extractArchive(archive: string, destDir: string, label: string): Promise<void> {
  // Loaded here: only a job that downloads niks3 needs tar, and start-up time is for everyone.
  const tar = await import("tar");
  try {
    await tar.x({
      file: archive,
      cwd: destDir,
      strict: true,
      preserveOwner: false,
      filter: (_path, entry) => "type" in entry && EXTRACTED_TYPES.has(entry.type),
    });
  } catch (error) {
    const reason = error instanceof Error ? error.message.replace(/\s+/g, " ") : String(error);
    throw new InstallError(`niks3: archive ${label} is broken: ${reason}`);
  }
}

/** requireNiks3 fails unless an extracted archive holds an executable `niks3` at its root. */
export async function requireNiks3(extractedDir: string, label: string): Promise<void> {
  if (!(await isExecutableFile(join(extractedDir, "niks3")))) {
    throw new InstallError(`niks3: archive ${label} has no niks3 binary at its root`);
  }
}

export type CacheOutcome = "installed" | "existing";

/**
 * cacheInstall moves an extracted, verified folder to `toolDir` with one rename, then writes the
 * marker. When another install got there first with the same files (a racing job), its folder is
 * kept ("existing"), so nobody's niks3 vanishes under them. A folder there with other files (debris
 * of a crash, a tampered cache) is moved into `scratchDir`, which the caller deletes, and replaced.
 */
export async function cacheInstall(
  extractedDir: string,
  toolDir: string,
  scratchDir: string,
  markerText: string,
): Promise<CacheOutcome> {
  await mkdir(dirname(toolDir), { recursive: true });
  let outcome: CacheOutcome = "installed";
  for (let attempt = 1; !(await tryRename(extractedDir, toolDir)); attempt++) {
    if (await sameFiles(extractedDir, toolDir)) {
      outcome = "existing";
      break;
    }
    if (attempt > 3) {
      throw new InstallError(`niks3: could not move niks3 into ${toolDir}: a different folder keeps appearing there`);
    }
    await rename(toolDir, join(scratchDir, `replaced-${attempt}`)).catch(ignoreMissing);
  }
  await writeFile(markerPath(toolDir), markerText);
  return outcome;
}

/** sameFiles: every file in `expected` exists in `actual` with the same bytes (compared by sha256). */
async function sameFiles(expected: string, actual: string): Promise<boolean> {
  for (const entry of await readdir(expected, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const path = relative(expected, join(entry.parentPath, entry.name));
    const theirs = await sha256File(join(actual, path)).catch(() => undefined);
    if (theirs === undefined || theirs !== (await sha256File(join(expected, path)))) return false;
  }
  return true;
}

/** tryRename renames, returning false when the target already exists as a non-empty folder. */
async function tryRename(from: string, to: string): Promise<boolean> {
  try {
    await rename(from, to);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOTEMPTY" || code === "EEXIST") return false;
    throw error;
  }
}

function ignoreMissing(error: unknown): void {
  if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
}

/** removeQuietly deletes a temp folder, never masking the error that got us here. */
export async function removeQuietly(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true, maxRetries: 3 }).catch(() => undefined);
}
