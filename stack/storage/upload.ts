/**
 * Upload as real Storage's Uploader does it:
 *  1. check the bucket's allowed_mime_types and file_size_limit (declared size);
 *  2. canUpload: run the insert (or, for upserts, INSERT ... ON CONFLICT DO
 *     UPDATE) as the caller in a transaction that is rolled back, so the
 *     caller's storage.objects policies (and any trigger) decide up front;
 *  3. stream the bytes to a temp file, enforcing the size limit as they come;
 *  4. move them to a fresh version path, then commit the row (upsert with
 *     owner = caller's sub, metadata, version) in a service-role transaction;
 *     if that fails the new bytes are deleted, otherwise the previous
 *     version's bytes are.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { SERVICE_CALLER, type Caller } from "./auth.ts";
import type { StorageContext } from "./context.ts";
import type { RequestScope } from "./db.ts";
import { ERRORS, isPgError, StorageError } from "./errors.ts";
import type { TempFile } from "./files.ts";
import { bodyChunks, headerOf } from "./http.ts";
import { multipartBoundary, readMultipart } from "./multipart.ts";
import {
  createObject, findObject, lockObject, mustFindBucket, upsertObject, type ObjectMetadata,
} from "./queries.ts";

export type UploadRequest = {
  bucket: string;
  name: string;
  /** Whose policies decide (the caller, or the service role for signed-URL uploads). */
  caller: Caller;
  /** Becomes owner_id (the caller's sub, or the signer's for signed-URL uploads). */
  owner: string | undefined;
  isUpsert: boolean;
  scope: RequestScope;
};

type FileInfo = { mimeType: string; cacheControl: string; userMetadata: Record<string, unknown> | undefined };

const EMPTY_FOLDER = ".emptyFolderPlaceholder";

export async function uploadFromRequest(
  ctx: StorageContext,
  req: IncomingMessage,
  u: UploadRequest,
): Promise<{ id: string; path: string }> {
  mustBeValidKey(u.name);
  const bucket = await ctx.db.transaction(SERVICE_CALLER, u.scope, (c) => mustFindBucket(c, u.bucket));
  const emptyFolder = u.name.endsWith(EMPTY_FOLDER);
  const bucketLimit = bucket.file_size_limit === null ? Infinity : Number(bucket.file_size_limit);
  const maxSize = emptyFolder ? 0 : Math.min(bucketLimit, ctx.fileSizeLimit);
  const allowed = emptyFolder ? [] : (bucket.allowed_mime_types ?? []);

  const temp = await ctx.files.createTemp();
  try {
    const prepare = async (info: FileInfo) => {
      if (allowed.length > 0) validateMimeType(info.mimeType, allowed);
      await canUpload(ctx, u);
    };
    const sink = async (chunk: Buffer) => {
      if (temp.size + chunk.length > maxSize) throw ERRORS.entityTooLarge();
      await temp.write(chunk);
    };
    const info = await receive(req, { prepare, sink, maxSize });
    return await commit(ctx, u, temp, info);
  } catch (e) {
    await temp.discard();
    throw e;
  }
}

/** Check (and roll back) the write the upload will make, as the request's caller. */
export async function canUpload(ctx: StorageContext, u: UploadRequest): Promise<void> {
  await ctx.db.transaction(u.caller, u.scope, async (c) => {
    const w = { bucket: u.bucket, name: u.name, owner: u.owner, version: "1" };
    if (u.isUpsert) await upsertObject(c, w);
    else await createObject(c, w);
  }, { rollback: true });
}

async function receive(
  req: IncomingMessage,
  h: { prepare: (info: FileInfo) => Promise<void>; sink: (chunk: Buffer) => Promise<void>; maxSize: number },
): Promise<FileInfo> {
  const contentType = headerOf(req, "content-type");
  const boundary = multipartBoundary(contentType);
  if (boundary) {
    let info: FileInfo | undefined;
    try {
      await readMultipart(bodyChunks(req), boundary, {
        onFile: async (part, fields) => {
          info = {
            mimeType: fields.contentType || part.contentType || "text/plain",
            cacheControl: fields.cacheControl ? `max-age=${fields.cacheControl}` : "no-cache",
            userMetadata: parseJson(fields.metadata ?? fields.userMetadata),
          };
          await h.prepare(info);
        },
        sink: h.sink,
      });
    } catch (e) {
      if (e instanceof StorageError || isPgError(e)) throw e;
      throw ERRORS.noContentProvided((e as Error).message);
    }
    if (!info) throw ERRORS.noContentProvided();
    return info;
  }
  const metadataHeader = headerOf(req, "x-metadata");
  const info: FileInfo = {
    mimeType: contentType || "application/octet-stream",
    cacheControl: headerOf(req, "cache-control") ?? "no-cache",
    userMetadata: metadataHeader ? parseJson(Buffer.from(metadataHeader, "base64").toString("utf8")) : undefined,
  };
  const declared = Number(headerOf(req, "content-length"));
  if (Number.isFinite(declared) && declared > h.maxSize) throw ERRORS.entityTooLarge();
  await h.prepare(info);
  for await (const chunk of bodyChunks(req)) await h.sink(chunk);
  return info;
}

async function commit(ctx: StorageContext, u: UploadRequest, temp: TempFile, info: FileInfo) {
  const eTag = await temp.finish();
  const version = randomUUID();
  const metadata: ObjectMetadata = {
    eTag,
    size: temp.size,
    mimetype: info.mimeType,
    cacheControl: info.cacheControl,
    lastModified: new Date().toISOString(),
    contentLength: temp.size,
    httpStatusCode: 200,
  };
  await ctx.files.place(temp, u.bucket, u.name, version);
  let previous: string | null = null;
  let row: { id: string };
  try {
    row = await ctx.db.transaction(SERVICE_CALLER, u.scope, async (c) => {
      await lockObject(c, u.bucket, u.name);
      const current = await findObject(c, u.bucket, u.name, { forUpdate: true, allowMissing: true });
      previous = current?.version ?? null;
      return await upsertObject(c, {
        bucket: u.bucket, name: u.name, owner: u.owner, version, metadata, userMetadata: info.userMetadata ?? {},
      });
    });
  } catch (e) {
    await ctx.files.remove(u.bucket, u.name, version);
    throw e;
  }
  if (previous && previous !== version) await ctx.files.remove(u.bucket, u.name, previous).catch(() => {});
  return { id: row.id, path: `${u.bucket}/${u.name}` };
}

/** Real Storage's Uploader.validateMimeType: "type/subtype" must equal an allowed entry or match "type/*". */
export function validateMimeType(mimeType: string, allowed: string[]): void {
  const [type, subtype] = mimeType.split("/");
  if (subtype === undefined) throw ERRORS.invalidMimeType(mimeType);
  for (const entry of allowed) {
    const [allowedType, allowedSubtype] = entry.split("/");
    if (allowedType === type && (allowedSubtype === "*" || allowedSubtype === subtype)) return;
  }
  throw ERRORS.invalidMimeType(mimeType);
}

/**
 * Object names: non-empty, no control characters. Stricter than real Storage
 * only where names would escape the file layout: no empty, "." or ".." segments.
 */
export function mustBeValidKey(name: string): void {
  // eslint-disable-next-line no-control-regex
  if (!name || /[\u0000-\u001f\u007f]/.test(name) || name.split("/").some((s) => s === "" || s === "." || s === "..")) {
    throw ERRORS.invalidKey(name);
  }
}

function parseJson(text: string | undefined): Record<string, unknown> | undefined {
  if (!text) return undefined;
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === "object" && v !== null ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
