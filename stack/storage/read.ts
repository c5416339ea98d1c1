/**
 * Reading objects: GET/HEAD `/object/{bucket}/{name}` (and its
 * `/authenticated/` and `/public/` forms) and GET `/object/info/...`.
 * As in real Storage: a private bucket needs a valid token and the caller's
 * select policy on storage.objects decides (invisible means "Object not
 * found"); a public bucket is read as the service role.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { authenticate, SERVICE_CALLER } from "./auth.ts";
import type { StorageContext } from "./context.ts";
import { ERRORS } from "./errors.ts";
import { queryOf, scopeOf } from "./http.ts";
import { findBucket, findObject, type ObjectRow } from "./queries.ts";
import { renderAsset, renderInfo } from "./render.ts";

/** authenticated: a valid token is required; default: any token, or none for public buckets; public: public buckets only. */
export type ReadMode = "authenticated" | "default" | "public";

export type ObjectRef = { bucket: string; name: string };

async function resolveObject(
  ctx: StorageContext,
  req: IncomingMessage,
  path: string,
  ref: ObjectRef,
  opts: { mode: ReadMode; operation: string },
): Promise<ObjectRow> {
  const scope = scopeOf(req, path, opts.operation);
  if (opts.mode === "public") {
    return await ctx.db.transaction(SERVICE_CALLER, scope, async (c) => {
      const bucket = await findBucket(c, ref.bucket);
      if (!bucket?.public) throw ERRORS.noSuchBucket();
      return (await findObject(c, ref.bucket, ref.name))!;
    });
  }
  const caller = await authenticate(req, ctx.jwtSecret, { allowInvalid: opts.mode === "default" });
  const bucket = await ctx.db.transaction(SERVICE_CALLER, scope, (c) => findBucket(c, ref.bucket));
  if (!bucket || (!caller.authenticated && !bucket.public)) throw ERRORS.noSuchBucket();
  const reader = bucket.public ? SERVICE_CALLER : caller;
  return (await ctx.db.transaction(reader, scope, (c) => findObject(c, ref.bucket, ref.name)))!;
}

/** GET (download, honouring Range) or HEAD (`exists()`). */
export async function getObject(
  ctx: StorageContext,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  ref: ObjectRef & { mode: ReadMode },
): Promise<void> {
  const operation = req.method === "HEAD"
    ? `storage.object.info_${ref.mode === "public" ? "public" : "authenticated"}`
    : `storage.object.get_${ref.mode === "public" ? "public" : "authenticated"}`;
  const obj = await resolveObject(ctx, req, path, ref, { mode: ref.mode, operation });
  await renderAsset(ctx, req, res, obj, { download: queryOf(req).get("download") });
}

/** GET /object/info/...: id, size, content type, etag, user metadata and timestamps. */
export async function getObjectInfo(
  ctx: StorageContext,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  ref: ObjectRef & { mode: ReadMode },
): Promise<void> {
  const operation = ref.mode === "public" ? "storage.object.info_public" : "storage.object.info_authenticated";
  const obj = await resolveObject(ctx, req, path, ref, { mode: ref.mode, operation });
  await renderInfo(ctx, res, obj);
}
