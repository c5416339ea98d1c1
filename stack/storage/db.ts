/**
 * Database access as real Storage does it: every statement runs inside a
 * transaction that first sets `role` to the caller's JWT role and exposes the
 * claims (`request.jwt.claims`, `request.jwt.claim.sub`, ...) so that
 * auth.uid() and storage.objects policies decide. The role must be one
 * `authenticator` may become, as with PostgREST.
 */
import pg from "pg";
import type { Caller } from "./auth.ts";
import { ERRORS } from "./errors.ts";

/** Per-request values real Storage also exposes to SQL. */
export type RequestScope = {
  method: string;
  path: string;
  headers: Record<string, unknown>;
  /** One of Storage's route operations, e.g. `storage.object.upload` (see storage.operation()). */
  operation: string;
};

export type TxOptions = {
  /** Roll back instead of committing: real Storage's testPermission(). */
  rollback?: boolean;
  /** Set storage.allow_delete_query so storage.protect_delete() lets deletes through. */
  allowDelete?: boolean;
};

const SCOPE_SQL = `
  select pg_catalog.set_config('role', r.rolname, true),
         pg_catalog.set_config('request.jwt.claim.role', r.rolname, true),
         pg_catalog.set_config('request.jwt', $2, true),
         pg_catalog.set_config('request.jwt.claim.sub', $3, true),
         pg_catalog.set_config('request.jwt.claims', $4, true),
         pg_catalog.set_config('request.headers', $5, true),
         pg_catalog.set_config('request.method', $6, true),
         pg_catalog.set_config('request.path', $7, true),
         pg_catalog.set_config('storage.operation', $8, true),
         pg_catalog.set_config('storage.allow_delete_query', $9, true)
    from pg_catalog.pg_roles r
   where r.rolname = $1
     and pg_catalog.pg_has_role('authenticator', r.oid, 'member')`;

/**
 * A user's token outlives the user: refuse `authenticated` tokens whose `sub`
 * is not (or no longer) in auth.users, so a deleted user cannot read or sign
 * their files while storage-cleanup removes them. Stricter than real Storage,
 * which leaves this to RLS (docs/standins/storage.md).
 */
async function mustBeKnownUser(client: pg.PoolClient, sub: string | undefined): Promise<void> {
  const { rows } = await client.query<{ ok: boolean }>(
    "select exists (select 1 from auth.users u where u.id::text = $1) as ok", [sub ?? ""],
  );
  if (!rows[0]?.ok) throw ERRORS.accessDenied("The user of this token does not exist (deleted, or never signed up)");
}

export class StorageDb {
  readonly pool: pg.Pool;

  constructor(dbUrl: string) {
    this.pool = new pg.Pool({ connectionString: dbUrl, max: 10, application_name: "storage-standin" });
    // An idle client's connection dropping (e.g. the stack stopping) must not crash the process.
    this.pool.on("error", () => {});
  }

  /** Run `fn` in a transaction scoped to `caller`; commits unless `rollback` is set. */
  async transaction<T>(
    caller: Caller,
    scope: RequestScope,
    fn: (c: pg.PoolClient) => Promise<T>,
    opts: TxOptions = {},
  ): Promise<T> {
    const client = await this.pool.connect();
    let broken = false;
    try {
      await client.query("begin");
      if (caller.role === "authenticated") await mustBeKnownUser(client, caller.sub);
      const set = await client.query(SCOPE_SQL, [
        caller.role,
        caller.jwt,
        caller.sub ?? "",
        JSON.stringify(caller.claims),
        JSON.stringify(scope.headers),
        scope.method,
        scope.path,
        scope.operation,
        opts.allowDelete ? "true" : "false",
      ]);
      if (set.rowCount === 0) throw ERRORS.accessDenied(`role "${caller.role}" does not exist or is not allowed`);
      const out = await fn(client);
      await client.query(opts.rollback ? "rollback" : "commit");
      return out;
    } catch (e) {
      try {
        await client.query("rollback");
      } catch {
        broken = true;
      }
      throw e;
    } finally {
      client.release(broken);
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
