/**
 * The statements real Storage issues against storage.buckets and
 * storage.objects (its knex adapter), run by the caller's transaction so that
 * RLS applies exactly as it would there.
 */
import type pg from "pg";
import { ERRORS, isPgError } from "./errors.ts";

export type BucketRow = {
  id: string;
  public: boolean | null;
  file_size_limit: string | null;
  allowed_mime_types: string[] | null;
};

export type ObjectRow = {
  id: string;
  bucket_id: string;
  name: string;
  owner_id: string | null;
  version: string | null;
  metadata: ObjectMetadata | null;
  user_metadata: Record<string, unknown> | null;
  created_at: Date;
  updated_at: Date;
};

/** `storage.objects.metadata` as the Storage API writes it. */
export type ObjectMetadata = {
  eTag: string;
  size: number;
  mimetype: string;
  cacheControl: string;
  lastModified: string;
  contentLength: number;
  httpStatusCode: number;
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export async function findBucket(c: pg.ClientBase, id: string): Promise<BucketRow | undefined> {
  const r = await c.query<BucketRow>(
    "select id, public, file_size_limit, allowed_mime_types from storage.buckets where id = $1",
    [id],
  );
  return r.rows[0];
}

export async function mustFindBucket(c: pg.ClientBase, id: string): Promise<BucketRow> {
  const bucket = await findBucket(c, id);
  if (!bucket) throw ERRORS.noSuchBucket();
  return bucket;
}

const OBJECT_COLUMNS = "id, bucket_id, name, owner_id, version, metadata, user_metadata, created_at, updated_at";

/** The object if the caller may see it (RLS select policy); otherwise NoSuchKey. */
export async function findObject(
  c: pg.ClientBase,
  bucket: string,
  name: string,
  opts: { forUpdate?: boolean; allowMissing?: boolean } = {},
): Promise<ObjectRow | undefined> {
  const r = await c.query<ObjectRow>(
    `select ${OBJECT_COLUMNS} from storage.objects where name = $1 and bucket_id = $2 limit 1${opts.forUpdate ? " for update" : ""}`,
    [name, bucket],
  );
  if (!r.rows[0] && !opts.allowMissing) throw ERRORS.noSuchKey();
  return r.rows[0];
}

export async function findObjectNames(c: pg.ClientBase, bucket: string, names: string[]): Promise<Set<string>> {
  const r = await c.query<{ name: string }>(
    "select name from storage.objects where bucket_id = $1 and name = any($2::text[])",
    [bucket, names],
  );
  return new Set(r.rows.map((row) => row.name));
}

export type ObjectWrite = {
  bucket: string;
  name: string;
  /** The writer's `sub`; `owner` (uuid, deprecated) only when it is a uuid, as real Storage does. */
  owner: string | undefined;
  version: string;
  metadata?: ObjectMetadata;
  userMetadata?: Record<string, unknown>;
};

/** Plain insert (no RETURNING: an insert-only policy must suffice); a duplicate name is KeyAlreadyExists. */
export async function createObject(c: pg.ClientBase, w: ObjectWrite): Promise<void> {
  try {
    await c.query(
      `insert into storage.objects (bucket_id, name, owner, owner_id, version, metadata, user_metadata)
       values ($1, $2, $3, $4, $5, $6, $7)`,
      params(w),
    );
  } catch (e) {
    if (isPgError(e) && e.code === "23505") throw ERRORS.keyAlreadyExists(e);
    throw e;
  }
}

/**
 * Insert or overwrite (INSERT ... ON CONFLICT DO UPDATE ... RETURNING *): for
 * an existing object RLS requires the select and update policies, for a new
 * one the insert policy. An absent owner keeps the stored one (knex drops
 * undefined values from the merge).
 */
export async function upsertObject(c: pg.ClientBase, w: ObjectWrite): Promise<{ id: string }> {
  const r = await c.query<{ id: string }>(
    `insert into storage.objects as o (bucket_id, name, owner, owner_id, version, metadata, user_metadata)
     values ($1, $2, $3, $4, $5, $6, $7)
     on conflict (name, bucket_id) do update set
       metadata = excluded.metadata,
       user_metadata = excluded.user_metadata,
       version = excluded.version,
       owner = case when $3::uuid is null then o.owner else excluded.owner end,
       owner_id = case when $4::text is null then o.owner_id else excluded.owner_id end
     returning *`,
    params(w),
  );
  return r.rows[0]!;
}

function params(w: ObjectWrite): unknown[] {
  return [
    w.bucket,
    w.name,
    w.owner && UUID.test(w.owner) ? w.owner : null,
    w.owner ?? null,
    w.version,
    w.metadata ? JSON.stringify(w.metadata) : null,
    w.userMetadata ? JSON.stringify(w.userMetadata) : null,
  ];
}

/** Delete what the caller's delete (and select) policies allow; returns the deleted rows. */
export async function deleteObjects(c: pg.ClientBase, bucket: string, names: string[]): Promise<Record<string, unknown>[]> {
  const r = await c.query(
    "delete from storage.objects where bucket_id = $1 and name = any($2::text[]) returning *",
    [bucket, names],
  );
  return r.rows;
}

export type SearchOptions = { limit: number; offset: number; search: string; column: string; order: string };

/** One folder level under `prefix` (which ends with "/" or is empty), as storage.search returns it. */
export async function searchObjects(
  c: pg.ClientBase,
  bucket: string,
  prefix: string,
  o: SearchOptions,
): Promise<Record<string, unknown>[]> {
  const r = await c.query("select * from storage.search($1, $2, $3, $4, $5, $6, $7, $8)", [
    prefix, bucket, o.limit, prefix.split("/").length, o.offset, o.search, o.column, o.order,
  ]);
  return r.rows;
}

/** Serialise writers of one object name across transactions (real Storage's waitObjectLock). */
export async function lockObject(c: pg.ClientBase, bucket: string, name: string): Promise<void> {
  await c.query("select pg_advisory_xact_lock(hashtext($1))", [`${bucket}/${name}`]);
}
