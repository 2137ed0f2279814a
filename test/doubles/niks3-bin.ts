// niks3-bin: put the niks3 double where a test needs a niks3 binary: executable shims in a
// directory (for PATH), and release archives shaped like goreleaser's (binaries at the archive
// root, plus README.md and LICENSE) with their checksums.txt, for installer tests.

import { createHash } from "node:crypto";
import { buildSync } from "esbuild";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as tar from "tar";

export const NIKS3_CLI = fileURLToPath(new URL("./niks3-cli.ts", import.meta.url));
export const NIKS3_HOOK = fileURLToPath(new URL("./niks3-hook.ts", import.meta.url));

/** The four platform archives of a niks3 release (§2 of niks3-facts.md). */
export const RELEASE_ASSETS = [
  "niks3_Linux_x86_64.tar.gz",
  "niks3_Linux_arm64.tar.gz",
  "niks3_Darwin_x86_64.tar.gz",
  "niks3_Darwin_arm64.tar.gz",
] as const;

const DOUBLES_DIR = fileURLToPath(new URL(".", import.meta.url));
const BUNDLE_DIR = fileURLToPath(new URL("../../node_modules/.cache/niks3-doubles/", import.meta.url));

/**
 * bundledDouble bundles a double's entry point into one .mjs file (cached by the doubles' source
 * hash), so each niks3 or niks3-hook call starts in about 50 ms instead of type-stripping a dozen
 * modules: the real binaries are static Go programs, and a slow double would distort timings.
 */
function bundledDouble(entry: string): string {
  const hash = createHash("sha256");
  for (const name of readdirSync(DOUBLES_DIR).filter((f) => f.endsWith(".ts")).sort()) {
    hash.update(name).update(readFileSync(join(DOUBLES_DIR, name)));
  }
  const out = join(BUNDLE_DIR, `${entry.replace(/^.*\//, "").replace(/\.ts$/, "")}-${hash.digest("hex").slice(0, 16)}.mjs`);
  if (existsSync(out)) return out;
  mkdirSync(BUNDLE_DIR, { recursive: true });
  const partial = `${out}.${process.pid}.part`;
  buildSync({ entryPoints: [entry], outfile: partial, bundle: true, platform: "node", format: "esm", target: "node22", logLevel: "error" });
  renameSync(partial, out);
  return out;
}

function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Where the shims find node and the bundled doubles (this process's node and the repo's cache by default). */
interface ShimPaths {
  node: string;
  double: (entry: string) => string;
}
const HERE: ShimPaths = { node: process.execPath, double: bundledDouble };

function shims(paths: ShimPaths = HERE): Record<string, string> {
  const notYet = (name: string): string =>
    `#!/bin/sh\necho "${name}: not implemented in the niks3 test double yet" >&2\nexit 1\n`;
  return {
    niks3: `#!/bin/sh\nexec ${shQuote(paths.node)} ${shQuote(paths.double(NIKS3_CLI))} "$@"\n`,
    // node:sqlite (the queue) warns that it is experimental; the real binary prints no such line.
    "niks3-hook": `#!/bin/sh\nexec ${shQuote(paths.node)} --disable-warning=ExperimentalWarning ${shQuote(paths.double(NIKS3_HOOK))} "$@"\n`,
    "niks3-server": notYet("niks3-server"),
  };
}

/**
 * writeNiks3Bin writes executable `niks3` and `niks3-hook` shims into `dir`; both run their double
 * with `paths.node` (this process's node, Node 22, by default).
 */
export function writeNiks3Bin(dir: string, paths: ShimPaths = HERE): { niks3: string; niks3Hook: string } {
  const all = shims(paths);
  for (const name of ["niks3", "niks3-hook"] as const) {
    const path = join(dir, name);
    writeFileSync(path, all[name] ?? "");
    chmodSync(path, 0o755);
  }
  return { niks3: join(dir, "niks3"), niks3Hook: join(dir, "niks3-hook") };
}

/**
 * writePortableNiks3Bin: the shims with node and the bundled doubles beside them in `dir`, for a
 * test that runs as another user, who may not reach this checkout.
 */
export function writePortableNiks3Bin(dir: string, node: string): { niks3: string; niks3Hook: string } {
  const double = (entry: string) => {
    const bundle = bundledDouble(entry);
    const copy = join(dir, basename(bundle));
    copyFileSync(bundle, copy);
    return copy;
  };
  return writeNiks3Bin(dir, { node, double });
}

/** makeReleaseArchive returns a tar.gz like goreleaser's for `platformAsset`, holding the shims. */
export function makeReleaseArchive(platformAsset: string): Buffer {
  const dir = mkdtempSync(join(tmpdir(), "niks3-release-"));
  try {
    const files: Record<string, string> = {
      ...shims(),
      "README.md": `# niks3 (test double)\n\nArchive ${platformAsset}: shims that run the niks3 double.\n`,
      LICENSE: "MIT License (test double)\n",
    };
    for (const [name, text] of Object.entries(files)) {
      writeFileSync(join(dir, name), text);
      chmodSync(join(dir, name), name.startsWith("niks3") ? 0o755 : 0o644);
    }
    const out = join(dir, "out.tar.gz");
    tar.create({ gzip: true, cwd: dir, file: out, sync: true, portable: true }, Object.keys(files));
    return readFileSync(out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function sha256Hex(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

/** checksumsTxt renders goreleaser's checksums.txt: `<sha256hex>  <name>` per line. */
export function checksumsTxt(files: Record<string, Buffer>): string {
  return Object.entries(files)
    .map(([name, data]) => `${sha256Hex(data)}  ${name}\n`)
    .join("");
}

/** makeReleaseFiles builds the archives for `assets` plus their checksums.txt, ready for serveRelease. */
export function makeReleaseFiles(assets: readonly string[] = RELEASE_ASSETS): Record<string, Buffer> {
  const archives = Object.fromEntries(assets.map((a) => [a, makeReleaseArchive(a)]));
  return { ...archives, "checksums.txt": Buffer.from(checksumsTxt(archives)) };
}
