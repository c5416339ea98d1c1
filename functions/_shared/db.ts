/**
 * Direct Postgres access for Edge Functions through `SUPABASE_DB_URL`
 * (transactions, pgmq, `for update skip locked`), with the `pg` driver that
 * the Node side of the project uses too (it runs under Deno's npm support).
 */
import pg from "pg";

/** The narrow query surface handlers depend on, so tests can pass a real client or a fake. */
export type Queryable = Pick<pg.Pool, "query">;

/**
 * A small connection pool for one function instance. Edge Functions are
 * short-lived and many may run at once, so keep few connections and let idle
 * ones go quickly.
 */
export function createPool(dbUrl: string, opts: { applicationName?: string; max?: number } = {}): pg.Pool {
  return new pg.Pool({
    connectionString: dbUrl,
    max: opts.max ?? 3,
    idleTimeoutMillis: 10_000,
    connectionTimeoutMillis: 10_000,
    application_name: opts.applicationName ?? "edge-function",
  });
}
