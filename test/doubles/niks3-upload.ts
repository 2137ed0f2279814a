// niks3-upload: the double's object uploads (client/nar_upload.go, multipart.go, simple_uploads.go,
// metadata_tasks.go): NARs as zstd via one presigned PUT or a multipart upload, .ls listings and
// build logs as zstd with Content-Encoding: zstd, and a bounded worker pool like errgroup.SetLimit.

import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { zstdCompressSync } from "node:zlib";
import { formatBytes } from "./go-format.ts";
import { dumpNar, narListing, type NarListing } from "./nar.ts";
import { checkResponse, joinApi, s3Request, serverRequest, type Client } from "./niks3-http.ts";
import type { PathInfo } from "./niks3-pathinfo.ts";

export interface PendingObject {
  type: string;
  presigned_url?: string;
  multipart_info?: { upload_id: string; part_urls: string[] };
}

/** putSimple is one presigned PUT that must answer 200 or 204 (UploadBytesToPresignedURLWithHeaders). */
export async function putSimple(c: Client, url: string, data: Buffer, headers: Record<string, string> = {}): Promise<void> {
  let res;
  try {
    res = await s3Request(c, "PUT", url, data, { "Content-Type": "application/octet-stream", ...headers });
  } catch (err) {
    throw new Error(`uploading: ${(err as Error).message}`);
  }
  checkResponse(res, 200, 204);
}

function partSizeForNar(narSize: number): number {
  const step = 16 << 20;
  const size = Math.ceil(narSize / 9000);
  if (size <= 10 << 20) return 10 << 20;
  return Math.min(Math.ceil(size / step) * step, 5 * 1024 ** 3);
}

/** uploadMultipart mirrors client.uploadMultipart (sequential parts, request-parts, complete). */
async function uploadMultipart(c: Client, data: Buffer, info: { upload_id: string; part_urls: string[] }, key: string, partSize: number) {
  const urls = [...info.part_urls];
  const parts: { part_number: number; etag: string }[] = [];
  for (let n = 1, off = 0; off < data.length; n++, off += partSize) {
    if (n > urls.length) {
      c.log.log("INFO", "Requesting additional part URLs", { object_key: key, current_part: n, requesting: 100 });
      const body = JSON.stringify({ object_key: key, upload_id: info.upload_id, start_part_number: n, num_parts: 100 });
      const res = await serverRequest(c, "POST", joinApi(c.baseUrl, "api/multipart/request-parts"), body, { "Content-Type": "application/json" });
      checkResponse(res, 200);
      const more = JSON.parse(res.body.toString("utf8")) as { part_urls: string[]; start_part_number: number };
      if (more.start_part_number !== n) throw new Error(`server returned start part ${more.start_part_number} but requested ${n}`);
      if (!more.part_urls?.length) throw new Error(`server returned empty part URLs list (requested 100 parts starting at ${n})`);
      urls.push(...more.part_urls);
      c.log.log("INFO", "Received additional part URLs", { count: more.part_urls.length, total_parts: urls.length });
    }
    const res = await s3Request(c, "PUT", urls[n - 1] ?? "", data.subarray(off, off + partSize), { "Content-Type": "application/octet-stream" });
    try {
      checkResponse(res, 200, 201, 204);
    } catch (err) {
      throw new Error(`uploading part ${n}: ${(err as Error).message}`);
    }
    const etag = res.headers.get("etag");
    if (!etag) throw new Error(`uploading part ${n}: no ETag in response`);
    parts.push({ part_number: n, etag: etag.replace(/^"+|"+$/g, "") });
  }
  const body = JSON.stringify({ object_key: key, upload_id: info.upload_id, parts });
  const res = await serverRequest(c, "POST", joinApi(c.baseUrl, "api/multipart/complete"), body, { "Content-Type": "application/json" });
  try {
    checkResponse(res, 200, 204);
  } catch (err) {
    throw new Error(`completing multipart upload: ${(err as Error).message}`);
  }
}

export async function uploadListing(c: Client, url: string, listing: NarListing): Promise<void> {
  await putSimple(c, url, zstdCompressSync(Buffer.from(JSON.stringify(listing))), { "Content-Encoding": "zstd" });
}

export async function uploadNarWithListing(c: Client, key: string, obj: PendingObject, ls: [string, PendingObject] | undefined, info: PathInfo) {
  c.log.log("INFO", `Uploading ${basename(info.path)} (${formatBytes(info.narSize)})`);
  const nar = await dumpNar(info.path);
  const compressed = zstdCompressSync(nar);
  await simulatedLink();
  try {
    if (obj.multipart_info) await uploadMultipart(c, compressed, obj.multipart_info, key, partSizeForNar(info.narSize));
    else await putSimple(c, obj.presigned_url ?? "", compressed);
  } catch (err) {
    throw new Error(`uploading NAR ${key}: ${(err as Error).message}`);
  }
  c.log.log("DEBUG", "Uploaded NAR", { object_key: key });
  if (ls) {
    try {
      await uploadListing(c, ls[1].presigned_url ?? "", narListing(nar, true));
    } catch (err) {
      throw new Error(`uploading listing ${ls[0]}: ${(err as Error).message}`);
    }
  }
}

let linkBusyUntil = Promise.resolve();

/**
 * simulatedLink models a slow uplink for benchmarks: with NIKS3_DOUBLE_UPLOAD_DELAY_MS set, each
 * NAR upload takes that long first, one NAR at a time per process (parallel uploads share the link,
 * as they share bandwidth). Real niks3 has no such knob.
 */
function simulatedLink(): Promise<void> {
  const delay = Number(process.env.NIKS3_DOUBLE_UPLOAD_DELAY_MS ?? "0");
  if (!Number.isFinite(delay) || delay <= 0) return Promise.resolve();
  const turn = linkBusyUntil.then(() => new Promise<void>((resolve) => setTimeout(resolve, delay)));
  linkBusyUntil = turn;
  return turn;
}

export async function uploadLog(c: Client, key: string, obj: PendingObject, logPath: string | undefined): Promise<void> {
  if (logPath === undefined) return c.log.log("WARN", "Build log not found", { key });
  let text: Buffer;
  try {
    text = logPath.endsWith(".bz2") ? execFileSync("bzip2", ["-dc", logPath], { maxBuffer: 1 << 30 }) : readFileSync(logPath);
  } catch (err) {
    return c.log.log("WARN", "Failed to compress build log", { key, log_path: logPath, error: (err as Error).message });
  }
  let res;
  try {
    res = await s3Request(c, "PUT", obj.presigned_url ?? "", zstdCompressSync(text), {
      "Content-Type": "text/plain; charset=utf-8",
      "Content-Encoding": "zstd",
    });
    checkResponse(res, 200, 201, 204);
  } catch (err) {
    throw new Error(`uploading build log ${key}: ${(err as Error).message}`);
  }
}

/** runLimited runs tasks with at most `limit` in flight and fails with the first error (errgroup). */
export async function runLimited(limit: number, tasks: (() => Promise<void>)[]): Promise<void> {
  let next = 0;
  let failed: unknown;
  const worker = async (): Promise<void> => {
    while (failed === undefined && next < tasks.length) {
      const task = tasks[next++];
      try {
        await task?.();
      } catch (err) {
        failed ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, tasks.length)) }, worker));
  if (failed !== undefined) throw failed;
}

