// installNiks3: find or install the niks3 CLI (product.md, step 2). In order: a niks3 on PATH, the
// job's cache folder, then the pinned release archive, downloaded (src/edges/http.ts), checked
// against the release's checksums.txt and the pinned sha256, extracted into a temp folder inside
// the cache folder and renamed into place. The caller resolves settings and env; nothing here reads
// process.env. Whatever fails, no temp folder, partial download or half-extracted tree remains.

import { mkdir, mkdtemp } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import type { Dispatcher } from "undici";
import {
  createHttpDispatcher,
  describeError,
  displayUrl,
  downloadToFile,
  getText,
  HttpError,
  isRetryable,
  type HttpOptions,
} from "../edges/http.ts";
import { InstallError, Niks3GitlabError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { parseChecksums, verifySha256 } from "./checksums.ts";
import { assetStem } from "./platform.ts";
import {
  cacheInstall,
  cachedToolDir,
  extractArchive,
  findCached,
  findOnPath,
  isExecutableFile,
  removeQuietly,
  requireNiks3,
} from "./tool-cache.ts";

export { assetName, assetStem } from "./platform.ts";
export { parseChecksums, sha256File, verifySha256 } from "./checksums.ts";

export interface InstallOptions {
  /** The release, e.g. "1.7.0" (a leading "v" is accepted). */
  version: string;
  /** Base URL of the release archives: `<downloadUrl>/v<version>/<asset>`. */
  downloadUrl: string;
  /** The job's cache folder (under the project dir, so the template's `cache:` keeps it). */
  cacheDir: string;
  /** The PATH string to search for an installed niks3. */
  path: string;
  /** os.platform() */
  platform: string;
  /** os.arch() or `uname -m` */
  arch: string;
  /**
   * sha256 pinned in component.yml, checked in addition to checksums.txt: one hex digest for this
   * platform's asset, or the manifest's map from asset name to digest (assets it lacks are checked
   * against checksums.txt only).
   */
  pinnedSha256?: string | Readonly<Record<string, string>>;
  log: Logger;
  /** How to wait between download attempts (tests inject a recorder). */
  sleep?: (ms: number) => Promise<void>;
  /** Retry, timeout and proxy settings for the download (`proxyEnv` or a `dispatcher`). */
  http?: HttpOptions;
}

export interface Niks3Install {
  /** Absolute path of the niks3 binary. */
  niks3: string;
  /** Absolute path of niks3-hook when it sits beside niks3. */
  niks3Hook?: string;
  source: "path" | "cache" | "download";
  /** The folder holding the binaries. */
  dir: string;
}

/** installNiks3 returns a usable niks3, installing the pinned release into the cache folder if needed. */
export async function installNiks3(options: InstallOptions): Promise<Niks3Install> {
  const { log } = options;
  const onPath = await findOnPath(options.path, "niks3");
  if (onPath !== undefined) {
    const found = await describeInstall(onPath, "path");
    log.info(`using niks3 from PATH: ${onPath}${found.niks3Hook ? " (niks3-hook beside it)" : ""}`);
    return found;
  }

  const version = normalizeVersion(options.version);
  const stem = assetStem(options.platform, options.arch);
  const toolDir = cachedToolDir(options.cacheDir, version, stem);
  const cached = await findCached(toolDir);
  if (cached !== undefined) {
    log.info(`using niks3 ${version} from cache: ${cached}`);
    return describeInstall(join(cached, "niks3"), "cache");
  }
  return downloadNiks3(options, version, stem, toolDir);
}

async function downloadNiks3(options: InstallOptions, version: string, stem: string, toolDir: string): Promise<Niks3Install> {
  const { log } = options;
  const asset = `${stem}.tar.gz`;
  const base = `${options.downloadUrl.replace(/\/+$/, "")}/v${version}`;
  const assetUrl = `${base}/${asset}`;
  const pinned = pinnedFor(options.pinnedSha256, asset);

  const cacheDir = resolve(options.cacheDir);
  await mkdir(cacheDir, { recursive: true });
  const scratch = await mkdtemp(join(cacheDir, ".niks3-tmp-"));
  const ownDispatcher = options.http?.dispatcher ? undefined : await createHttpDispatcher(options.http?.proxyEnv, options.http?.timeoutMs);
  const http = httpOptions(options, ownDispatcher);
  try {
    log.info(`downloading niks3 ${version} (${asset}) from ${displayUrl(assetUrl)}`);
    const sums = parseChecksums(await fetchAsset(`${base}/checksums.txt`, version, http, (url) => getText(url, http)));
    const expected = sums.get(asset);
    if (expected === undefined) {
      throw new InstallError(
        `niks3: checksums.txt of niks3 ${version} lists no ${asset}; refusing to install an unverified archive`,
      );
    }
    const archive = join(scratch, asset);
    await fetchAsset(assetUrl, version, http, (url) => downloadToFile(url, archive, http));
    const actual = await verifySha256(archive, expected, `${asset} (checksums.txt)`);
    if (pinned !== undefined) await verifySha256(archive, pinned, `${asset} (pinned in component.yml)`);
    log.info(`verified sha256 ${actual} of ${asset} against checksums.txt${pinned ? " and the pinned sha256" : ""}`);

    const extracted = join(scratch, stem);
    await mkdir(extracted);
    await extractArchive(archive, extracted, asset);
    await requireNiks3(extracted, asset);
    const outcome = await cacheInstall(extracted, toolDir, scratch, `${asset} ${actual}\n`);
    log.info(
      outcome === "installed"
        ? `installed niks3 ${version} into ${toolDir}`
        : `niks3 ${version} appeared in ${toolDir} meanwhile (another install); using it`,
    );
    return describeInstall(join(toolDir, "niks3"), "download");
  } finally {
    await removeQuietly(scratch);
    await ownDispatcher?.close().catch(() => undefined);
  }
}

/** fetchAsset runs one download and turns HTTP and network failures into one-line InstallErrors. */
async function fetchAsset<T>(url: string, version: string, http: HttpOptions, run: (url: string) => Promise<T>): Promise<T> {
  try {
    return await run(url);
  } catch (error) {
    if (error instanceof HttpError && error.status === 404) {
      throw new InstallError(
        `niks3: niks3 ${version} has no release asset ${error.url} (404); set NIKS3_VERSION or NIKS3_DOWNLOAD_URL`,
      );
    }
    if (error instanceof InstallError) throw error;
    const reason = error instanceof Niks3GitlabError ? error.message.replace(/^niks3: /, "") : describeError(error);
    const tries = error instanceof HttpError && isRetryable(error) ? ` after ${http.attempts ?? 4} attempts` : "";
    const wrapped = new InstallError(`niks3: could not download niks3 ${version}: ${reason}${tries}`);
    wrapped.cause = error;
    throw wrapped;
  }
}

function httpOptions(options: InstallOptions, dispatcher: Dispatcher | undefined): HttpOptions {
  return {
    ...options.http,
    ...(dispatcher ? { dispatcher } : {}),
    ...(options.sleep ? { sleep: options.sleep } : {}),
    log: options.http?.log ?? options.log,
  };
}

async function describeInstall(niks3: string, source: Niks3Install["source"]): Promise<Niks3Install> {
  const dir = dirname(niks3);
  const hook = join(dir, "niks3-hook");
  return {
    niks3,
    ...((await isExecutableFile(hook)) ? { niks3Hook: hook } : {}),
    source,
    dir,
  };
}

function pinnedFor(pinned: InstallOptions["pinnedSha256"], asset: string): string | undefined {
  if (pinned === undefined || typeof pinned === "string") return pinned || undefined;
  return Object.hasOwn(pinned, asset) ? pinned[asset] : undefined;
}

/** normalizeVersion accepts "1.7.0" or "v1.7.0"; the version becomes a folder name, so it must be a plain one. */
function normalizeVersion(version: string): string {
  const plain = version.trim().replace(/^v/, "");
  if (!/^[0-9][0-9A-Za-z.+_-]*$/.test(plain) || plain.includes("..")) {
    throw new InstallError(`niks3: niks3 version must look like 1.7.0, got "${version}"; set NIKS3_VERSION`);
  }
  return plain;
}
