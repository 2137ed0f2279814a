// niks3-push: the double's port of niks3 client.PushPaths (client/upload.go and friends).
// Order per top-level path: POST pending_closures → upload NARs (zstd, simple or multipart) with
// their .ls listings, build logs and realisations → POST sign (per closure) → PUT narinfos (zstd)
// → POST complete. Log lines are the real client's INFO lines.

import { basename } from "node:path";
import { zstdCompressSync } from "node:zlib";
import { goDuration, roundDuration } from "./go-format.ts";
import { dumpNar, narListing } from "./nar.ts";
import { checkResponse, joinApi, s3Request, serverRequest, type Client } from "./niks3-http.ts";
import { putSimple, runLimited, uploadListing, uploadLog, uploadNarWithListing, type PendingObject } from "./niks3-upload.ts";
import {
  getBuildLogPath, getPathInfoRecursive, getStorePathHash, queryRealisations, resolveSymlinks,
  type PathInfo, type Realisation,
} from "./niks3-pathinfo.ts";
import { toNix32Hash } from "./nix32.ts";

interface ObjectWithRefs {
  key: string;
  type: "narinfo" | "nar" | "listing" | "build_log" | "realisation";
  refs: string[];
  nar_size?: number;
}

interface Prepared {
  closures: { narinfoKey: string; objects: ObjectWithRefs[] }[];
  byHash: Map<string, PathInfo>;
  narKeyToHash: Map<string, string>;
  logPaths: Map<string, string>;
  realisations: Map<string, Realisation>;
}

function narKeyOf(narHash: string): string {
  return "nar/" + toNix32Hash(narHash).slice("sha256:".length) + ".nar.zst";
}

/** prepareClosures mirrors client.PrepareClosures: one closure per top-level path. */
function prepareClosures(c: Client, top: string[], infos: Map<string, PathInfo>): Prepared {
  const realisations = queryRealisations(infos);
  const byHash = new Map<string, PathInfo>();
  const narKeyToHash = new Map<string, string>();
  const logPaths = new Map<string, string>();
  const objectsByPath = new Map<string, ObjectWithRefs[]>();
  for (const [storePath, info] of infos) {
    const hash = getStorePathHash(storePath);
    byHash.set(hash, info);
    const refs = (info.references ?? []).map((r) => getStorePathHash(r) + ".narinfo");
    const narKey = narKeyOf(info.narHash);
    narKeyToHash.set(narKey, hash);
    const lsKey = hash + ".ls";
    const realKeys = [...realisations].filter(([, r]) => r.outPath === storePath).map(([k]) => k);
    const objects: ObjectWithRefs[] = [
      { key: hash + ".narinfo", type: "narinfo", refs: [...refs, narKey, lsKey, ...realKeys] },
      { key: narKey, type: "nar", refs: [], nar_size: info.narSize },
      { key: lsKey, type: "listing", refs: [] },
    ];
    if (info.deriver) {
      const logPath = getBuildLogPath(info.deriver);
      if (logPath !== "") {
        const logKey = "log/" + basename(info.deriver);
        objects.push({ key: logKey, type: "build_log", refs: [] });
        logPaths.set(logKey, logPath);
        c.log.log("DEBUG", "Found build log for path", { store_path: storePath, drv_path: info.deriver, log_key: logKey });
      }
    }
    for (const k of realKeys) objects.push({ key: k, type: "realisation", refs: [] });
    objectsByPath.set(storePath, objects);
  }
  const closures = top.map((t) => {
    const reachable = new Set<string>();
    const visit = (p: string): void => {
      if (reachable.has(p)) return;
      reachable.add(p);
      for (const r of infos.get(p)?.references ?? []) visit(r);
    };
    visit(t);
    const objects = [...objectsByPath].filter(([p]) => reachable.has(p)).flatMap(([, o]) => o);
    return { narinfoKey: getStorePathHash(t) + ".narinfo", objects };
  });
  return { closures, byHash, narKeyToHash, logPaths, realisations };
}

async function createPendingClosure(c: Client, closure: string, objects: ObjectWithRefs[], verifyS3: boolean) {
  const body = JSON.stringify({ closure, objects, ...(verifyS3 ? { verify_s3: true } : {}) });
  const res = await serverRequest(c, "POST", joinApi(c.baseUrl, "api/pending_closures"), body, { "Content-Type": "application/json" });
  checkResponse(res, 200, 201);
  const parsed = JSON.parse(res.body.toString("utf8")) as { id: string; pending_objects: Record<string, PendingObject> | null };
  c.log.log("DEBUG", "Created pending closure", { id: parsed.id, pending_objects: Object.keys(parsed.pending_objects ?? {}).length });
  return parsed;
}

/** narinfoContent mirrors client.generateNarinfoContent. */
export function narinfoContent(meta: NarinfoMeta, sigs: string[]): string {
  const refs = [...(meta.references ?? [])].sort().map((r) => " " + r.replace(/^\/nix\/store\//, ""));
  let s = `StorePath: ${meta.store_path}\nURL: ${meta.url}\nCompression: ${meta.compression}\n`;
  s += `NarHash: ${meta.nar_hash}\nNarSize: ${meta.nar_size}\nReferences:${refs.length ? refs.join("") : " "}\n`;
  if (meta.deriver !== undefined) s += `Deriver: ${meta.deriver.replace(/^\/nix\/store\//, "")}\n`;
  for (const sig of [...sigs].sort()) s += `Sig: ${sig}\n`;
  if (meta.ca !== undefined) s += `CA: ${meta.ca}\n`;
  return s;
}

interface NarinfoMeta {
  store_path: string;
  url: string;
  compression: "zstd";
  nar_hash: string;
  nar_size: number;
  references: string[] | null;
  deriver?: string;
  signatures?: string[];
  ca?: string;
}

export interface PushOptions {
  readonly storeDir: string;
  readonly maxConcurrent: number;
  readonly verifyS3: boolean;
}

/**
 * pushPaths mirrors client.PushPaths; errors carry niks3's "step: cause" chain. Like the real one it
 * returns every store path of the pushed closures (niks3-hook prunes its queue with them).
 */
export async function pushPaths(c: Client, paths: string[], opts: PushOptions): Promise<string[]> {
  const start = performance.now();
  const wrap = async <T>(prefix: string, f: () => Promise<T> | T): Promise<T> => {
    try {
      return await f();
    } catch (err) {
      throw new Error(`${prefix}: ${(err as Error).message}`);
    }
  };
  const resolved = await wrap("resolving symlinks", () => resolveSymlinks(paths, opts.storeDir));
  c.log.log("DEBUG", "Resolved paths", { original: `[${paths.join(" ")}]`, resolved: `[${resolved.join(" ")}]` });
  const infos = await wrap("getting path info", () => getPathInfoRecursive(resolved));
  const prep = await wrap("preparing closures", () => prepareClosures(c, resolved, infos));

  const pending = new Map<string, PendingObject>();
  const closureIds = new Map<string, string>();
  await wrap("creating pending closures", async () => {
    for (const cl of prep.closures) {
      const res = await wrap("creating pending closure", () => createPendingClosure(c, cl.narinfoKey, cl.objects, opts.verifyS3));
      closureIds.set(res.id, cl.narinfoKey);
      for (const [k, v] of Object.entries(res.pending_objects ?? {})) pending.set(k, v);
    }
  });
  const newPaths = [...pending.keys()].filter((k) => k.startsWith("nar/")).length;
  c.log.log("INFO", `Uploading ${newPaths} paths to ${c.baseUrl.hostname} (${infos.size - newPaths} already cached)`);

  const metas = await wrap("uploading objects", () => uploadPending(c, pending, prep, opts.maxConcurrent));

  await wrap("signing and uploading narinfos", async () => {
    const byClosure = new Map<string, Map<string, NarinfoMeta>>();
    for (const [id, key] of closureIds) {
      const cl = prep.closures.find((x) => x.narinfoKey === key);
      const m = new Map<string, NarinfoMeta>();
      for (const o of cl?.objects ?? []) {
        const meta = o.type === "narinfo" ? metas.get(o.key) : undefined;
        if (meta) m.set(o.key, meta);
      }
      byClosure.set(id, m);
    }
    const tasks = [...byClosure].flatMap(([, m]) => [...m]);
    if (tasks.length === 0) return;
    const sigs = new Map<string, string[]>();
    for (const [id, m] of byClosure) {
      await wrap(`signing narinfos for closure ${id}`, async () => {
        const res = await serverRequest(c, "POST", joinApi(c.baseUrl, "api/pending_closures", id, "sign"),
          JSON.stringify({ narinfos: Object.fromEntries(m) }), { "Content-Type": "application/json" });
        checkResponse(res, 200);
        const parsed = JSON.parse(res.body.toString("utf8")) as { signatures: Record<string, string[]> | null };
        for (const [k, v] of Object.entries(parsed.signatures ?? {})) sigs.set(k, v ?? []);
      });
    }
    c.log.log("INFO", `Uploading ${tasks.length} narinfos`);
    await runLimited(opts.maxConcurrent, tasks.map(([key, meta]) => async () => {
      const url = pending.get(key)?.presigned_url;
      if (!url) throw new Error(`no presigned URL for narinfo ${key}`);
      const body = zstdCompressSync(Buffer.from(narinfoContent(meta, sigs.get(key) ?? [])));
      let res;
      try {
        res = await s3Request(c, "PUT", url, body, { "Content-Type": "text/x-nix-narinfo", "Content-Encoding": "zstd" });
      } catch (err) {
        throw new Error(`uploading narinfo ${key}: ${(err as Error).message}`);
      }
      if (res.status < 200 || res.status >= 300) throw new Error(`uploading narinfo ${key}: unexpected status ${res.status}`);
    }));
  });

  for (const id of closureIds.keys()) {
    await wrap(`completing pending closure ${id}`, async () => {
      const res = await serverRequest(c, "POST", joinApi(c.baseUrl, "api/pending_closures", id, "complete"), undefined, {
        "Content-Type": "application/json",
      });
      checkResponse(res, 200, 204);
    });
  }
  const elapsedNs = roundDuration((performance.now() - start) * 1e6, 1e6);
  c.log.log("INFO", `Upload complete. (${goDuration(elapsedNs)})`);
  return [...infos.keys()];
}

/** uploadPending mirrors client.UploadPendingObjects and returns narinfo metadata to sign. */
async function uploadPending(c: Client, pending: Map<string, PendingObject>, prep: Prepared, limit: number) {
  const groups = new Map<string, { nar?: [string, PendingObject]; ls?: [string, PendingObject]; narinfo?: string }>();
  const tasks: (() => Promise<void>)[] = [];
  const group = (h: string) => groups.get(h) ?? (groups.set(h, {}), groups.get(h) ?? {});
  for (const [key, obj] of pending) {
    if (obj.type === "narinfo") group(key.replace(/\.narinfo$/, "")).narinfo = key;
    else if (obj.type === "listing") group(key.replace(/\.ls$/, "")).ls = [key, obj];
    else if (obj.type === "nar") {
      const h = prep.narKeyToHash.get(key);
      if (h === undefined) throw new Error(`NAR key ${key} not found in mapping`);
      group(h).nar = [key, obj];
    } else if (obj.type === "build_log") tasks.push(() => uploadLog(c, key, obj, prep.logPaths.get(key)));
    else if (obj.type === "realisation") {
      const r = prep.realisations.get(key);
      tasks.push(async () => {
        if (!r) return c.log.log("WARN", "Realisation not found", { key });
        await wrapUpload(`uploading realisation ${key}`, () =>
          putSimple(c, obj.presigned_url ?? "", zstdCompressSync(Buffer.from(JSON.stringify(r))), { "Content-Encoding": "zstd" }));
      });
    } else throw new Error(`unknown object type ${JSON.stringify(obj.type)} for key: ${key}`);
  }
  for (const [hash, g] of groups) {
    const info = prep.byHash.get(hash);
    if (g.nar) {
      const nar = g.nar;
      tasks.push(async () => {
        if (!info) throw new Error(`missing PathInfo for NAR ${nar[0]}`);
        await uploadNarWithListing(c, nar[0], nar[1], g.ls, info);
      });
    } else if (g.narinfo !== undefined && g.ls) {
      const ls = g.ls;
      tasks.push(async () => {
        if (!info) throw new Error("missing PathInfo for metadata-only upload");
        const listing = narListing(await dumpNar(info.path), false);
        await wrapUpload(`uploading listing ${ls[0]}`, () => uploadListing(c, ls[1].presigned_url ?? "", listing));
      });
    }
  }
  await runLimited(limit, tasks);
  const metas = new Map<string, NarinfoMeta>();
  for (const [hash, g] of groups) {
    const info = prep.byHash.get(hash);
    if (g.narinfo === undefined || !info) continue;
    metas.set(g.narinfo, {
      store_path: info.path,
      url: narKeyOf(info.narHash),
      compression: "zstd",
      nar_hash: toNix32Hash(info.narHash),
      nar_size: info.narSize,
      references: info.references,
      ...(info.deriver !== undefined ? { deriver: info.deriver } : {}),
      ...(info.signatures?.length ? { signatures: info.signatures } : {}),
      ...(info.ca !== undefined ? { ca: info.ca } : {}),
    });
  }
  return metas;
}

async function wrapUpload(prefix: string, f: () => Promise<void>): Promise<void> {
  try {
    await f();
  } catch (err) {
    throw new Error(`${prefix}: ${(err as Error).message}`);
  }
}

