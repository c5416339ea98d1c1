/**
 * Schema and RLS benchmark: what Row Level Security costs the two reads a
 * frontend makes most, against the same reads as service_role (BYPASSRLS)
 * in the same run.
 *
 *   npx tsx bench/rls.ts [--users N --jobs N --points N --iterations N --budget S]
 *
 * Defaults: 10,000 users, 1,000,000 training jobs, 10,000,000 metrics points,
 * 1,000 timed requests per variant, or fewer when a scenario's timed rounds
 * exceed --budget seconds (default 120; warm-up gets a tenth of it). Boots its own throwaway stack
 * (startThrowawayStack("bench"), free ports, removed at the end), bulk-loads
 * it (bench/rls-load.ts), then times, over random users and jobs:
 *
 * - the job list: a user's 20 most recent undeleted jobs, as authenticated
 *   without a user filter (RLS alone decides), as authenticated with
 *   `.eq('user_id', uid)`, and as service_role with that filter (baseline);
 *   typical users and heavy users (10,000 jobs) separately;
 * - one job's loss curve (1,000–5,000 points): the metrics_points rows, and
 *   the job_loss_curve() RPC, as authenticated and as service_role.
 *
 * Each request is a PostgREST-shaped transaction (bench/rls-queries.ts).
 * Variants are interleaved, each draw taking its own random user or job, so
 * load from other processes on the machine falls on all of them alike.
 * Prints p50/p95/p99 of the statement and of the whole request, the ratio to
 * the baseline, and EXPLAIN (ANALYZE, BUFFERS) of each statement once.
 * Then the same reads as supabase-js calls against the stack's API URL
 * (gateway, real PostgREST; bench/rls-http.ts), checked to return the SQL
 * variant's body, interleaved with that SQL variant in the same rounds, with
 * p50/p95/p99 and the HTTP overhead over the SQL request.
 */
import os from "node:os";
import pg from "pg";
import { startThrowawayStack } from "../stack/throwaway.ts";
import { load, picks, planLoad, type Picks } from "./rls-load.ts";
import { HTTP_CURVE_VARIANTS, HTTP_RPC_VARIANTS, httpClients, httpListVariants, httpRequest, type HttpClients, type HttpVariant } from "./rls-http.ts";
import { answer, CURVE_RPC_SQL, CURVE_SQL, explain, listJobsSql, request, type Timing, type Variant } from "./rls-queries.ts";

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v <= 0) throw new Error(`--${name} needs a positive integer, got "${process.argv[i + 1]}"`);
  return v;
}

const sizes = { users: arg("users", 10_000), jobs: arg("jobs", 1_000_000), points: arg("points", 10_000_000) };
const ITERATIONS = arg("iterations", 1000);
const WARMUP = Math.min(100, Math.ceil(ITERATIONS / 10));
const BUDGET_MS = arg("budget", 120) * 1000;

const f = (x: number, d = 2) => x.toFixed(d);
const loadavg = () => os.loadavg().map((x) => x.toFixed(2)).join(" / ");
const pick = <T>(xs: T[]): T => xs[Math.floor(Math.random() * xs.length)]!;
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!;

type Sample = { user: string; job?: string };
/** `http`: the same reads as supabase-js calls through /rest/v1, timed in the same run. */
type Scenario = { title: string; draw: () => Sample; variants: Variant<Sample>[]; baseline: string; http: HttpVariant[] };

function scenarios(p: Picks): Scenario[] {
  const listVariants = (suffix: string): Variant<Sample>[] => [
    { name: `list_rls_${suffix}`, role: "authenticated", statement: "training_jobs", sql: listJobsSql(false), params: () => [20, 0] },
    { name: `list_rls_eq_${suffix}`, role: "authenticated", statement: "training_jobs", sql: listJobsSql(true), params: (s) => [s.user, 20, 0] },
    { name: `list_service_${suffix}`, role: "service_role", statement: "training_jobs", sql: listJobsSql(true), params: (s) => [s.user, 20, 0] },
  ];
  const curve = (s: Sample) => [s.job];
  return [
    { title: "job list, typical user", draw: () => ({ user: pick(p.typical) }), variants: listVariants("typical"), baseline: "list_service_typical",
      http: httpListVariants("typical") },
    { title: "job list, heavy user", draw: () => ({ user: pick(p.heavy) }), variants: listVariants("heavy"), baseline: "list_service_heavy",
      http: httpListVariants("heavy") },
    {
      title: "loss curve rows (1,000–5,000 points)",
      draw: () => { const c = pick(p.curves); return { user: c.user, job: c.job }; },
      variants: [
        { name: "curve_rls", role: "authenticated", statement: "metrics_points", sql: CURVE_SQL, params: curve },
        { name: "curve_service", role: "service_role", statement: "metrics_points", sql: CURVE_SQL, params: curve },
      ],
      baseline: "curve_service",
      http: HTTP_CURVE_VARIANTS,
    },
    {
      title: "loss curve RPC job_loss_curve(job, 500)",
      draw: () => { const c = pick(p.curves); return { user: c.user, job: c.job }; },
      variants: [
        { name: "rpc_rls", role: "authenticated", statement: "rpc/job_loss_curve", sql: CURVE_RPC_SQL, params: (s) => [s.job, 500] },
        { name: "rpc_service", role: "service_role", statement: "rpc/job_loss_curve", sql: CURVE_RPC_SQL, params: (s) => [s.job, 500] },
      ],
      baseline: "rpc_service",
      http: HTTP_RPC_VARIANTS,
    },
  ];
}

type Stats = { p50: number; p95: number; p99: number; mean: number };
const stats = (xs: number[]): Stats => {
  const s = [...xs].sort((a, b) => a - b);
  return { p50: pct(s, 0.5), p95: pct(s, 0.95), p99: pct(s, 0.99), mean: s.reduce((a, b) => a + b, 0) / s.length };
};

async function rounds(c: pg.Client, sc: Scenario, n: number, budgetMs: number, out?: Map<string, Timing[]>): Promise<void> {
  const start = performance.now();
  for (let i = 0; i < n && performance.now() - start < budgetMs; i++) {
    const order = [...sc.variants].sort(() => Math.random() - 0.5);
    for (const v of order) {
      const s = sc.draw();
      const t = await request(c, v, s, v.role === "authenticated" ? s.user : undefined);
      out?.get(v.name)!.push(t);
    }
  }
}

async function measure(c: pg.Client, sc: Scenario): Promise<Map<string, Timing[]>> {
  const out = new Map(sc.variants.map((v) => [v.name, [] as Timing[]]));
  await rounds(c, sc, WARMUP, BUDGET_MS / 10);
  await rounds(c, sc, ITERATIONS, BUDGET_MS, out);
  return out;
}

function report(sc: Scenario, timings: Map<string, Timing[]>): void {
  const base = stats(timings.get(sc.baseline)!.map((t) => t.queryMs));
  console.log(`\n### ${sc.title} (${timings.get(sc.baseline)!.length} requests per variant)`);
  console.log("variant              | statement ms p50 / p95 / p99 | request ms p50 / p95 | rows | RLS/baseline p50 , p95");
  for (const v of sc.variants) {
    const ts = timings.get(v.name)!;
    const q = stats(ts.map((t) => t.queryMs));
    const r = stats(ts.map((t) => t.requestMs));
    const rows = stats(ts.map((t) => t.rows)).p50;
    const ratio = v.name === sc.baseline ? "baseline" : `${f(q.p50 / base.p50)}x , ${f(q.p95 / base.p95)}x`;
    console.log(
      `${v.name.padEnd(20)} | ${f(q.p50)} / ${f(q.p95)} / ${f(q.p99)}`.padEnd(53) +
        `| ${f(r.p50)} / ${f(r.p95)}`.padEnd(23) + `| ${String(rows).padEnd(5)}| ${ratio}`,
    );
  }
}

type Clients = HttpClients;
type HttpTiming = { ms: number; rows: number };

/**
 * The supabase-js calls interleaved with their SQL variants in the same rounds (as the SQL variants are
 * with each other), so that the load other processes put on the machine falls on both alike.
 */
async function httpMeasure(api: pg.Client, clients: Clients, sc: Scenario): Promise<{ http: Map<string, HttpTiming[]>; sql: Map<string, Timing[]> }> {
  const http = new Map(sc.http.map((v) => [v.name, [] as HttpTiming[]]));
  const sql = new Map(sc.http.map((v) => [v.name, [] as Timing[]]));
  const steps = sc.http.flatMap((v) => {
    const sv = sc.variants.find((x) => x.name === v.name)!;
    return [
      async (keep: boolean) => { const t = await httpRequest(clients, v, sc.draw()); if (keep) http.get(v.name)!.push(t); },
      async (keep: boolean) => {
        const s = sc.draw();
        const t = await request(api, sv, s, sv.role === "authenticated" ? s.user : undefined);
        if (keep) sql.get(v.name)!.push(t);
      },
    ];
  });
  for (const [n, budget, keep] of [[WARMUP, BUDGET_MS / 10, false], [ITERATIONS, BUDGET_MS, true]] as const) {
    const start = performance.now();
    for (let i = 0; i < n && performance.now() - start < budget; i++) {
      for (const step of [...steps].sort(() => Math.random() - 0.5)) await step(keep);
    }
  }
  return { http, sql };
}

/** End-to-end supabase-js figures beside the SQL request figures of the same variant; overhead = HTTP − SQL request. */
function httpReport(sc: Scenario, sql: Map<string, Timing[]>, timings: Map<string, HttpTiming[]>): void {
  console.log(`\n### ${sc.title}, supabase-js over HTTP (${timings.get(sc.http[0]!.name)!.length} requests per variant)`);
  console.log("variant              | HTTP ms p50 / p95 / p99 | SQL request ms p50 / p95 (same rounds) | HTTP overhead ms p50 / p95 | rows");
  for (const v of sc.http) {
    const h = stats(timings.get(v.name)!.map((t) => t.ms));
    const q = stats(sql.get(v.name)!.map((t) => t.requestMs));
    const rows = stats(timings.get(v.name)!.map((t) => t.rows)).p50;
    // A raw curve over HTTP stops at db-max-rows: less work than the SQL read, so no overhead to compute.
    const sameWork = rows === stats(sql.get(v.name)!.map((t) => t.rows)).p50 || rows < MAX_ROWS;
    const overhead = sameWork ? `${f(h.p50 - q.p50)} / ${f(h.p95 - q.p95)}` : `n/a (${MAX_ROWS}-row cap)`;
    console.log(
      `${v.name.padEnd(20)} | ${f(h.p50)} / ${f(h.p95)} / ${f(h.p99)}`.padEnd(48) + `| ${f(q.p50)} / ${f(q.p95)}`.padEnd(41) +
        `| ${overhead}`.padEnd(29) + `| ${rows}`,
    );
  }
}

/**
 * PostgREST must answer what the SQL variant answers, or the overhead compares different work.
 * db-max-rows (1000, as on Supabase) caps a raw read: the SQL body is cut to that many rows.
 */
async function checkHttpAnswers(api: pg.Client, clients: Clients, sc: Scenario): Promise<void> {
  for (let k = 0; k < 3; k++) {
    const s = sc.draw();
    for (const v of sc.http) {
      const sqlVariant = sc.variants.find((x) => x.name === v.name)!;
      const sqlBody = JSON.parse(await answer(api, sqlVariant, s, sqlVariant.role === "authenticated" ? s.user : undefined)) as unknown[];
      const httpBody = (await httpRequest(clients, v, s)).body;
      if (JSON.stringify(httpBody) !== JSON.stringify(sqlBody.slice(0, MAX_ROWS))) {
        throw new Error(`${sc.title}: ${v.name} over HTTP disagrees with SQL for ${JSON.stringify(s)}`);
      }
    }
  }
}
const MAX_ROWS = 1000;

/** The lines of a plan a reader needs: nodes, index use, buffers, timing. */
const summarise = (plan: string[]) =>
  plan.filter((l) => /->|Scan|Index|Filter|Buffers|Execution Time|InitPlan|Sort|Limit|Rows Removed/.test(l) && !/^\s*Planning:?$/.test(l));

async function main(): Promise<void> {
  const plan = planLoad(sizes);
  console.log(`# RLS benchmark: ${sizes.users} users, ${sizes.jobs} jobs, ${sizes.points} metrics points, ${ITERATIONS} requests per variant`);
  console.log(`machine: ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB; load average (1/5/15 min) at start: ${loadavg()}`);
  const t0 = performance.now();
  const stack = await startThrowawayStack("bench", { log: (m) => { if (m.startsWith("stack start:")) console.log(m); } });
  // Ctrl-C or a kill must not leave a 3 GB cluster running.
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.once(sig, () => void stack.stop().finally(() => process.exit(130)));
  }
  const su = new pg.Client({ connectionString: stack.status.DB_URL });
  // PostgREST connects as authenticator and switches role per request.
  const api = new pg.Client({ connectionString: stack.status.DB_URL.replace("postgres:postgres@", "authenticator:postgres@") });
  try {
    console.log(`stack up in ${f((performance.now() - t0) / 1000, 1)} s`);
    await su.connect();
    // Background jobs of the pipeline (pollers, safety nets) would act on the loaded jobs; this stack only serves reads.
    await su.query("update cron.job set active = false");
    const settings = await su.query<{ name: string; setting: string }>(
      `select name, pg_catalog.current_setting(name) as setting from pg_catalog.pg_settings
        where name in ('server_version', 'shared_buffers', 'work_mem', 'effective_cache_size', 'random_page_cost', 'jit', 'plan_cache_mode')`,
    );
    console.log(`postgres: ${settings.rows.map((r) => `${r.name}=${r.setting}`).join(", ")}`);
    console.log(`\nloading (heavy users: ${plan.heavyUsers} × ${plan.jobsPerHeavyUser} jobs; ${plan.longJobs} long curves)`);
    const loadSeconds = await load(stack.status.DB_URL, plan, (m) => console.log(m));
    console.log(`load total: ${f(loadSeconds, 1)} s; load average: ${loadavg()}`);
    const { picks: p, summary } = await picks(su);
    for (const [k, v] of Object.entries(summary)) console.log(`  ${k}: ${v}`);
    const sizesRes = await su.query<{ rel: string; size: string }>(
      `select c.oid::regclass::text as rel, pg_catalog.pg_size_pretty(pg_catalog.pg_relation_size(c.oid)) as size
         from pg_catalog.pg_class c where c.relnamespace = 'public'::regnamespace
          and (c.relname like 'training_jobs%' or c.relname like 'metrics_points%') and c.relkind in ('r', 'i')
        order by pg_catalog.pg_relation_size(c.oid) desc`,
    );
    console.log(`  sizes: ${sizesRes.rows.map((r) => `${r.rel} ${r.size}`).join(", ")}`);

    await api.connect();
    const all = scenarios(p);
    // Every variant must return the same rows for the same user or job, or the comparison means nothing.
    for (const sc of all) {
      for (let k = 0; k < 5; k++) {
        const s = sc.draw();
        const bodies = new Set<string>();
        for (const v of sc.variants) bodies.add(await answer(api, v, s, v.role === "authenticated" ? s.user : undefined));
        if (bodies.size !== 1) throw new Error(`${sc.title}: the variants disagree for ${JSON.stringify(s)}`);
      }
    }
    console.log("\nanswers checked: every variant returns the same body for the same user or job (5 draws per scenario)");
    console.log(`\n## Timings (ms; ${ITERATIONS} requests per variant after ${WARMUP} warm-up rounds; load average before: ${loadavg()})`);
    for (const sc of all) report(sc, await measure(api, sc));
    console.log(`\nload average after SQL timing: ${loadavg()}`);

    const clients = await httpClients(stack.status);
    for (const sc of all) await checkHttpAnswers(api, clients, sc);
    console.log("\nanswers checked: every supabase-js call returns the SQL variant's body (3 draws per scenario; raw curves cut at db-max-rows 1000)");
    console.log(`\n## End to end through supabase-js, the gateway and PostgREST ${stack.status.COMPONENTS.postgrest === "real" ? "(real)" : "(?)"} (ms; load average before: ${loadavg()})`);
    for (const sc of all) {
      const t = await httpMeasure(api, clients, sc);
      httpReport(sc, t.sql, t.http);
    }
    console.log(`\nload average after timing: ${loadavg()}`);

    const prepared = await api.query<{ name: string; generic_plans: string; custom_plans: string }>(
      "select name, generic_plans, custom_plans from pg_catalog.pg_prepared_statements where name <> 'pgrst_prelude' order by name",
    );
    console.log(`\nplans the server used (generic / custom): ${prepared.rows.map((r) => `${r.name} ${r.generic_plans}/${r.custom_plans}`).join(", ")}`);
    const generic = new Set(prepared.rows.filter((r) => Number(r.generic_plans) > 0).map((r) => r.name));

    console.log("\n## EXPLAIN (ANALYZE, BUFFERS), one request each (summarised; the plan the server mostly used)");
    for (const sc of all) {
      if (sc.title.includes("RPC")) continue; // a Function Scan: the inner plan is the curve's, shown above
      for (const v of sc.variants) {
        const s = sc.draw();
        const mode = generic.has(v.name) ? "generic" : "custom";
        const lines = await explain(api, v, s, v.role === "authenticated" ? s.user : undefined, mode);
        console.log(`\n-- ${sc.title} / ${v.name} (${mode} plan)`);
        for (const l of summarise(lines)) console.log(l);
      }
    }
    console.log(`\ntotal: ${f((performance.now() - t0) / 1000, 1)} s; load average at end: ${loadavg()}`);
  } finally {
    await api.end().catch(() => {});
    await su.end().catch(() => {});
    await stack.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
