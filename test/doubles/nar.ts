// nar: the NAR side of the niks3 double. The real client serialises NARs itself; the double asks
// `nix-store --dump` for the bytes (same format, so the NarHash matches) and parses them back to
// build the `.ls` listing that niks3 uploads next to each NAR.

import { execFile } from "node:child_process";

export interface NarListingEntry {
  type: "regular" | "directory" | "symlink";
  size?: number;
  executable?: boolean;
  narOffset?: number;
  entries?: Record<string, NarListingEntry>;
  target?: string;
}

export interface NarListing {
  version: 1;
  root: NarListingEntry;
}

/** dumpNar runs `nix-store --dump <path>` and returns the NAR bytes. */
export function dumpNar(storePath: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    execFile("nix-store", ["--dump", storePath], { encoding: "buffer", maxBuffer: Number.MAX_SAFE_INTEGER }, (err, stdout, stderr) => {
      if (err) reject(new Error(`serializing NAR: nix-store --dump ${storePath}: ${stderr.toString("utf8").trim() || err.message}`));
      else resolve(stdout);
    });
  });
}

/** narListing parses a NAR and returns niks3's listing; withOffsets=false matches GenerateListingOnly. */
export function narListing(nar: Buffer, withOffsets: boolean): NarListing {
  let pos = 0;
  const u64 = (): number => {
    if (pos + 8 > nar.length) throw new Error("NAR: truncated");
    const v = Number(nar.readBigUInt64LE(pos));
    pos += 8;
    return v;
  };
  const str = (): string => {
    const n = u64();
    const s = nar.subarray(pos, pos + n).toString("utf8");
    pos += n + ((8 - (n % 8)) % 8);
    return s;
  };
  const expect = (want: string): void => {
    const got = str();
    if (got !== want) throw new Error(`NAR: expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}`);
  };
  const node = (): NarListingEntry => {
    expect("(");
    expect("type");
    const type = str();
    if (type === "regular") {
      let tag = str();
      let executable = false;
      if (tag === "executable") {
        expect("");
        executable = true;
        tag = str();
      }
      if (tag !== "contents") throw new Error(`NAR: expected contents, got ${tag}`);
      const size = u64();
      const offset = pos;
      pos += size + ((8 - (size % 8)) % 8);
      expect(")");
      return {
        type: "regular",
        size,
        ...(executable ? { executable: true } : {}),
        ...(withOffsets ? { narOffset: offset } : {}),
      };
    }
    if (type === "symlink") {
      expect("target");
      const target = str();
      expect(")");
      return { type: "symlink", target };
    }
    if (type !== "directory") throw new Error(`NAR: unknown node type ${type}`);
    const entries: Record<string, NarListingEntry> = {};
    for (let tag = str(); tag !== ")"; tag = str()) {
      if (tag !== "entry") throw new Error(`NAR: expected entry, got ${tag}`);
      expect("(");
      expect("name");
      const name = str();
      expect("node");
      entries[name] = node();
      expect(")");
    }
    // Go omits an empty map (omitempty).
    return Object.keys(entries).length > 0 ? { type: "directory", entries } : { type: "directory" };
  };
  expect("nix-archive-1");
  return { version: 1, root: node() };
}
