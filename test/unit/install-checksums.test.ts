import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InstallError } from "../../src/errors.ts";
import { parseChecksums, sha256File, verifySha256 } from "../../src/install/checksums.ts";

const A = "a".repeat(64);
const B = "0123456789abcdef".repeat(4);

describe("parseChecksums", () => {
  const cases: { name: string; text: string; want: Record<string, string> }[] = [
    { name: "goreleaser format (two spaces)", text: `${A}  niks3_Linux_x86_64.tar.gz\n${B}  niks3_Linux_arm64.tar.gz\n`, want: { "niks3_Linux_x86_64.tar.gz": A, "niks3_Linux_arm64.tar.gz": B } },
    { name: "binary mode marker *name", text: `${A} *niks3_Darwin_arm64.tar.gz\n`, want: { "niks3_Darwin_arm64.tar.gz": A } },
    { name: "uppercase hex is lowered", text: `${B.toUpperCase()}  x.tar.gz`, want: { "x.tar.gz": B } },
    { name: "CRLF line ends and blank lines", text: `\r\n${A}  x.tar.gz\r\n\r\n`, want: { "x.tar.gz": A } },
    { name: "leading ./ is dropped", text: `${A}  ./x.tar.gz\n`, want: { "x.tar.gz": A } },
    { name: "malformed and non-sha256 lines are skipped", text: `# comment\n${"a".repeat(40)}  sha1.tar.gz\n${"a".repeat(128)}  sha512.tar.gz\n${A}x.tar.gz\n${A}  ok.tar.gz\n`, want: { "ok.tar.gz": A } },
    { name: "same entry twice with the same hash", text: `${A}  x.tar.gz\n${A}  x.tar.gz\n`, want: { "x.tar.gz": A } },
    { name: "empty file", text: "", want: {} },
  ];
  it.each(cases)("$name", ({ text, want }) => {
    expect(Object.fromEntries(parseChecksums(text))).toEqual(want);
  });

  it("fails closed when a name is listed twice with different hashes", () => {
    expect(() => parseChecksums(`${A}  x.tar.gz\n${B}  x.tar.gz\n`)).toThrow(InstallError);
    expect(() => parseChecksums(`${A}  x.tar.gz\n${B}  x.tar.gz\n`)).toThrow(/^niks3: checksums.txt lists x.tar.gz twice/);
  });
});

describe("sha256File and verifySha256", () => {
  let dir: string;
  let file: string;
  // sha256("hello\n")
  const HELLO = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "niks3-sum-"));
    file = join(dir, "f");
    await writeFile(file, "hello\n");
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("hashes a file", async () => {
    expect(await sha256File(file)).toBe(HELLO);
  });

  const verifyCases = [
    { name: "match", expected: HELLO, ok: true },
    { name: "match, uppercase expected", expected: HELLO.toUpperCase(), ok: true },
    { name: "mismatch", expected: A, ok: false, error: `niks3: sha256 mismatch for x.tar.gz (checksums.txt): expected ${A}, got ${HELLO}; refusing to install it` },
    { name: "expected is not a sha256", expected: "abc", ok: false, error: 'niks3: expected sha256 for x.tar.gz (checksums.txt) is not 64 hex digits: "abc"' },
    { name: "empty expected fails closed", expected: "", ok: false, error: 'niks3: expected sha256 for x.tar.gz (checksums.txt) is not 64 hex digits: ""' },
  ];
  it.each(verifyCases)("verifySha256: $name", async ({ expected, ok, error }) => {
    const result = verifySha256(file, expected, "x.tar.gz (checksums.txt)");
    if (ok) {
      await expect(result).resolves.toBe(HELLO);
    } else {
      await expect(result).rejects.toThrow(InstallError);
      await expect(result).rejects.toThrow(error);
    }
  });
});
