// sha256: parsing a release's checksums.txt, hashing a file, and the check that fails closed.
// Tool-cache leaves this step out; we put it between download and extract (design/style.md §4.4).

import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { pipeline } from "node:stream/promises";
import { InstallError } from "../errors.ts";

const SHA256_HEX = /^[0-9a-f]{64}$/;

// sha256sum format: `<hex>  <name>` (text mode) or `<hex> *<name>` (binary mode).
const LINE = /^([0-9A-Fa-f]{64}) [ *](.+)$/;

/**
 * parseChecksums reads `sha256sum` output into a map from file name to lowercase hex. Lines that are
 * not sha256 entries are skipped; a name listed twice with different hashes fails closed.
 */
export function parseChecksums(text: string): Map<string, string> {
  const sums = new Map<string, string>();
  for (const raw of text.split(/\r?\n/)) {
    const match = LINE.exec(raw.trim());
    if (!match) continue;
    const hex = match[1]!.toLowerCase();
    const name = match[2]!.trim().replace(/^\.\//, "");
    const seen = sums.get(name);
    if (seen !== undefined && seen !== hex) {
      throw new InstallError(`niks3: checksums.txt lists ${name} twice with different sha256 (${seen}, ${hex})`);
    }
    sums.set(name, hex);
  }
  return sums;
}

/** sha256File hashes a file by streaming it. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  await pipeline(createReadStream(path), hash);
  return hash.digest("hex");
}

/**
 * verifySha256 fails closed unless the file's sha256 is `expected`. `label` names the asset and the
 * source of the expected hash in the one-line error (e.g. "niks3_Linux_x86_64.tar.gz (checksums.txt)").
 * Returns the actual hash.
 */
export async function verifySha256(file: string, expected: string, label: string): Promise<string> {
  const want = expected.trim().toLowerCase();
  if (!SHA256_HEX.test(want)) {
    throw new InstallError(`niks3: expected sha256 for ${label} is not 64 hex digits: "${expected}"`);
  }
  const actual = await sha256File(file);
  if (actual !== want) {
    throw new InstallError(`niks3: sha256 mismatch for ${label}: expected ${want}, got ${actual}; refusing to install it`);
  }
  return actual;
}
