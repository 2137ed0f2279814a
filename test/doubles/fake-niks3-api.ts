// fake-niks3-api: the authenticated niks3 endpoints as pure functions over the Store
// (server/uploads.go, pending_closure.go, pending_multipart.go, pins.go). Each returns the status
// and body the real handler would write; validation order and messages follow the Go code.

import { decodeGoJson, type GoType } from "./go-json.ts";
import { goQuote } from "./go-format.ts";
import { fingerprint, type SigningKey } from "./fake-niks3-signing.ts";
import { commitPendingClosure, deleteS3, getS3, grantUpload, putS3, saveStore, type Store } from "./fake-niks3-store.ts";
import { randomBytes } from "node:crypto";

export interface ApiResult {
  readonly status: number;
  readonly json?: unknown;
  /** Plain-text error body; written with a trailing newline like http.Error. */
  readonly error?: string;
}

const fail = (status: number, error: string): ApiResult => ({ status, error });
const ok = (json: unknown, status = 200): ApiResult => ({ status, json });
const noContent: ApiResult = { status: 204 };

const B32 = "0123456789abcdfghijklmnpqrsvwxyz";
const KEY_RES: Record<string, RegExp> = {
  narinfo: new RegExp(`^[${B32}]{32}\\.narinfo$`),
  nar: new RegExp(`^nar/[${B32}]{52}\\.nar(\\.zst|\\.xz|\\.bz2)?$`),
  listing: new RegExp(`^[${B32}]{32}\\.ls$`),
  build_log: /^log\/[a-zA-Z0-9+._?=-]+\.drv$/,
  realisation: /^realisations\/[a-z0-9]+:[a-zA-Z0-9+/=]+![a-zA-Z0-9+._?=-]+\.doi$/,
};

/** isValidUploadKey mirrors server/upload_key.go IsValidUploadKey. */
export function isValidUploadKey(key: string, type: string): boolean {
  if (key === "" || key.startsWith("/") || key.startsWith("../") || key.endsWith("/..") || key.includes("/../")) return false;
  return KEY_RES[type]?.test(key) ?? false;
}

const OBJECT: GoType = { struct: "objectWithRefs", fields: { key: "string", type: "string", refs: { slice: "string" }, nar_size: "uint64" } };
const CREATE_REQ: GoType = { struct: "createPendingClosureRequest", fields: { closure: "string", objects: { slice: OBJECT }, verify_s3: "bool" } };
const META: GoType = {
  struct: "NarinfoMetadata",
  fields: {
    store_path: "string", url: "string", compression: "string", nar_hash: "string", nar_size: "uint64",
    references: { slice: "string" }, deriver: "string", signatures: { slice: "string" }, ca: "string",
  },
};
const SIGN_REQ: GoType = { struct: "signNarinfosRequest", fields: { narinfos: { map: META } } };
const PARTS_REQ: GoType = {
  struct: "requestPartsRequest",
  fields: { object_key: "string", upload_id: "string", start_part_number: "int", num_parts: "int" },
};
const COMPLETE_MP_REQ: GoType = {
  struct: "completeMultipartRequest",
  fields: { object_key: "string", upload_id: "string", parts: { slice: { struct: "completedPart", fields: { part_number: "int", etag: "string" } } } },
};
const PIN_REQ: GoType = { struct: "createPinRequest", fields: { store_path: "string" } };

type Decoded<T> = { value: T } | { error: ApiResult };

function decode<T>(body: string, t: GoType, limit: number): Decoded<T> {
  if (Buffer.byteLength(body) > limit) return { error: fail(413, `request body exceeds ${limit} bytes`) };
  try {
    return { value: decodeGoJson<T>(body, t) ?? ({} as T) };
  } catch (err) {
    return { error: fail(400, `failed to decode request: ${(err as Error).message}`) };
  }
}

/** parseId mirrors strconv.ParseInt(id, 10, 32) and its error text. */
function parseId(id: string): number | ApiResult {
  if (!/^[+-]?\d+$/.test(id)) return fail(400, `invalid id: strconv.ParseInt: parsing ${goQuote(id)}: invalid syntax`);
  const n = Number(id);
  if (n > 2 ** 31 - 1 || n < -(2 ** 31)) return fail(400, `invalid id: strconv.ParseInt: parsing ${goQuote(id)}: value out of range`);
  return n;
}

export interface UrlMaker {
  /** presign returns the absolute URL of a PUT to /s3/<key> carrying `sig` (and part parameters). */
  presign(key: string, sig: string, part?: { uploadId: string; partNumber: number }): string;
}

const PART_SIZE = 10 * 1024 * 1024;

function estimatePartsNeeded(narSize: number): number {
  if (narSize === 0) return 10;
  let parts = Math.ceil(narSize / PART_SIZE);
  parts += Math.floor(parts / 5);
  return Math.max(2, Math.min(100, parts));
}

function partUrls(store: Store, urls: UrlMaker, key: string, uploadId: string, start: number, n: number): string[] {
  return Array.from({ length: n }, (_, i) => {
    const partNumber = start + i;
    return urls.presign(key, grantUpload(store, { key, uploadId, partNumber }), { uploadId, partNumber });
  });
}

interface CreateReq {
  closure?: string | null;
  objects?: { key: string; type: string; refs: string[] | null; nar_size?: number | null }[] | null;
  verify_s3?: boolean | null;
}

/** createPendingClosure mirrors CreatePendingClosureHandler + createPendingClosure. */
export function createPendingClosure(store: Store, urls: UrlMaker, body: string): ApiResult {
  const d = decode<CreateReq>(body, CREATE_REQ, 128 << 20);
  if ("error" in d) return d.error;
  const req = d.value;
  if (req.closure === undefined || req.closure === null) return fail(400, "missing closure key");
  if (!req.closure.endsWith(".narinfo")) return fail(400, "closure key must end with .narinfo");
  if (!req.objects || req.objects.length === 0) return fail(400, "missing objects key");
  const objects = new Map<string, { type: string; refs: string[]; narSize?: number }>();
  for (const o of req.objects) {
    const key = o?.key ?? "";
    const type = o?.type ?? "";
    if (!isValidUploadKey(key, type)) return fail(400, `invalid object key ${goQuote(key)} for type ${goQuote(type)}`);
    objects.set(key, { type, refs: o.refs ?? [], ...(o.nar_size != null ? { narSize: o.nar_size } : {}) });
  }
  const id = store.nextId++;
  const startedAt = new Date().toISOString();
  const toUpload = new Map([...objects].filter(([key]) => !store.objects.has(key) || (req.verify_s3 === true && !store.s3.has(key))));
  store.pending.set(id, { closureKey: req.closure, startedAt, objects: toUpload });
  saveStore(store);
  const pendingObjects: Record<string, unknown> = {};
  for (const [key, obj] of toUpload) {
    const size = obj.narSize ?? 0;
    if (obj.type === "nar" && !(size > 0 && size <= PART_SIZE)) {
      const uploadId = randomBytes(12).toString("hex");
      store.multipart.set(uploadId, { key, closureId: id, parts: new Map() });
      pendingObjects[key] = { type: "nar", multipart_info: { upload_id: uploadId, part_urls: partUrls(store, urls, key, uploadId, 1, estimatePartsNeeded(size)) } };
    } else {
      pendingObjects[key] = { type: obj.type, presigned_url: urls.presign(key, grantUpload(store, { key })) };
    }
  }
  return ok({ id: String(id), started_at: startedAt, pending_objects: pendingObjects });
}

interface Meta {
  store_path?: string | null;
  nar_hash?: string | null;
  nar_size?: number | null;
  references?: string[] | null;
}

/** signNarinfos mirrors SignNarinfosHandler: 403 for a key not pending in this closure. */
export function signNarinfos(store: Store, key: SigningKey, idText: string, body: string): ApiResult {
  const id = parseId(idText);
  if (typeof id !== "number") return id;
  const d = decode<{ narinfos?: Record<string, Meta> | null }>(body, SIGN_REQ, 128 << 20);
  if ("error" in d) return d.error;
  const valid = store.pending.get(id)?.objects ?? new Map();
  const signatures: Record<string, string[]> = {};
  for (const [objectKey, meta] of Object.entries(d.value.narinfos ?? {})) {
    if (!valid.has(objectKey)) return fail(403, "invalid narinfo key: not part of this pending closure");
    try {
      const fp = fingerprint({
        storePath: meta?.store_path ?? "",
        narHash: meta?.nar_hash ?? "",
        narSize: meta?.nar_size ?? 0,
        references: meta?.references ?? [],
      });
      signatures[objectKey] = [key.sign(fp)];
    } catch (err) {
      return fail(500, `failed to sign narinfo: ${(err as Error).message}`);
    }
  }
  return ok({ signatures });
}

/** completePendingClosure mirrors CommitPendingClosureHandler. */
export function completePendingClosure(store: Store, idText: string): ApiResult {
  const id = parseId(idText);
  if (typeof id !== "number") return id;
  return commitPendingClosure(store, id) ? noContent : fail(404, "pending closure not found");
}

/** requestParts mirrors RequestMorePartsHandler. */
export function requestParts(store: Store, urls: UrlMaker, body: string): ApiResult {
  const d = decode<{ object_key?: string; upload_id?: string; start_part_number?: number; num_parts?: number }>(body, PARTS_REQ, 8 << 20);
  if ("error" in d) return d.error;
  const { object_key: key = "", upload_id: uploadId = "", start_part_number: start = 0, num_parts: n = 0 } = d.value;
  if (!key) return fail(400, "missing object_key");
  if (!isValidUploadKey(key, "nar")) return fail(400, `invalid object key ${goQuote(key)}`);
  if (!uploadId) return fail(400, "missing upload_id");
  if (start <= 0) return fail(400, "start_part_number must be positive");
  if (n <= 0 || n > 1000) return fail(400, "num_parts must be between 1 and 1000");
  if (start + n - 1 > 10000) return fail(400, "requested parts exceed S3 maximum of 10000");
  if (store.multipart.get(uploadId)?.key !== key) return fail(404, "multipart upload not found");
  return ok({ part_urls: partUrls(store, urls, key, uploadId, start, n), start_part_number: start });
}

/** completeMultipart mirrors CompleteMultipartUploadHandler (S3 CompleteMultipartUpload included). */
export function completeMultipart(store: Store, body: string): ApiResult {
  type Req = { object_key?: string; upload_id?: string; parts?: { part_number: number; etag: string }[] | null };
  const d = decode<Req>(body, COMPLETE_MP_REQ, 8 << 20);
  if ("error" in d) return d.error;
  const { object_key: key = "", upload_id: uploadId = "", parts = [] } = d.value;
  if (!key) return fail(400, "missing object_key");
  if (!isValidUploadKey(key, "nar")) return fail(400, `invalid object key ${goQuote(key)}`);
  if (!uploadId) return fail(400, "missing upload_id");
  if (!parts || parts.length === 0) return fail(400, "missing parts");
  const mp = store.multipart.get(uploadId);
  if (!mp || mp.key !== key) return fail(404, "multipart upload not found");
  const sorted = [...parts].sort((a, b) => a.part_number - b.part_number);
  const chunks: Buffer[] = [];
  for (const p of sorted) {
    const got = mp.parts.get(p.part_number);
    if (!got || got.etag !== p.etag.replace(/^"+|"+$/g, "")) {
      return fail(500, `failed to complete multipart upload: InvalidPart: part ${p.part_number} was not uploaded or its ETag does not match`);
    }
    chunks.push(got.data);
  }
  putS3(store, key, Buffer.concat(chunks), "application/octet-stream");
  store.multipart.delete(uploadId);
  return noContent;
}

const PIN_NAME = /^[a-zA-Z0-9._-]+$/;

/** createPin mirrors CreatePinHandler: the closure (a pushed top-level path) must exist. */
export function createPin(store: Store, name: string, body: string): ApiResult {
  if (name === "") return fail(400, "missing pin name");
  if (!PIN_NAME.test(name)) return fail(400, "invalid pin name: must contain only alphanumeric characters, dashes, underscores, and dots");
  if (name.length > 256) return fail(400, "pin name too long: maximum 256 characters");
  const d = decode<{ store_path?: string | null }>(body, PIN_REQ, Number.MAX_SAFE_INTEGER);
  if ("error" in d) return d.error;
  const storePath = d.value.store_path ?? "";
  if (storePath === "") return fail(400, "missing store_path");
  const base = storePath.slice(storePath.lastIndexOf("/") + 1);
  const dash = base.indexOf("-");
  if (dash <= 0) return fail(400, `invalid store path: invalid store path format: ${storePath}`);
  const narinfoKey = base.slice(0, dash) + ".narinfo";
  if (!store.closures.has(narinfoKey)) return fail(404, "closure not found: store path must be pushed before pinning");
  putS3(store, `pins/${name}`, Buffer.from(storePath), "text/plain");
  const now = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
  const prev = store.pinRows.get(name);
  store.pinRows.set(name, { storePath, narinfoKey, createdAt: prev?.createdAt ?? now, updatedAt: now });
  store.pins.set(name, storePath);
  saveStore(store);
  return noContent;
}

export function listPins(store: Store): ApiResult {
  const rows = [...store.pinRows].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return ok(rows.map(([name, r]) => ({ name, store_path: r.storePath, created_at: r.createdAt, updated_at: r.updatedAt })));
}

export function deletePin(store: Store, name: string): ApiResult {
  if (name === "") return fail(400, "missing pin name");
  if (!store.pinRows.has(name)) return fail(404, "pin not found");
  store.pinRows.delete(name);
  store.pins.delete(name);
  deleteS3(store, `pins/${name}`);
  return noContent;
}

export function objectExists(store: Store, key: string): ApiResult {
  if (key === "") return fail(400, "missing object key");
  return getS3(store, key) ? noContent : { status: 404 };
}

export function cacheStats(store: Store): ApiResult {
  let bytes = 0;
  for (const o of store.objects.values()) bytes += o.size ?? 0;
  return ok({ objects: store.objects.size, logical_bytes: bytes });
}
