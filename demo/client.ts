/**
 * The demo's "frontend": everything it does, it does as the demo user with
 * the user's access token, the way a browser app would.
 *
 * - Storage and Edge Functions: supabase-js, exactly as in a frontend.
 * - Tables and RPCs: THIS IS THE POSTGREST-EQUIVALENT PATH. The embedded
 *   stack has no PostgREST, so `PostgrestEquivalent` runs each request's SQL
 *   the way PostgREST does for a request carrying this token: one
 *   transaction, `set local role authenticated`, `request.jwt.claims` set to
 *   the token's claims (so `auth.uid()` and RLS see this user), the query,
 *   commit. Nothing here bypasses RLS or column grants. Against a real
 *   Supabase stack you would write the supabase-js call named in each
 *   method's comment instead.
 */
import { createClient, type SupabaseClient } from "@supabase/supabase-js";
import { decodeJwt } from "jose";
import pg from "pg";

const IDENT = /^[a-z_][a-z0-9_]*$/;

function ident(name: string): string {
  if (!IDENT.test(name)) throw new Error(`Not a plain identifier: "${name}"`);
  return name;
}

/** Node 20 has no WebSocket and supabase-js insists on one for Realtime, which the embedded stack lacks. */
class NoWebSocket {
  constructor() {
    throw new Error("Realtime is not available on the embedded stack; the demo polls instead");
  }
}

/** supabase-js acting for the user (anon key + the user's access token), as a signed-in frontend. */
export function userSupabase(apiUrl: string, anonKey: string, accessToken: string): SupabaseClient {
  return createClient(apiUrl, anonKey, {
    global: { headers: { Authorization: `Bearer ${accessToken}` } },
    auth: { persistSession: false, autoRefreshToken: false },
    realtime: { transport: NoWebSocket as never },
  });
}

/** Table reads/writes and RPCs as PostgREST would run them for one user's token. */
export class PostgrestEquivalent {
  readonly #pool: pg.Pool;
  readonly #claims: string;

  /** `dbUrl`: a connection PostgREST would use (it switches to the token's role per request). */
  constructor(dbUrl: string, accessToken: string) {
    this.#pool = new pg.Pool({ connectionString: dbUrl, max: 2, application_name: "demo (as PostgREST)" });
    const claims = decodeJwt(accessToken);
    if (claims.role !== "authenticated" || typeof claims.sub !== "string") throw new Error("The demo acts with a signed-in user's token");
    this.#claims = JSON.stringify(claims);
  }

  /** One request: a transaction as the token's role with its claims. */
  async request<T extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<T[]> {
    const c = await this.#pool.connect();
    try {
      await c.query("begin");
      await c.query("select set_config('role', 'authenticated', true), set_config('request.jwt.claims', $1, true)", [this.#claims]);
      const { rows } = await c.query<T>(sql, params);
      await c.query("commit");
      return rows;
    } catch (err) {
      await c.query("rollback").catch(() => {});
      throw err;
    } finally {
      c.release();
    }
  }

  /** supabase-js: `supabase.from(table).insert(row).select().single()`. */
  async insert<T extends pg.QueryResultRow>(table: string, row: Record<string, unknown>): Promise<T> {
    const cols = Object.keys(row).map(ident);
    const values = cols.map((_, i) => `$${i + 1}`).join(", ");
    const rows = await this.request<T>(
      `insert into public.${ident(table)} (${cols.join(", ")}) values (${values}) returning *`, Object.values(row));
    return rows[0]!;
  }

  /** supabase-js: `supabase.from(table).select(columns).eq("id", id).single()` (null when RLS hides it). */
  async byId<T extends pg.QueryResultRow>(table: string, id: string, columns = "*"): Promise<T | null> {
    const cols = columns === "*" ? "*" : columns.split(",").map((c) => ident(c.trim())).join(", ");
    return (await this.request<T>(`select ${cols} from public.${ident(table)} where id = $1`, [id]))[0] ?? null;
  }

  /** supabase-js: `supabase.from("job_events").select().eq("job_id", id).gt("id", after).order("id")`. */
  async jobEvents(jobId: string, afterId: number): Promise<JobEvent[]> {
    return await this.request<JobEvent>(
      "select id::int, created_at, level::text, type, message, data from public.job_events where job_id = $1 and id > $2 order by id",
      [jobId, afterId]);
  }

  /**
   * supabase-js: `supabase.rpc(fn, args)`. PostgREST calls the function with
   * named arguments; jsonb arguments are sent as JSON text.
   */
  async rpc<T extends pg.QueryResultRow>(fn: string, args: Record<string, unknown>): Promise<T[]> {
    const names = Object.keys(args).map(ident);
    const list = names.map((n, i) => `${n} => $${i + 1}`).join(", ");
    const params = Object.values(args).map((v) => (v !== null && typeof v === "object" ? JSON.stringify(v) : v));
    return await this.request<T>(`select * from public.${ident(fn)}(${list})`, params);
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}

export type JobEvent = { id: number; created_at: Date; level: string; type: string; message: string; data: Record<string, unknown> };
