// installNiks3 end to end against a loopback release server (and a loopback proxy): PATH, cache,
// download, verification, damaged archives, races. After every failure the cache folder must hold
// no temp folder, partial download or half-extracted tree.
import { execFile } from "node:child_process";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import * as tar from "tar";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { InstallError } from "../../src/errors.ts";
import { installNiks3, type InstallOptions } from "../../src/install/index.ts";
import { memoryLogger } from "../../src/log.ts";
import {
  buildArchive,
  checksumsTxt,
  type ArchiveFile,
  fakeNiks3Script,
  niks3Archive,
  releaseHandler,
  sendTruncated,
  sha256Hex,
  startProxy,
  startServer,
  type Override,
  type TestServer,
} from "../helpers/release-server.ts";

const VERSION = "1.7.0";
const ASSET = "niks3_Linux_x86_64.tar.gz";
const run = promisify(execFile);

let work: string;
let cacheDir: string;
let emptyPath: string;
let archive: Buffer;
let servers: TestServer[] = [];

beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), "niks3-install-"));
  cacheDir = join(work, "cache");
  emptyPath = join(work, "empty-bin");
  await mkdir(emptyPath);
  archive ??= await niks3Archive(VERSION);
});
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
  await rm(work, { recursive: true, force: true });
});

/** release serves VERSION's assets (our archive under ASSET, unless `files` says otherwise). */
async function release(files: Record<string, Buffer | string> = {}, override?: Override): Promise<TestServer> {
  const assets: Record<string, Buffer | string> = { [ASSET]: archive, ...files };
  const sums: Record<string, string> = Object.hasOwn(files, "checksums.txt") ? {} : { "checksums.txt": checksumsTxt(asBuffers(assets)) };
  const server = await startServer(releaseHandler(VERSION, { ...assets, ...sums }, override));
  servers.push(server);
  return server;
}

function asBuffers(files: Record<string, Buffer | string>): Record<string, Buffer> {
  return Object.fromEntries(Object.entries(files).map(([k, v]) => [k, Buffer.from(v)]));
}

function setup(server: TestServer, over: Partial<InstallOptions> = {}) {
  const log = memoryLogger();
  const delays: number[] = [];
  const options: InstallOptions = {
    version: VERSION,
    downloadUrl: server.url,
    cacheDir,
    path: emptyPath,
    platform: "linux",
    arch: "x64",
    log,
    sleep: async (ms) => void delays.push(ms),
    ...over,
  };
  return { options, log, delays };
}

/** cacheFiles lists everything under the cache folder, relative to it. */
async function cacheFiles(): Promise<string[]> {
  try {
    return (await readdir(cacheDir, { recursive: true })).sort();
  } catch {
    return [];
  }
}

/** expectCleanFailure: a one-line InstallError, and nothing left in the cache folder. */
async function expectCleanFailure(promise: Promise<unknown>, message: string | RegExp): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(InstallError);
  const text = (error as Error).message;
  if (typeof message === "string") expect(text).toBe(message);
  else expect(text).toMatch(message);
  expect(text).not.toContain("\n");
  expect(await cacheFiles()).toEqual([]);
  return text;
}

const assetRequests = (server: TestServer) => server.requests.filter((r) => r.url.endsWith(".tar.gz"));

describe("installNiks3", () => {
  it("downloads, verifies and caches; the second call is a cache hit with no request", async () => {
    const server = await release();
    const first = setup(server);
    const installed = await installNiks3(first.options);
    const dir = join(cacheDir, VERSION, "niks3_Linux_x86_64");
    expect(installed).toEqual({ niks3: join(dir, "niks3"), niks3Hook: join(dir, "niks3-hook"), source: "download", dir });
    expect((await run(installed.niks3, [])).stdout).toBe(`niks3 ${VERSION}\n`);
    expect(server.requests.map((r) => r.url)).toEqual([`/v${VERSION}/checksums.txt`, `/v${VERSION}/${ASSET}`]);
    expect(first.log.lines).toEqual([
      `info: downloading niks3 ${VERSION} (${ASSET}) from ${server.url}/v${VERSION}/${ASSET}`,
      `info: verified sha256 ${sha256Hex(archive)} of ${ASSET} against checksums.txt`,
      `info: installed niks3 ${VERSION} into ${dir}`,
    ]);
    expect(await cacheFiles()).toEqual([
      VERSION,
      `${VERSION}/niks3_Linux_x86_64`,
      `${VERSION}/niks3_Linux_x86_64.complete`,
      `${VERSION}/niks3_Linux_x86_64/README.md`,
      `${VERSION}/niks3_Linux_x86_64/niks3`,
      `${VERSION}/niks3_Linux_x86_64/niks3-hook`,
    ]);

    const second = setup(server);
    const again = await installNiks3(second.options);
    expect(again).toEqual({ ...installed, source: "cache" });
    expect(server.requests).toHaveLength(2);
    expect(second.log.lines).toEqual([`info: using niks3 ${VERSION} from cache: ${dir}`]);
  });

  it("uses an executable niks3 on PATH, with niks3-hook beside it, and touches neither cache nor network", async () => {
    const server = await release();
    const notExecutable = join(work, "a");
    const bin = join(work, "b");
    await mkdir(notExecutable);
    await mkdir(bin);
    await writeFile(join(notExecutable, "niks3"), "not executable");
    await mkdir(join(work, "c", "niks3"), { recursive: true }); // a folder named niks3 is no binary
    for (const name of ["niks3", "niks3-hook"]) {
      await writeFile(join(bin, name), fakeNiks3Script("9.9.9"));
      await chmod(join(bin, name), 0o755);
    }
    const { options, log } = setup(server, { path: ["", notExecutable, join(work, "c"), bin, emptyPath].join(":") });
    const installed = await installNiks3(options);
    expect(installed).toEqual({ niks3: join(bin, "niks3"), niks3Hook: join(bin, "niks3-hook"), source: "path", dir: bin });
    expect(log.lines).toEqual([`info: using niks3 from PATH: ${join(bin, "niks3")} (niks3-hook beside it)`]);
    expect(server.requests).toEqual([]);
    expect(await cacheFiles()).toEqual([]);
  });

  it("a PATH hit needs no supported platform", async () => {
    const bin = join(work, "bin");
    await mkdir(bin);
    await writeFile(join(bin, "niks3"), fakeNiks3Script("1"), { mode: 0o755 });
    const server = await release();
    const { options } = setup(server, { path: bin, platform: "win32" });
    expect(await installNiks3(options)).toEqual({ niks3: join(bin, "niks3"), source: "path", dir: bin });
  });

  it("maps aarch64 to the arm64 asset", async () => {
    const server = await release({ "niks3_Linux_arm64.tar.gz": archive });
    const { options } = setup(server, { arch: "aarch64" });
    const installed = await installNiks3(options);
    expect(installed.dir).toBe(join(cacheDir, VERSION, "niks3_Linux_arm64"));
    expect(assetRequests(server).map((r) => r.url)).toEqual([`/v${VERSION}/niks3_Linux_arm64.tar.gz`]);
  });

  it("fails on an unsupported platform before any request", async () => {
    const server = await release();
    const { options } = setup(server, { platform: "win32", arch: "x64" });
    await expectCleanFailure(
      installNiks3(options),
      "niks3: unsupported platform: win32/x64 (niks3 ships linux and darwin, x86_64 and arm64)",
    );
    expect(server.requests).toEqual([]);
  });

  it("explains a version without release assets (404)", async () => {
    const server = await release();
    const { options } = setup(server, { version: "9.9.9" });
    await expectCleanFailure(
      installNiks3(options),
      `niks3: niks3 9.9.9 has no release asset ${server.url}/v9.9.9/checksums.txt (404); set NIKS3_VERSION or NIKS3_DOWNLOAD_URL`,
    );
    expect(server.requests).toHaveLength(1);
  });

  it("explains a missing archive (404) that checksums.txt lists", async () => {
    const server = await release({}, (req, res) => {
      if (!req.url?.endsWith(ASSET)) return false;
      res.writeHead(404).end();
      return true;
    });
    const { options } = setup(server);
    await expectCleanFailure(
      installNiks3(options),
      `niks3: niks3 ${VERSION} has no release asset ${server.url}/v${VERSION}/${ASSET} (404); set NIKS3_VERSION or NIKS3_DOWNLOAD_URL`,
    );
  });

  it("retries 503 twice, then succeeds", async () => {
    const server = await release({}, (req, res) => {
      if (!req.url?.endsWith(ASSET) || assetRequests(server).length > 2) return false;
      res.writeHead(503).end("busy");
      return true;
    });
    const { options, log, delays } = setup(server);
    const installed = await installNiks3(options);
    expect(installed.source).toBe("download");
    expect(assetRequests(server)).toHaveLength(3);
    expect(delays).toHaveLength(2);
    expect(log.lines.filter((l) => l.startsWith("warn:"))).toEqual([
      expect.stringMatching(/^warn: GET .*\/niks3_Linux_x86_64\.tar\.gz failed \(HTTP 503\); retry 1 of 3 in /),
      expect.stringMatching(/^warn: GET .*\/niks3_Linux_x86_64\.tar\.gz failed \(HTTP 503\); retry 2 of 3 in /),
    ]);
  });

  it("gives up on a server that keeps failing, in one line", async () => {
    const server = await release({}, (req, res) => {
      if (!req.url?.endsWith(ASSET)) return false;
      res.writeHead(502).end();
      return true;
    });
    const { options, delays } = setup(server);
    await expectCleanFailure(
      installNiks3(options),
      `niks3: could not download niks3 ${VERSION}: GET ${server.url}/v${VERSION}/${ASSET} returned HTTP 502 after 4 attempts`,
    );
    expect(delays).toHaveLength(3);
  });

  it("retries an archive body cut short", async () => {
    const server = await release({}, (req, res) => {
      if (!req.url?.endsWith(ASSET) || assetRequests(server).length > 1) return false;
      sendTruncated(res, archive);
      return true;
    });
    const { options, delays } = setup(server);
    expect((await installNiks3(options)).source).toBe("download");
    expect(assetRequests(server)).toHaveLength(2);
    expect(delays).toHaveLength(1);
  });

  it("fails cleanly when every archive body is cut short", async () => {
    const server = await release({}, (req, res) => {
      if (!req.url?.endsWith(ASSET)) return false;
      sendTruncated(res, archive);
      return true;
    });
    const { options } = setup(server);
    await expectCleanFailure(
      installNiks3(options),
      new RegExp(`^niks3: could not download niks3 ${VERSION}: GET ${server.url}/v${VERSION}/${ASSET} failed after 4 attempts: `),
    );
    expect(assetRequests(server)).toHaveLength(4);
  });

  it("fails in one line on a truncated archive that checksums.txt vouches for", async () => {
    const broken = archive.subarray(0, Math.floor(archive.length / 2));
    const server = await release({ [ASSET]: broken });
    const { options } = setup(server);
    await expectCleanFailure(installNiks3(options), new RegExp(`^niks3: archive ${ASSET} is broken: `));
  });

  it("fails in one line on an archive that is no tar.gz at all", async () => {
    const server = await release({ [ASSET]: "<html><body>rate limited</body></html>" });
    const { options } = setup(server);
    await expectCleanFailure(installNiks3(options), new RegExp(`^niks3: archive ${ASSET} is broken: `));
  });

  it("fails closed on a sha256 mismatch against checksums.txt", async () => {
    const other = "f".repeat(64);
    const server = await release({ "checksums.txt": `${other}  ${ASSET}\n` });
    const { options } = setup(server);
    await expectCleanFailure(
      installNiks3(options),
      `niks3: sha256 mismatch for ${ASSET} (checksums.txt): expected ${other}, got ${sha256Hex(archive)}; refusing to install it`,
    );
  });

  it.each([
    { name: "one pinned digest", pin: (h: string) => h },
    { name: "the manifest's map", pin: (h: string) => ({ [ASSET]: h, "niks3_Darwin_arm64.tar.gz": "0".repeat(64) }) },
  ])("fails closed on a sha256 mismatch against the pin ($name)", async ({ pin }) => {
    const pinned = "e".repeat(64);
    const server = await release();
    const { options } = setup(server, { pinnedSha256: pin(pinned) });
    await expectCleanFailure(
      installNiks3(options),
      `niks3: sha256 mismatch for ${ASSET} (pinned in component.yml): expected ${pinned}, got ${sha256Hex(archive)}; refusing to install it`,
    );
  });

  it("accepts a matching pin and says so", async () => {
    const server = await release();
    const { options, log } = setup(server, { pinnedSha256: { [ASSET]: sha256Hex(archive).toUpperCase() } });
    await installNiks3(options);
    expect(log.lines).toContain(`info: verified sha256 ${sha256Hex(archive)} of ${ASSET} against checksums.txt and the pinned sha256`);
  });

  it("fails closed when checksums.txt does not list the asset, without downloading it", async () => {
    const server = await release({ "checksums.txt": `${"a".repeat(64)}  niks3_Darwin_arm64.tar.gz\n` });
    const { options } = setup(server);
    await expectCleanFailure(
      installNiks3(options),
      `niks3: checksums.txt of niks3 ${VERSION} lists no ${ASSET}; refusing to install an unverified archive`,
    );
    expect(assetRequests(server)).toEqual([]);
  });

  it.each<{ name: string; files: Record<string, ArchiveFile> }>([
    { name: "no niks3 at all", files: { "niks3-hook": { content: "#!/bin/sh\n", mode: 0o755 }, "README.md": { content: "x" } } },
    { name: "niks3 not executable", files: { niks3: { content: "#!/bin/sh\n", mode: 0o644 } } },
    { name: "niks3 only in a subfolder", files: { "niks3_Linux_x86_64/niks3": { content: "#!/bin/sh\n", mode: 0o755 } } },
  ])("refuses an archive without a niks3 binary ($name)", async ({ files }) => {
    const server = await release({ [ASSET]: await buildArchive(files) });
    const { options } = setup(server);
    await expectCleanFailure(installNiks3(options), `niks3: archive ${ASSET} has no niks3 binary at its root`);
  });

  it("refuses an archive entry that climbs out of the extraction folder", async () => {
    const src = join(work, "evil", "inner");
    await mkdir(src, { recursive: true });
    await writeFile(join(work, "evil", "escape"), "pwned");
    await writeFile(join(src, "niks3"), fakeNiks3Script(VERSION), { mode: 0o755 });
    const out = join(work, "evil.tar.gz");
    await tar.c({ gzip: true, file: out, cwd: src, preservePaths: true }, ["niks3", "../escape"]);
    const server = await release({ [ASSET]: await readFile(out) });
    const { options } = setup(server);
    await expectCleanFailure(installNiks3(options), new RegExp(`^niks3: archive ${ASSET} is broken: .*\\.\\.`));
    await expect(stat(join(cacheDir, "escape"))).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("does not extract links: a symlinked niks3 is no niks3", async () => {
    const src = join(work, "links");
    await mkdir(src);
    await symlink("/bin/sh", join(src, "niks3"));
    const out = join(work, "links.tar.gz");
    await tar.c({ gzip: true, file: out, cwd: src }, ["niks3"]);
    const server = await release({ [ASSET]: await readFile(out) });
    const { options } = setup(server);
    await expectCleanFailure(installNiks3(options), `niks3: archive ${ASSET} has no niks3 binary at its root`);
  });

  it("two installs racing into one cache folder both succeed", async () => {
    const server = await release();
    const a = setup(server);
    const b = setup(server);
    const [one, two] = await Promise.all([installNiks3(a.options), installNiks3(b.options)]);
    expect(one).toEqual(two);
    expect(one.source).toBe("download");
    expect((await run(one.niks3, [])).stdout).toBe(`niks3 ${VERSION}\n`);
    const lines = [...a.log.lines, ...b.log.lines];
    expect(lines.filter((l) => l.includes("installed niks3"))).toHaveLength(1);
    expect(lines.filter((l) => l.includes("meanwhile"))).toHaveLength(1);
    expect((await cacheFiles()).filter((f) => f.includes("tmp"))).toEqual([]);
    expect(await readdir(cacheDir)).toEqual([VERSION]);
  });

  it("installs racing in separate processes into one cache folder all succeed", async () => {
    const server = await release();
    const child = join(import.meta.dirname, "..", "helpers", "install-child.ts");
    const runs = await Promise.all(
      [1, 2, 3].map(() => run(process.execPath, ["--experimental-strip-types", "--no-warnings", child, server.url, cacheDir, VERSION])),
    );
    const outputs = runs.map((r) => JSON.parse(r.stdout) as { result: { niks3: string }; lines: string[] });
    const dir = join(cacheDir, VERSION, "niks3_Linux_x86_64");
    for (const out of outputs) expect(out.result.niks3).toBe(join(dir, "niks3"));
    expect((await run(join(dir, "niks3"), [])).stdout).toBe(`niks3 ${VERSION}\n`);
    expect(await readdir(cacheDir)).toEqual([VERSION]);
    expect((await readdir(join(cacheDir, VERSION))).sort()).toEqual(["niks3_Linux_x86_64", "niks3_Linux_x86_64.complete"]);
  });

  it("ignores a cache folder without its marker and replaces stale contents", async () => {
    const server = await release();
    const dir = join(cacheDir, VERSION, "niks3_Linux_x86_64");
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, "niks3"), "#!/bin/sh\necho tampered\n", { mode: 0o755 });
    const { options, log } = setup(server);
    const installed = await installNiks3(options);
    expect(installed.source).toBe("download");
    expect((await run(installed.niks3, [])).stdout).toBe(`niks3 ${VERSION}\n`);
    expect(log.lines).toContain(`info: installed niks3 ${VERSION} into ${dir}`);
    expect(await readdir(cacheDir)).toEqual([VERSION]);
    expect((await stat(`${dir}.complete`)).isFile()).toBe(true);
  });

  it("honours HTTP_PROXY for an http:// download URL, and NO_PROXY", async () => {
    const server = await release();
    const proxy = await startProxy();
    servers.push(proxy);
    const { options } = setup(server, { http: { proxyEnv: { HTTP_PROXY: proxy.url } } });
    expect((await installNiks3(options)).source).toBe("download");
    expect(proxy.requests.map((r) => r.url)).toEqual([
      `${server.url}/v${VERSION}/checksums.txt`,
      `${server.url}/v${VERSION}/${ASSET}`,
    ]);
    expect(server.requests).toHaveLength(2);

    await rm(cacheDir, { recursive: true });
    const bypass = setup(server, { http: { proxyEnv: { HTTP_PROXY: proxy.url, NO_PROXY: "127.0.0.1" } } });
    await installNiks3(bypass.options);
    expect(proxy.requests).toHaveLength(2);
    expect(server.requests).toHaveLength(4);
  });
});
