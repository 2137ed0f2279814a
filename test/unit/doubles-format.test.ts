// The niks3 double's pure parts: Go flag parsing, Go/slog formatting, nix32, token-script splitting,
// path-info shapes, NAR listings and narinfo text. These are what make the double's output
// byte-compatible with the real niks3 client.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FlagError, parseGoFlags, type FlagDef } from "../doubles/go-flag.ts";
import { formatBytes, goDefaultLogLine, goDuration, goQuote, slogTextLine } from "../doubles/go-format.ts";
import { narListing } from "../doubles/nar.ts";
import { parsePathInfoJson } from "../doubles/niks3-pathinfo.ts";
import { narinfoContent } from "../doubles/niks3-push.ts";
import { shellSplit } from "../doubles/niks3-token.ts";
import { decodeNix32, encodeNix32, toNix32Hash } from "../doubles/nix32.ts";

const DEFS: Record<string, FlagDef> = {
  "server-url": { kind: "string", def: "" },
  pin: { kind: "string", def: "" },
  debug: { kind: "bool", def: false },
  "max-concurrent-uploads": { kind: "int", def: 30 },
};

describe("go-flag", () => {
  const ok = [
    { name: "-f v", argv: ["-pin", "x", "p"], values: { pin: "x" }, args: ["p"] },
    { name: "--f=v", argv: ["--pin=x", "p"], values: { pin: "x" }, args: ["p"] },
    { name: "bool flag takes no separate value", argv: ["--debug", "false"], values: { debug: true }, args: ["false"] },
    { name: "bool --f=false", argv: ["--debug=false", "p"], values: { debug: false }, args: ["p"] },
    { name: "stops at the first non-flag", argv: ["p", "--pin", "x"], values: { pin: "" }, args: ["p", "--pin", "x"] },
    { name: "-- ends flags", argv: ["--", "--pin", "x"], values: { pin: "" }, args: ["--pin", "x"] },
    { name: "a lone - is positional", argv: ["-", "--pin", "x"], values: {}, args: ["-", "--pin", "x"] },
    { name: "int in hex", argv: ["--max-concurrent-uploads", "0x10"], values: { "max-concurrent-uploads": 16 }, args: [] },
    { name: "value may start with a dash", argv: ["--pin", "-x"], values: { pin: "-x" }, args: [] },
  ];
  it.each(ok)("$name", ({ argv, values, args }) => {
    const p = parseGoFlags(DEFS, argv, () => {});
    for (const [k, v] of Object.entries(values)) expect(p.values.get(k)).toBe(v);
    expect(p.args).toEqual(args);
  });

  const bad = [
    { name: "unknown flag", argv: ["--nope"], msg: "flag provided but not defined: -nope" },
    { name: "three dashes", argv: ["---pin"], msg: "bad flag syntax: ---pin" },
    { name: "missing value", argv: ["--pin"], msg: "flag needs an argument: -pin" },
    { name: "bad bool", argv: ["--debug=yes"], msg: 'invalid boolean value "yes" for -debug: parse error' },
    { name: "bad int", argv: ["--max-concurrent-uploads", "many"], msg: 'invalid value "many" for flag -max-concurrent-uploads: parse error' },
  ];
  it.each(bad)("$name fails with Go's message, printed first", ({ argv, msg }) => {
    const printed: string[] = [];
    expect(() => parseGoFlags(DEFS, argv, (m) => printed.push(m))).toThrow(msg);
    expect(printed).toEqual([msg]);
  });

  it("reports ErrHelp for -h when no help flag is defined", () => {
    try {
      parseGoFlags(DEFS, ["-h"], () => {});
      expect.fail("no error");
    } catch (err) {
      expect(err).toBeInstanceOf(FlagError);
      expect((err as FlagError).help).toBe(true);
    }
  });

  it("records which flags were set (for the --auth-token deprecation warning)", () => {
    const p = parseGoFlags({ ...DEFS, "auth-token": { kind: "string", def: "" } }, ["--auth-token", "", "x"], () => {});
    expect([...p.visited]).toEqual(["auth-token"]);
  });
});

describe("go-format", () => {
  it.each([
    [0, "0s"],
    [500, "500ns"],
    [953_051, "953.051µs"],
    [1_500_000, "1.5ms"],
    [122_000_000, "122ms"],
    [3_456_000_000, "3.456s"],
    [61_000_000_000, "1m1s"],
    [3_723_000_000_000, "1h2m3s"],
  ])("goDuration(%d) = %s", (ns, want) => {
    expect(goDuration(ns)).toBe(want);
  });

  it.each([
    [184, "184B"],
    [1536, "1.5KB"],
    [1_258_291, "1.2MB"],
  ])("formatBytes(%d) = %s", (n, want) => {
    expect(formatBytes(n)).toBe(want);
  });

  it("quotes like strconv.Quote", () => {
    expect(goQuote('a "b"\\\n\t\x01é')).toBe('"a \\"b\\"\\\\\\n\\t\\x01é"');
  });

  it("writes slog TextHandler lines, quoting only what needs it", () => {
    const at = new Date(2026, 5, 20, 13, 15, 27, 360);
    const line = slogTextLine("ERROR", "Fatal error", { error: "server returned 401: Unauthorized\n" }, at);
    expect(line).toMatch(/^time=2026-06-20T13:15:27\.360(Z|[+-]\d\d:\d\d) level=ERROR msg="Fatal error" error="server returned 401: Unauthorized\\n"$/);
    expect(slogTextLine("INFO", "Created pin", { name: "a.b", store_path: "/nix/store/x-y" }, at)).toMatch(
      / level=INFO msg="Created pin" name=a\.b store_path=\/nix\/store\/x-y$/,
    );
    expect(goDefaultLogLine("ERROR", "Fatal error", { error: "unknown command: --version" }, at)).toBe(
      '2026/06/20 13:15:27 ERROR Fatal error error="unknown command: --version"',
    );
  });
});

describe("nix32", () => {
  it("converts an SRI NarHash to Nix's nix32 form", () => {
    // Values from `nix path-info --json` and `nix hash to-base32` on the same NAR.
    expect(toNix32Hash("sha256-celFEVAXkuj0G33gxBkGbuvVWd8/WNwzOlvozn9Ikqw=")).toBe(
      "sha256:1b4j91zwxs2v78rxqn1zvxcxbsvf0qcw9q3x3gsfi4hpa08lbsbi",
    );
    expect(toNix32Hash("sha256:1b4j91zwxs2v78rxqn1zvxcxbsvf0qcw9q3x3gsfi4hpa08lbsbi")).toMatch(/^sha256:1b4j/);
    expect(() => toNix32Hash("md5-abc")).toThrow("unsupported hash format");
  });

  it("round-trips", () => {
    const bytes = Uint8Array.from({ length: 20 }, (_, i) => i * 13);
    expect(decodeNix32(encodeNix32(bytes), 20)).toEqual(bytes);
  });
});

describe("shellSplit (auth token script)", () => {
  it.each([
    ["a b  c", ["a", "b", "c"]],
    [`sh -c 'echo "$X" | tr a b'`, ["sh", "-c", 'echo "$X" | tr a b']],
    [`a"b"'c' "" x\\ y`, ["abc", "", "x y"]],
    [`"a\\"b"`, ['a"b']],
  ])("%s", (input, want) => {
    expect(shellSplit(input)).toEqual(want);
  });
  it("rejects unterminated quotes and trailing backslashes", () => {
    expect(() => shellSplit("'a")).toThrow("unterminated quote");
    expect(() => shellSplit("a\\")).toThrow("trailing backslash");
  });
});

describe("nix path-info JSON", () => {
  const info = { narHash: "sha256-celFEVAXkuj0G33gxBkGbuvVWd8/WNwzOlvozn9Ikqw=", narSize: 184, references: [], deriver: "/nix/store/d.drv" };
  it.each([
    ["Nix 2.8 / Lix array", JSON.stringify([{ path: "/nix/store/a-x", ...info }])],
    ["Nix ≥ 2.19 object", JSON.stringify({ "/nix/store/a-x": info })],
    [
      "Nix ≥ 2.33 structured hash",
      JSON.stringify({ "/nix/store/a-x": { ...info, narHash: { algorithm: "sha256", format: "base64", hash: "celFEVAXkuj0G33gxBkGbuvVWd8/WNwzOlvozn9Ikqw=" } } }),
    ],
  ])("%s", (_name, text) => {
    const got = parsePathInfoJson(text).get("/nix/store/a-x");
    expect(got?.narHash).toBe(info.narHash);
    expect(got?.narSize).toBe(184);
    expect(got?.deriver).toBe("/nix/store/d.drv");
  });
});

describe("NAR listing", () => {
  it("parses nix-store --dump output into niks3's .ls structure", () => {
    const dir = mkdtempSync(join(tmpdir(), "nar-listing-"));
    const root = join(dir, "root");
    mkdirSync(join(root, "bin"), { recursive: true });
    writeFileSync(join(root, "bin", "run"), "#!/bin/sh\n", { mode: 0o755 });
    writeFileSync(join(root, "data"), "hello");
    symlinkSync("data", join(root, "link"));
    mkdirSync(join(root, "empty"));
    const nar = execFileSync("nix-store", ["--dump", root]);
    expect(narListing(nar, false)).toEqual({
      version: 1,
      root: {
        type: "directory",
        entries: {
          bin: { type: "directory", entries: { run: { type: "regular", size: 10, executable: true } } },
          data: { type: "regular", size: 5 },
          empty: { type: "directory" },
          link: { type: "symlink", target: "data" },
        },
      },
    });
    const withOffsets = narListing(nar, true);
    const data = withOffsets.root.entries?.data;
    expect(nar.subarray(data?.narOffset, (data?.narOffset ?? 0) + 5).toString()).toBe("hello");
    rmSync(dir, { recursive: true, force: true });
  });
});

describe("narinfo text", () => {
  it("matches niks3's generateNarinfoContent", () => {
    const text = narinfoContent(
      {
        store_path: "/nix/store/aaaa-app",
        url: "nar/xyz.nar.zst",
        compression: "zstd",
        nar_hash: "sha256:1b4j91zwxs2v78rxqn1zvxcxbsvf0qcw9q3x3gsfi4hpa08lbsbi",
        nar_size: 184,
        references: ["/nix/store/cccc-lib", "/nix/store/bbbb-dep"],
        deriver: "/nix/store/dddd-app.drv",
      },
      ["k:sig2", "k:sig1"],
    );
    expect(text).toBe(
      "StorePath: /nix/store/aaaa-app\nURL: nar/xyz.nar.zst\nCompression: zstd\n" +
        "NarHash: sha256:1b4j91zwxs2v78rxqn1zvxcxbsvf0qcw9q3x3gsfi4hpa08lbsbi\nNarSize: 184\n" +
        "References: bbbb-dep cccc-lib\nDeriver: dddd-app.drv\nSig: k:sig1\nSig: k:sig2\n",
    );
    expect(narinfoContent({ store_path: "/nix/store/a", url: "u", compression: "zstd", nar_hash: "h", nar_size: 1, references: [] }, [])).toContain(
      "References: \n",
    );
  });
});
