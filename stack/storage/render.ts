/**
 * Serving an object as real Storage's renderers do: the asset (streamed,
 * `Range` honoured with 206 + Content-Range), its headers only (HEAD), or
 * its info as JSON.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { pipeline } from "node:stream/promises";
import { sendJson } from "../api-server.ts";
import type { StorageContext } from "./context.ts";
import { ERRORS } from "./errors.ts";
import { headerOf } from "./http.ts";
import type { ObjectRow } from "./queries.ts";

export type RenderOptions = {
  /** `?download=` value: attachment disposition (empty string: no file name). */
  download?: string | null;
  /** Signed URLs send Expires (the token's expiry) instead of Cache-Control. */
  expires?: string;
};

type Asset = { size: number; version: string; mimetype: string; cacheControl: string; eTag?: string; lastModified: Date };

async function assetOf(ctx: StorageContext, obj: ObjectRow): Promise<Asset> {
  const size = obj.version ? await ctx.files.sizeOf(obj.bucket_id, obj.name, obj.version) : undefined;
  if (size === undefined || !obj.version) throw ERRORS.resourceNotFound();
  const m = obj.metadata ?? undefined;
  return {
    size,
    version: obj.version,
    mimetype: m?.mimetype ?? "application/octet-stream",
    cacheControl: m?.cacheControl ?? "no-cache",
    eTag: m?.eTag,
    lastModified: m?.lastModified ? new Date(m.lastModified) : obj.updated_at,
  };
}

/** Stream the object (GET) or only its headers (HEAD). */
export async function renderAsset(
  ctx: StorageContext,
  req: IncomingMessage,
  res: ServerResponse,
  obj: ObjectRow,
  opts: RenderOptions = {},
): Promise<void> {
  const asset = await assetOf(ctx, obj);
  const range = parseRange(headerOf(req, "range"), asset.size);
  const headers: Record<string, string | number> = {
    "accept-ranges": "bytes",
    // Real Storage never serves HTML as HTML.
    "content-type": asset.mimetype.includes("text/html") ? "text/plain" : asset.mimetype,
    "content-length": range ? range.end - range.start + 1 : asset.size,
    "last-modified": asset.lastModified.toUTCString(),
  };
  if (asset.eTag) headers.etag = asset.eTag;
  if (opts.expires) headers.expires = opts.expires;
  else headers["cache-control"] = asset.cacheControl;
  if (range) headers["content-range"] = `bytes ${range.start}-${range.end}/${asset.size}`;
  if (opts.download !== undefined && opts.download !== null) {
    const file = encodeURIComponent(opts.download);
    headers["content-disposition"] = opts.download === ""
      ? "attachment;"
      : `attachment; filename=${file}; filename*=UTF-8''${file};`;
  }
  res.writeHead(range ? 206 : 200, headers);
  if (req.method === "HEAD" || asset.size === 0) {
    res.end();
    return;
  }
  await pipeline(ctx.files.open(obj.bucket_id, obj.name, asset.version, range), res);
}

/** GET /object/info/...: the object's row as real Storage's InfoRenderer shapes it. */
export async function renderInfo(ctx: StorageContext, res: ServerResponse, obj: ObjectRow): Promise<void> {
  const asset = await assetOf(ctx, obj);
  const m = obj.metadata;
  sendJson(res, 200, {
    id: obj.id,
    name: obj.name,
    version: obj.version,
    bucket_id: obj.bucket_id,
    size: m?.size ?? null,
    content_type: m?.mimetype ?? null,
    cache_control: m?.cacheControl ?? null,
    etag: m?.eTag ?? null,
    metadata: obj.user_metadata,
    last_modified: obj.updated_at,
    created_at: obj.created_at,
  }, {
    ...(asset.eTag ? { etag: asset.eTag } : {}),
    "last-modified": asset.lastModified.toUTCString(),
    "cache-control": asset.cacheControl,
  });
}

/** `bytes=start-end`, `bytes=start-` or `bytes=-suffix`; the end is clamped to the object. */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) throw ERRORS.invalidRange();
  let start: number;
  let end: number;
  if (m[1] === "") {
    start = Math.max(size - Number(m[2]), 0);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start >= size || start > end) throw ERRORS.invalidRange();
  return { start, end };
}
