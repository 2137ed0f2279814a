// The fake niks3 server over real HTTP: unauthenticated endpoints, 401s, request validation with
// niks3's messages, presigned uploads, pins, faults, release assets, and the release archive.
import { execFile } from "node:child_process";
import { verify, createPublicKey } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { zstdCompressSync } from "node:zlib";
import * as tar from "tar";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeNiks3Server, type FakeNiks3Server } from "../doubles/fake-niks3-server.ts";
import { checksumsTxt, makeReleaseArchive, makeReleaseFiles, sha256Hex, writeNiks3Bin } from "../doubles/niks3-bin.ts";

const TOKEN = "unit-test-token";
const AUTH = { Authorization: `Bearer ${TOKEN}` };
const HASH = "0".repeat(32);
const NAR = `nar/${"1".repeat(52)}.nar.zst`;
let server: FakeNiks3Server;
const scratch: string[] = [];
const tempDir = (prefix: string): string => {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  scratch.push(dir);
  return dir;
};

beforeAll(async () => {
  server = await startFakeNiks3Server({ token: TOKEN, issuer: "https://gitlab.example.com" });
});
afterAll(async () => {
  await server?.close();
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = AUTH) {
  const res = await fetch(server.url + path, {
    method,
    headers,
    ...(body !== undefined ? { body: typeof body === "string" ? body : JSON.stringify(body) } : {}),
  });
  return { status: res.status, type: res.headers.get("content-type"), text: await res.text() };
}

function closureBody(hash = HASH, extra: object[] = []) {
  return {
    closure: `${hash}.narinfo`,
    objects: [
      { key: `${hash}.narinfo`, type: "narinfo", refs: [NAR, `${hash}.ls`] },
      { key: NAR, type: "nar", refs: [], nar_size: 128 },
      { key: `${hash}.ls`, type: "listing", refs: [] },
      ...extra,
    ],
  };
}

describe("fake niks3 server: public endpoints", () => {
  it("answers /health with OK", async () => {
    expect(await call("GET", "/health", undefined, {})).toMatchObject({ status: 200, text: "OK" });
  });

  it.each([
    ["?issuer=https://gitlab.example.com", true],
    ["?issuer=https://gitlab.example.com/", false],
    ["", false],
  ])("cache-config%s reports oidc_audience: %s", async (query, withAudience) => {
    const r = await call("GET", `/api/cache-config${query}`, undefined, {});
    expect(r.status).toBe(200);
    expect(r.type).toBe("application/json");
    const cfg = JSON.parse(r.text) as Record<string, unknown>;
    expect(cfg).toEqual({
      substituter_url: server.substituterUrl,
      public_keys: [server.publicKey],
      ...(withAudience ? { oidc_audience: server.url } : {}),
    });
  });

  it("serves nix-cache-info like the niks3 bucket", async () => {
    const r = await call("GET", "/cache/nix-cache-info", undefined, {});
    expect(r.text).toBe("StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 30\n");
    expect((await call("GET", `/cache/${HASH}.narinfo`, undefined, {})).status).toBe(404);
  });

  it("answers unknown paths and methods like Go's ServeMux", async () => {
    expect(await call("GET", "/nope", undefined, {})).toMatchObject({ status: 404, text: "404 page not found\n" });
    expect(await call("PUT", "/health", undefined, {})).toMatchObject({ status: 405, text: "Method Not Allowed\n" });
  });
});

describe("fake niks3 server: authentication", () => {
  it.each([
    ["POST", "/api/pending_closures"],
    ["POST", "/api/pending_closures/1/sign"],
    ["POST", "/api/pending_closures/1/complete"],
    ["GET", "/api/pins"],
    ["POST", "/api/pins/x"],
    ["DELETE", "/api/pins/x"],
    ["HEAD", `/api/objects/${NAR}`],
  ])("%s %s needs the bearer token", async (method, path) => {
    const variants: Record<string, string>[] = [{}, { Authorization: "Bearer wrong" }, { Authorization: `Basic ${TOKEN}` }, { Authorization: TOKEN }];
    for (const headers of variants) {
      const r = await call(method, path, undefined, headers);
      expect(r.status).toBe(401);
      if (method !== "HEAD") expect(r.text).toBe("Unauthorized\n");
      expect(r.type).toBe("text/plain; charset=utf-8");
    }
  });

  it("never records the token", async () => {
    expect(JSON.stringify(server.requests)).not.toContain(TOKEN);
  });
});

describe("fake niks3 server: request validation", () => {
  it.each([
    ["empty body", "", "failed to decode request: EOF"],
    ["bad JSON", "{nope", "failed to decode request: invalid character"],
    ["missing closure", { objects: [] }, "missing closure key"],
    ["closure not a narinfo", { closure: "x.ls", objects: [] }, "closure key must end with .narinfo"],
    ["no objects", { closure: `${HASH}.narinfo`, objects: [] }, "missing objects key"],
    ["bad key shape", { closure: `${HASH}.narinfo`, objects: [{ key: "nar/short.nar.zst", type: "nar", refs: [] }] }, 'invalid object key "nar/short.nar.zst" for type "nar"'],
    ["unknown type", { closure: `${HASH}.narinfo`, objects: [{ key: `${HASH}.narinfo`, type: "blob", refs: [] }] }, 'invalid object key "0000'],
    ["wrong value type", { closure: 5 }, "json: cannot unmarshal number into Go struct field createPendingClosureRequest.closure of type string"],
    ["negative nar_size", { closure: `${HASH}.narinfo`, objects: [{ key: NAR, type: "nar", refs: [], nar_size: -1 }] }, "cannot unmarshal number -1"],
  ])("pending_closures rejects %s with 400", async (_name, body, msg) => {
    const r = await call("POST", "/api/pending_closures", body);
    expect(r.status).toBe(400);
    expect(r.text).toContain(msg);
    expect(r.text.endsWith("\n")).toBe(true);
  });

  it("rejects sign for keys outside the closure (403), unknown ids (404) and bad ids (400)", async () => {
    const pc = JSON.parse((await call("POST", "/api/pending_closures", closureBody("2".repeat(32)))).text) as { id: string };
    const meta = { store_path: "/nix/store/x-y", url: NAR, compression: "zstd", nar_hash: "sha256:" + "1".repeat(52), nar_size: 1, references: [] };
    expect((await call("POST", `/api/pending_closures/${pc.id}/sign`, { narinfos: { [`${HASH}.narinfo`]: meta } })).status).toBe(403);
    expect(await call("POST", "/api/pending_closures/99999/complete")).toMatchObject({ status: 404, text: "pending closure not found\n" });
    expect(await call("POST", "/api/pending_closures/abc/complete")).toMatchObject({
      status: 400,
      text: 'invalid id: strconv.ParseInt: parsing "abc": invalid syntax\n',
    });
  });
});

describe("fake niks3 server: push protocol", () => {
  it("hands out presigned URLs only for new objects, signs, commits, and pins", async () => {
    const first = await call("POST", "/api/pending_closures", closureBody());
    expect(first.status).toBe(200);
    const pc = JSON.parse(first.text) as { id: string; pending_objects: Record<string, { type: string; presigned_url: string }> };
    expect(Object.keys(pc.pending_objects).sort()).toEqual([`${HASH}.ls`, `${HASH}.narinfo`, NAR].sort());

    // Presigned URLs are bound to their key: a signature for one key cannot write another.
    const narUrl = new URL(pc.pending_objects[NAR]?.presigned_url ?? "");
    const forged = `${server.url}/s3/${HASH}.narinfo${narUrl.search}`;
    expect((await fetch(forged, { method: "PUT", body: "x" })).status).toBe(403);
    expect((await fetch(narUrl, { method: "PUT", body: zstdCompressSync(Buffer.from("nar")) })).status).toBe(200);

    const storePath = `/nix/store/${HASH}-thing`;
    const narHash = "sha256:" + "1".repeat(52);
    const meta = { store_path: storePath, url: NAR, compression: "zstd", nar_hash: narHash, nar_size: 128, references: [] };
    const signed = await call("POST", `/api/pending_closures/${pc.id}/sign`, { narinfos: { [`${HASH}.narinfo`]: meta } });
    expect(signed.status).toBe(200);
    const sig = (JSON.parse(signed.text) as { signatures: Record<string, string[]> }).signatures[`${HASH}.narinfo`]?.[0] ?? "";
    const [keyName, sigB64] = sig.split(":");
    const [, pubB64] = server.publicKey.split(":");
    const pub = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(pubB64 ?? "", "base64").toString("base64url") }, format: "jwk" });
    expect(keyName).toBe(server.publicKey.split(":")[0]);
    expect(verify(null, Buffer.from(`1;${storePath};${narHash};128;`), pub, Buffer.from(sigB64 ?? "", "base64"))).toBe(true);

    const narinfo = `StorePath: ${storePath}\nURL: ${NAR}\nCompression: zstd\nNarHash: ${narHash}\nNarSize: 128\nReferences: \nSig: ${sig}\n`;
    const put = await fetch(pc.pending_objects[`${HASH}.narinfo`]?.presigned_url ?? "", {
      method: "PUT",
      headers: { "Content-Type": "text/x-nix-narinfo", "Content-Encoding": "zstd" },
      body: zstdCompressSync(Buffer.from(narinfo)),
    });
    expect(put.status).toBe(200);
    expect(server.storePaths().has(storePath)).toBe(false); // not committed yet

    expect(await call("POST", `/api/pins/early`, { store_path: storePath })).toMatchObject({
      status: 404,
      text: "closure not found: store path must be pushed before pinning\n",
    });
    expect((await call("POST", `/api/pending_closures/${pc.id}/complete`)).status).toBe(204);
    expect(server.storePaths().has(storePath)).toBe(true);
    expect((await call("GET", `/cache/${HASH}.narinfo`, undefined, {})).text).toBe(narinfo); // stored decoded

    const again = JSON.parse((await call("POST", "/api/pending_closures", closureBody())).text) as { pending_objects: object };
    expect(again.pending_objects).toEqual({});

    expect((await call("HEAD", `/api/objects/${NAR}`)).status).toBe(204);
    expect((await call("POST", "/api/pins/main", { store_path: storePath })).status).toBe(204);
    expect(server.pins.get("main")).toBe(storePath);
    expect((await call("GET", "/cache/pins/main", undefined, {})).text).toBe(storePath);
    const pins = JSON.parse((await call("GET", "/api/pins")).text) as { name: string; store_path: string }[];
    expect(pins.map((p) => [p.name, p.store_path])).toEqual([["main", storePath]]);
    expect((await call("DELETE", "/api/pins/main")).status).toBe(204);
    expect(await call("DELETE", "/api/pins/main")).toMatchObject({ status: 404, text: "pin not found\n" });
  });

  it.each([
    ["a/b", 400],
    ["bad name!", 400],
    ["x".repeat(257), 400],
  ])("refuses pin name %s", async (name, status) => {
    const r = await call("POST", `/api/pins/${encodeURIComponent(name)}`, { store_path: "/nix/store/x-y" });
    expect(r.status).toBe(status);
  });

  it("gives NARs over 10 MiB (or of unknown size) multipart uploads", async () => {
    const big = `nar/${"3".repeat(52)}.nar.zst`;
    const body = { closure: `${"3".repeat(32)}.narinfo`, objects: [{ key: big, type: "nar", refs: [], nar_size: 50 << 20 }] };
    const pc = JSON.parse((await call("POST", "/api/pending_closures", body)).text) as {
      pending_objects: Record<string, { multipart_info: { upload_id: string; part_urls: string[] } }>;
    };
    const mp = pc.pending_objects[big]?.multipart_info;
    expect(mp?.part_urls).toHaveLength(6);
    const etag = (await fetch(mp?.part_urls[0] ?? "", { method: "PUT", body: "part1" })).headers.get("etag") ?? "";
    expect(etag).toMatch(/^"[0-9a-f]{32}"$/);
    const done = await call("POST", "/api/multipart/complete", { object_key: big, upload_id: mp?.upload_id, parts: [{ part_number: 1, etag }] });
    expect(done.status).toBe(204);
    expect((await call("HEAD", `/api/objects/${big}`)).status).toBe(204);
  });
});

describe("fake niks3 server: faults", () => {
  it("fails cache-config N times, then recovers", async () => {
    server.faults.cacheConfig = { status: 503, times: 2 };
    expect((await call("GET", "/api/cache-config", undefined, {})).status).toBe(503);
    expect((await call("GET", "/api/cache-config", undefined, {})).status).toBe(503);
    expect((await call("GET", "/api/cache-config", undefined, {})).status).toBe(200);
  });

  it("delays and returns a custom body", async () => {
    server.faults.health = { status: 500, body: "boom", delayMs: 150, times: 1 };
    const t0 = Date.now();
    expect(await call("GET", "/health", undefined, {})).toMatchObject({ status: 500, text: "boom" });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
  });

  it("hangs pending_closures (status 0 in requests) without blocking close()", async () => {
    server.faults.push = { hang: true, times: 1 };
    const res = fetch(server.url + "/api/pending_closures", { method: "POST", headers: AUTH, body: "{}", signal: AbortSignal.timeout(200) });
    await expect(res).rejects.toThrow();
    expect(server.requests.at(-1)).toMatchObject({ method: "POST", path: "/api/pending_closures", status: 0 });
  });
});

describe("fake niks3 server: release assets", () => {
  const files = { "niks3_Linux_x86_64.tar.gz": Buffer.from("archive-bytes"), "checksums.txt": Buffer.from("sums\n") };

  it("serves assets and fault variants (404, 503 × N, truncation)", async () => {
    server.serveRelease("1.7.0", files);
    const get = (asset: string) => fetch(`${server.url}/releases/v1.7.0/${asset}`);
    expect(Buffer.from(await (await get("niks3_Linux_x86_64.tar.gz")).arrayBuffer()).toString()).toBe("archive-bytes");
    expect((await get("niks3_Darwin_arm64.tar.gz")).status).toBe(404);
    server.faults.release = { status: 503, times: 2, asset: "niks3_Linux_x86_64.tar.gz" };
    expect((await get("checksums.txt")).status).toBe(200);
    expect((await get("niks3_Linux_x86_64.tar.gz")).status).toBe(503);
    expect((await get("niks3_Linux_x86_64.tar.gz")).status).toBe(503);
    expect((await get("niks3_Linux_x86_64.tar.gz")).status).toBe(200);
    server.faults.release = { status: 404 };
    expect((await get("checksums.txt")).status).toBe(404);
    server.faults.release = { truncate: true, times: 1 };
    await expect(get("niks3_Linux_x86_64.tar.gz").then((r) => r.arrayBuffer())).rejects.toThrow();
    expect((await get("niks3_Linux_x86_64.tar.gz")).status).toBe(200);
  });
});

describe("niks3-bin", () => {
  it("builds a goreleaser-shaped archive whose niks3 runs the double", async () => {
    const archive = makeReleaseArchive("niks3_Linux_x86_64.tar.gz");
    const dir = tempDir("niks3-archive-");
    writeFileSync(join(dir, "a.tar.gz"), archive);
    const names: string[] = [];
    await tar.list({ file: join(dir, "a.tar.gz"), onReadEntry: (e) => void names.push(e.path) });
    expect(names.sort()).toEqual(["LICENSE", "README.md", "niks3", "niks3-hook", "niks3-server"]);
    await tar.extract({ file: join(dir, "a.tar.gz"), cwd: dir });
    expect(statSync(join(dir, "niks3")).mode & 0o777).toBe(0o755);
    const help = await promisify(execFile)(join(dir, "niks3"), ["--help"]);
    expect(help.stderr).toContain("Usage: niks3 <command> [flags]");
    // niks3-hook runs its double too: usage on stderr, and `send` with nothing built exits 0 quietly.
    expect((await promisify(execFile)(join(dir, "niks3-hook"), ["--help"])).stderr).toContain("Usage: niks3-hook <command> [flags]");
    expect(await promisify(execFile)(join(dir, "niks3-hook"), ["send"], { env: { ...process.env, OUT_PATHS: "" } })).toMatchObject({ stdout: "", stderr: "" });
  });

  it("writes checksums.txt in sha256sum format", () => {
    const release = makeReleaseFiles(["niks3_Linux_arm64.tar.gz"]);
    const archive = release["niks3_Linux_arm64.tar.gz"] ?? Buffer.alloc(0);
    expect(release["checksums.txt"]?.toString()).toBe(`${sha256Hex(archive)}  niks3_Linux_arm64.tar.gz\n`);
    expect(checksumsTxt({ a: Buffer.from("x") })).toMatch(/^[0-9a-f]{64} {2}a\n$/);
  });

  it("writes executable shims into a bin dir", () => {
    const dir = tempDir("niks3-double-bin-");
    const { niks3 } = writeNiks3Bin(dir);
    expect(readFileSync(niks3, "utf8")).toMatch(/^#!\/bin\/sh\nexec '.*node' '.*niks3-cli-[0-9a-f]{16}\.mjs' "\$@"\n$/);
    expect(statSync(niks3).mode & 0o111).toBe(0o111);
  });
});
