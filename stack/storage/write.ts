/**
 * Writing and listing: upload (POST, `x-upsert: true` to overwrite), update
 * (PUT: always an upsert), remove (DELETE with `{ prefixes }`), delete one,
 * and list one folder level. All run as the caller, so the insert, update,
 * delete and select policies on storage.objects decide.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { sendJson } from "../api-server.ts";
import { authenticate } from "./auth.ts";
import type { StorageContext } from "./context.ts";
import { ERRORS } from "./errors.ts";
import { headerOf, readJson, scopeOf } from "./http.ts";
import { mustBeStorableKey, mustBeStorableKeys } from "./keys.ts";
import { deleteObjects, searchObjects } from "./queries.ts";
import type { ObjectRef } from "./read.ts";
import { uploadFromRequest } from "./upload.ts";

/** POST /object/{bucket}/{name} (create; upsert with x-upsert: true) and PUT (update) -> { Id, Key } */
export async function putObject(
  ctx: StorageContext, req: IncomingMessage, res: ServerResponse, path: string, ref: ObjectRef,
): Promise<void> {
  const caller = await authenticate(req, ctx.jwtSecret);
  const isUpdate = req.method === "PUT";
  const { id, path: key } = await uploadFromRequest(ctx, req, {
    bucket: ref.bucket,
    name: ref.name,
    caller,
    owner: caller.sub,
    isUpsert: isUpdate || headerOf(req, "x-upsert") === "true",
    scope: scopeOf(req, path, isUpdate ? "storage.object.upload_update" : "storage.object.upload"),
  });
  sendJson(res, 200, { Id: id, Key: key });
}

/** DELETE /object/{bucket} { prefixes } -> the deleted rows (what the caller could delete). */
export async function removeObjects(
  ctx: StorageContext, req: IncomingMessage, res: ServerResponse, path: string, bucket: string,
): Promise<void> {
  const caller = await authenticate(req, ctx.jwtSecret);
  const { prefixes } = await readJson(req);
  if (!Array.isArray(prefixes) || prefixes.length === 0 || !prefixes.every((p) => typeof p === "string")) {
    throw ERRORS.invalidRequest("body/prefixes must be a non-empty array of strings");
  }
  mustBeStorableKeys(prefixes as string[]);
  const rows = await ctx.db.transaction(caller, scopeOf(req, path, "storage.object.delete_many"),
    (c) => deleteObjects(c, bucket, prefixes as string[]), { allowDelete: true });
  await removeBytes(ctx, rows);
  sendJson(res, 200, rows);
}

/** DELETE /object/{bucket}/{name} -> { message } */
export async function removeObject(
  ctx: StorageContext, req: IncomingMessage, res: ServerResponse, path: string, ref: ObjectRef,
): Promise<void> {
  const caller = await authenticate(req, ctx.jwtSecret);
  const rows = await ctx.db.transaction(caller, scopeOf(req, path, "storage.object.delete"),
    (c) => deleteObjects(c, ref.bucket, [ref.name]), { allowDelete: true });
  if (rows.length === 0) throw ERRORS.noSuchKey();
  await removeBytes(ctx, rows);
  sendJson(res, 200, { message: "Successfully deleted" });
}

async function removeBytes(ctx: StorageContext, rows: Record<string, unknown>[]): Promise<void> {
  await Promise.all(rows.map((r) =>
    ctx.files.remove(String(r.bucket_id), String(r.name), typeof r.version === "string" ? r.version : null)
      .catch(() => {})));
}

const SORT_COLUMNS = new Set(["name", "updated_at", "created_at", "last_accessed_at"]);

/** POST /object/list/{bucket} { prefix, limit, offset, sortBy, search } -> folders (id null) and objects. */
export async function listObjects(
  ctx: StorageContext, req: IncomingMessage, res: ServerResponse, path: string, bucket: string,
): Promise<void> {
  const caller = await authenticate(req, ctx.jwtSecret);
  const body = await readJson(req);
  let prefix = body.prefix;
  if (typeof prefix !== "string") throw ERRORS.invalidRequest("body must have required property 'prefix'");
  mustBeStorableKey(prefix);
  if (typeof body.search === "string") mustBeStorableKey(body.search);
  const limit = body.limit ?? 100;
  const offset = body.offset ?? 0;
  if (!Number.isInteger(limit) || (limit as number) < 1) throw ERRORS.invalidRequest("body/limit must be >= 1");
  if (!Number.isInteger(offset) || (offset as number) < 0) throw ERRORS.invalidRequest("body/offset must be >= 0");
  const sortBy = (body.sortBy ?? {}) as { column?: unknown; order?: unknown };
  const column = sortBy.column ?? "name";
  const order = sortBy.order ?? "asc";
  if (typeof column !== "string" || !SORT_COLUMNS.has(column)) {
    throw ERRORS.invalidRequest("body/sortBy/column must be equal to one of the allowed values");
  }
  if (order !== "asc" && order !== "desc") throw ERRORS.invalidRequest("body/sortBy/order must be equal to one of the allowed values");
  // Real Storage treats the prefix as a folder.
  if (prefix.length > 0 && !prefix.endsWith("/")) prefix = `${prefix}/`;
  const rows = await ctx.db.transaction(caller, scopeOf(req, path, "storage.object.list"), (c) =>
    searchObjects(c, bucket, prefix as string, {
      limit: limit as number, offset: offset as number,
      search: typeof body.search === "string" ? body.search : "", column, order,
    }));
  sendJson(res, 200, rows);
}
