// fake-niks3-store: the fake niks3 server's "S3 bucket" and "database". The bucket holds bytes on
// disk under <stateDir>/s3 (what the binary cache read path serves); the database (committed
// objects, closures, pins, pending closures, multipart uploads) lives in memory and is snapshotted
// to <stateDir>/db.json so that serve.ts can be restarted on the same state dir.
// Objects uploaded with Content-Encoding: zstd (narinfos, listings, logs) are stored decoded, so the
// read path serves plain text; NARs are stored as uploaded (.nar.zst).

import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface S3Meta {
  contentType: string;
  /** Content-Encoding the uploader used; the stored bytes are already decoded. */
  uploadedEncoding?: string;
  size: number;
}

export interface DbObject {
  refs: string[];
  size?: number;
}

export interface PinRow {
  storePath: string;
  narinfoKey: string;
  createdAt: string;
  updatedAt: string;
}

export interface PendingClosureRow {
  closureKey: string;
  startedAt: string;
  objects: Map<string, { type: string; refs: string[]; narSize?: number }>;
}

export interface MultipartRow {
  key: string;
  closureId: number;
  parts: Map<number, { etag: string; data: Buffer }>;
}

export interface UploadGrant {
  key: string;
  expiresAt: number;
  uploadId?: string;
  partNumber?: number;
}

interface Snapshot {
  nextId: number;
  s3: Record<string, S3Meta>;
  objects: Record<string, DbObject>;
  closures: Record<string, string>;
  pins: Record<string, PinRow>;
}

/** Store is plain data plus the few helpers that keep disk and memory in step. */
export interface Store {
  readonly dir: string;
  nextId: number;
  readonly s3: Map<string, S3Meta>;
  readonly objects: Map<string, DbObject>;
  readonly closures: Map<string, string>;
  readonly pinRows: Map<string, PinRow>;
  /** name → store path; the live view tests read as `server.pins`. */
  readonly pins: Map<string, string>;
  readonly pending: Map<number, PendingClosureRow>;
  readonly multipart: Map<string, MultipartRow>;
  readonly grants: Map<string, UploadGrant>;
}

export function openStore(dir: string): Store {
  mkdirSync(join(dir, "s3"), { recursive: true });
  const store: Store = {
    dir,
    nextId: 1,
    s3: new Map(),
    objects: new Map(),
    closures: new Map(),
    pinRows: new Map(),
    pins: new Map(),
    pending: new Map(),
    multipart: new Map(),
    grants: new Map(),
  };
  const dbPath = join(dir, "db.json");
  if (existsSync(dbPath)) {
    const snap = JSON.parse(readFileSync(dbPath, "utf8")) as Snapshot;
    store.nextId = snap.nextId;
    for (const [k, v] of Object.entries(snap.s3)) store.s3.set(k, v);
    for (const [k, v] of Object.entries(snap.objects)) store.objects.set(k, v);
    for (const [k, v] of Object.entries(snap.closures)) store.closures.set(k, v);
    for (const [k, v] of Object.entries(snap.pins)) {
      store.pinRows.set(k, v);
      store.pins.set(k, v.storePath);
    }
  }
  return store;
}

export function saveStore(store: Store): void {
  const snap: Snapshot = {
    nextId: store.nextId,
    s3: Object.fromEntries(store.s3),
    objects: Object.fromEntries(store.objects),
    closures: Object.fromEntries(store.closures),
    pins: Object.fromEntries(store.pinRows),
  };
  writeFileSync(join(store.dir, "db.json"), JSON.stringify(snap));
}

function s3File(store: Store, key: string): string {
  return join(store.dir, "s3", encodeURIComponent(key));
}

export function putS3(store: Store, key: string, data: Buffer, contentType: string, uploadedEncoding?: string): void {
  writeFileSync(s3File(store, key), data);
  store.s3.set(key, { contentType, size: data.length, ...(uploadedEncoding ? { uploadedEncoding } : {}) });
  saveStore(store);
}

export function getS3(store: Store, key: string): { meta: S3Meta; data: Buffer } | undefined {
  const meta = store.s3.get(key);
  if (!meta) return undefined;
  return { meta, data: readFileSync(s3File(store, key)) };
}

export function deleteS3(store: Store, key: string): void {
  store.s3.delete(key);
  rmSync(s3File(store, key), { force: true });
  saveStore(store);
}

/** grantUpload creates the secret a presigned URL carries; it is valid for 5 h like niks3's. */
export function grantUpload(store: Store, grant: Omit<UploadGrant, "expiresAt">): string {
  const sig = randomBytes(16).toString("hex");
  store.grants.set(sig, { ...grant, expiresAt: Date.now() + 5 * 3600 * 1000 });
  return sig;
}

/** narinfoStorePath reads the StorePath line of a stored narinfo. */
export function narinfoStorePath(text: string): string | undefined {
  return /^StorePath: (\S+)$/m.exec(text)?.[1];
}

/** storePaths returns store paths whose narinfo is committed in the database and present in S3. */
export function storePaths(store: Store): Set<string> {
  const out = new Set<string>();
  for (const key of store.objects.keys()) {
    if (!key.endsWith(".narinfo")) continue;
    const obj = getS3(store, key);
    const sp = obj && narinfoStorePath(obj.data.toString("utf8"));
    if (sp) out.add(sp);
  }
  return out;
}

/** commitPendingClosure mirrors commit_pending_closure(): upsert closure and objects, merge refs. */
export function commitPendingClosure(store: Store, id: number): boolean {
  const row = store.pending.get(id);
  if (!row) return false;
  store.closures.set(row.closureKey, new Date().toISOString());
  for (const [key, obj] of row.objects) {
    const existing = store.objects.get(key);
    const refs = [...new Set([...(existing?.refs ?? []), ...obj.refs])];
    const size = existing?.size ?? obj.narSize;
    store.objects.set(key, { refs, ...(size !== undefined ? { size } : {}) });
  }
  store.pending.delete(id);
  for (const [uploadId, mp] of store.multipart) if (mp.closureId === id) store.multipart.delete(uploadId);
  saveStore(store);
  return true;
}
