// fake-niks3-bucket: the fake server's S3 side: the public read path of the binary cache and the
// presigned PUTs (simple and multipart parts) the API hands out.

import { createHash } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { zstdDecompressSync } from "node:zlib";
import { getS3, putS3, type Store } from "./fake-niks3-store.ts";

export function sendText(res: ServerResponse, status: number, text: string, contentType = "text/plain; charset=utf-8"): void {
  res.writeHead(status, { "Content-Type": contentType, "X-Content-Type-Options": "nosniff" });
  res.end(text);
}

export function s3Error(res: ServerResponse, status: number, code: string, message: string, key: string): void {
  const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><Key>${key}</Key></Error>`;
  sendText(res, status, xml, "application/xml");
}

/** serveCache is the public read path: GET/HEAD of any stored key, S3-style 404 otherwise. */
export function serveCache(store: Store, req: IncomingMessage, res: ServerResponse, k: string): void {
  const obj = getS3(store, k);
  if (!obj) return s3Error(res, 404, "NoSuchKey", "The specified key does not exist.", k);
  res.writeHead(200, { "Content-Type": obj.meta.contentType, "Content-Length": obj.data.length });
  res.end(req.method === "HEAD" ? undefined : obj.data);
}

/**
 * putObject is a presigned PUT: the URL's signature must be one the server granted for this key
 * (and part), else 403 like S3. zstd-encoded bodies are stored decoded.
 */
export function putObject(store: Store, req: IncomingMessage, res: ServerResponse, body: Buffer, k: string): void {
  const q = new URL(req.url ?? "/", "http://x").searchParams;
  const grant = store.grants.get(q.get("X-Niks3-Double-Signature") ?? "");
  const partNumber = q.get("partNumber");
  const uploadId = q.get("uploadId");
  const matches = grant && grant.key === k && grant.expiresAt > Date.now() &&
    (grant.uploadId ?? null) === uploadId && (grant.partNumber === undefined ? null : String(grant.partNumber)) === partNumber;
  if (!matches) return s3Error(res, 403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided.", k);
  const etag = `"${createHash("md5").update(body).digest("hex")}"`;
  if (uploadId !== null) {
    const mp = store.multipart.get(uploadId);
    if (!mp) return s3Error(res, 404, "NoSuchUpload", "The specified multipart upload does not exist.", k);
    mp.parts.set(Number(partNumber), { etag: etag.slice(1, -1), data: body });
  } else {
    const encoding = req.headers["content-encoding"];
    let data = body;
    if (encoding === "zstd") {
      try {
        data = zstdDecompressSync(body);
      } catch {
        return s3Error(res, 400, "InvalidRequest", "Content-Encoding is zstd but the body is not valid zstd.", k);
      }
    } else if (encoding !== undefined) {
      return s3Error(res, 400, "InvalidRequest", `the niks3 double does not decode Content-Encoding ${encoding}.`, k);
    }
    putS3(store, k, data, req.headers["content-type"] ?? "binary/octet-stream", encoding);
  }
  res.writeHead(200, { ETag: etag });
  res.end();
}

