/**
 * The Auth stand-in's database access: a pool whose sessions run as
 * `supabase_auth_admin`, the role GoTrue connects as and the owner of the
 * `auth` tables, so that what it may touch is what GoTrue may touch.
 */
import pg from "pg";

export class AuthDb {
  readonly pool: pg.Pool;

  constructor(dbUrl: string) {
    this.pool = new pg.Pool({
      connectionString: dbUrl,
      max: 5,
      application_name: "auth-standin",
      options: "-c role=supabase_auth_admin -c search_path=auth",
    });
    // An idle client's connection dropping (e.g. the stack stopping) must not crash the process.
    this.pool.on("error", () => {});
  }

  /** Run `fn` in one transaction: committed when it returns, rolled back when it throws (unless `commitOn` says so). */
  async transaction<T>(fn: (c: pg.PoolClient) => Promise<T>, commitOn?: (e: unknown) => boolean): Promise<T> {
    const client = await this.pool.connect();
    let broken = false;
    try {
      await client.query("begin");
      const out = await fn(client);
      await client.query("commit");
      return out;
    } catch (e) {
      try {
        await client.query(commitOn?.(e) ? "commit" : "rollback");
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
