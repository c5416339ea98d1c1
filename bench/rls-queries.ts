/**
 * The reads bench/rls.ts times, written as PostgREST 12 sends them for
 * supabase-js calls: a read-only transaction, one `set_config` statement for
 * role, claims and request GUCs, then the query wrapped in PostgREST's
 * `pgrst_source` envelope with filter values, LIMIT and OFFSET as untyped
 * parameters of a named prepared statement (PostgREST's default
 * `db-prepared-statements = true`; after five executions the server may
 * switch to a generic plan, and pg_prepared_statements says whether it did).
 */
import type pg from "pg";

export type Role = "authenticated" | "service_role";

/** One way of issuing a read: who, the statement, and its parameters for a sample. */
export type Variant<S> = { name: string; role: Role; statement: string; sql: string; params: (s: S) => unknown[] };

const envelope = (source: string) =>
  `WITH pgrst_source AS ( ${source} )  SELECT null::bigint AS total_result_set, pg_catalog.count(_postgrest_t) AS page_total, ` +
  `coalesce(json_agg(_postgrest_t), '[]') AS body, nullif(current_setting('response.headers', true), '') AS response_headers, ` +
  `nullif(current_setting('response.status', true), '') AS response_status FROM ( SELECT * FROM pgrst_source ) _postgrest_t`;

const tj = (c: string) => `"public"."training_jobs"."${c}"`;
/** What a job list shows: name, model, status and progress, cost, error, times. */
const LIST_COLUMNS = [
  "id", "name", "base_model_id", "status", "progress_pct", "current_step", "total_steps", "estimated_cost",
  "actual_cost", "currency", "error", "created_at", "started_at", "finished_at",
].map(tj).join(", ");

/**
 * `from('training_jobs').select(cols).is('deleted_at', null).order('created_at', { ascending: false }).limit(20)`,
 * optionally with `.eq('user_id', uid)` first.
 */
export function listJobsSql(withUserFilter: boolean): string {
  const where = withUserFilter ? `${tj("user_id")} = $1 AND ${tj("deleted_at")} IS NULL` : `${tj("deleted_at")} IS NULL`;
  const n = withUserFilter ? 2 : 1;
  return envelope(
    `SELECT ${LIST_COLUMNS} FROM "public"."training_jobs"  WHERE  ${where} ORDER BY ${tj("created_at")} DESC LIMIT $${n} OFFSET $${n + 1}`,
  );
}

const mp = (c: string) => `"public"."metrics_points"."${c}"`;

/**
 * `from('metrics_points').select('step,epoch,train_loss,eval_loss,learning_rate').eq('job_id', id).order('step')`:
 * the whole series (no `db-max-rows`; hosted Supabase caps responses at 1,000 rows by default).
 */
export const CURVE_SQL = envelope(
  `SELECT ${["step", "epoch", "train_loss", "eval_loss", "learning_rate"].map(mp).join(", ")} FROM "public"."metrics_points"  ` +
    `WHERE  ${mp("job_id")} = $1 ORDER BY ${mp("step")} ASC`,
);

/** `rpc('job_loss_curve', { job_id, max_points: 500 })`: the M4-downsampled curve for a chart. */
export const CURVE_RPC_SQL = envelope(
  `SELECT pgrst_call.* FROM "public"."job_loss_curve"("job_id" := $1::uuid, "max_points" := $2::integer) pgrst_call`,
);

export function claims(role: Role, userId?: string): string {
  const now = Math.floor(Date.now() / 1000);
  if (role === "service_role") return JSON.stringify({ iss: "supabase-demo", role, iat: now, exp: now + 3600 });
  return JSON.stringify({
    iss: "http://127.0.0.1:54321/auth/v1", aud: "authenticated", sub: userId, email: "", phone: "", role,
    aal: "aal1", session_id: "00000000-0000-4000-8000-000000000000", is_anonymous: false, iat: now, exp: now + 3600,
    app_metadata: { provider: "email", providers: ["email"] }, user_metadata: {},
  });
}

const PRELUDE =
  "select set_config('search_path', $1, true), set_config('role', $2, true), set_config('request.jwt.claims', $3, true), " +
  "set_config('request.method', $4, true), set_config('request.path', $5, true), set_config('request.headers', $6, true), " +
  "set_config('request.cookies', $7, true)";

/** Open the request transaction as PostgREST does for a GET. */
export async function beginRequest(c: pg.Client, role: Role, userId: string | undefined, path: string): Promise<void> {
  await c.query("BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY");
  await c.query({
    name: "pgrst_prelude",
    text: PRELUDE,
    values: ['"public", "extensions"', role, claims(role, userId), "GET", path, '{"accept":"application/json"}', "{}"],
  });
}

export type Timing = { queryMs: number; requestMs: number; rows: number };

/** Keep every column as the server's text, as PostgREST passes the body on: no JSON.parse in the timing. */
const raw = { getTypeParser: () => (v: string) => v } as unknown as pg.CustomTypesConfig;

/** One request: transaction, GUCs, the named prepared statement, commit. */
export async function request<S>(c: pg.Client, v: Variant<S>, sample: S, userId: string | undefined): Promise<Timing> {
  const t0 = performance.now();
  await beginRequest(c, v.role, userId, `/${v.statement}`);
  const t1 = performance.now();
  const r = await c.query<{ page_total: string }>({ name: v.name, text: v.sql, values: v.params(sample), types: raw });
  const t2 = performance.now();
  await c.query("COMMIT");
  const t3 = performance.now();
  return { queryMs: t2 - t1, requestMs: t3 - t0, rows: Number(r.rows[0]?.page_total ?? 0) };
}

/** The response body of one request, to check that every variant gives the same answer. */
export async function answer<S>(c: pg.Client, v: Variant<S>, sample: S, userId: string | undefined): Promise<string> {
  await beginRequest(c, v.role, userId, `/${v.statement}`);
  try {
    const r = await c.query<{ body: string }>({ name: v.name, text: v.sql, values: v.params(sample), types: raw });
    return r.rows[0]?.body ?? "";
  } finally {
    await c.query("ROLLBACK");
  }
}

/** EXPLAIN (ANALYZE, BUFFERS) of one request's statement as that role, with the given plan cache mode. */
export async function explain<S>(
  c: pg.Client, v: Variant<S>, sample: S, userId: string | undefined, mode: "custom" | "generic",
): Promise<string[]> {
  await beginRequest(c, v.role, userId, `/${v.statement}`);
  try {
    if (mode === "custom") {
      const r = await c.query<{ "QUERY PLAN": string }>(`EXPLAIN (ANALYZE, BUFFERS) ${v.sql}`, v.params(sample));
      return r.rows.map((row) => row["QUERY PLAN"]);
    }
    // The named statement the timing loop prepared, forced onto its generic plan.
    await c.query("set local plan_cache_mode = force_generic_plan");
    const args = v.params(sample).map((a) => `'${String(a).replace(/'/g, "''")}'`).join(", ");
    const r = await c.query<{ "QUERY PLAN": string }>(`EXPLAIN (ANALYZE, BUFFERS) EXECUTE ${v.name}(${args})`);
    return r.rows.map((row) => row["QUERY PLAN"]);
  } finally {
    await c.query("ROLLBACK");
  }
}
