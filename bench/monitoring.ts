/**
 * Monitoring benchmark on a throwaway embedded stack with the GPU simulator:
 *
 * 1. One poll cycle (functions/poll-training-jobs/cycle.ts, in process, the
 *    real GPU client over HTTP) with 100, 1,000 and 10,000 active simulated
 *    jobs, and with 100 active among 10,000 finished: wall time, summed
 *    database time and queries per cycle, per job.
 * 2. Metrics ingestion through private.apply_cluster_update(): points per
 *    second by batch size, one job and eight jobs at once.
 * 3. public.job_loss_curve() on 100,000 points, as the owner under RLS.
 *
 *   npx tsx bench/monitoring.ts [--quick]      (--quick: 100 and 1,000 jobs)
 */
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import { availableParallelism, loadavg } from "node:os";
import type { AddressInfo } from "node:net";
import { resolve } from "node:path";
import { createInterface } from "node:readline";
import pg from "pg";
import { mapWithConcurrency } from "../functions/_shared/concurrency.ts";
import { GpuClusterClient } from "../functions/_shared/gpu/client.ts";
import type { GpuTrainingConfig } from "../functions/_shared/gpu/types.ts";
import { applyPolledJob } from "../functions/_shared/job-updates.ts";
import { runPollCycle } from "../functions/poll-training-jobs/cycle.ts";
import { startThrowawayStack } from "../stack/throwaway.ts";
import { point, snapshotJob } from "../tests/monitoring/support/events.ts";
import { makeUser, readyDatasetRow, runningJob } from "../tests/monitoring/support/fixtures.ts";

const quick = process.argv.includes("--quick");
const f = (x: number, d = 0) => x.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const p95 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.95))]!;

const stack = await startThrowawayStack("bench-monitoring");
const s = stack.status;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => void stack.stop().then(() => process.exit(130)));
}
console.log(`${availableParallelism()} CPUs, load average ${loadavg().map((x) => x.toFixed(1)).join(" ")}`);
const apiKey = "bench-key";
// The simulator runs in its own process: the CPU time measured here is the poller's.
const simProcess = spawn(resolve("node_modules/.bin/tsx"), ["bench/monitoring-simulator.ts"], {
  env: { ...process.env, SIM_API_KEY: apiKey }, stdio: ["pipe", "pipe", "inherit"],
});
const simLines = createInterface({ input: simProcess.stdout! });
const simAnswer = (prefix: string) => new Promise<string>((ok) => {
  const onLine = (line: string) => {
    if (line.startsWith(`${prefix} `)) {
      simLines.off("line", onLine);
      ok(line.slice(prefix.length + 1));
    }
  };
  simLines.on("line", onLine);
});
const simUrl = await simAnswer("url");
// A small dataset for every cluster job, served as a signed Storage URL would be.
const lines = Array.from({ length: 200 }, (_, i) => JSON.stringify({ prompt: `q${i} ${"x".repeat(150)}`, completion: "a" })).join("\n");
const files = createServer((_req, res) => res.end(lines));
await new Promise<void>((r) => files.listen(0, "127.0.0.1", () => r()));
const datasetUrl = `http://127.0.0.1:${(files.address() as AddressInfo).port}/train.jsonl`;

// Database time: every query through this pool is timed.
const pool = new pg.Pool({ connectionString: s.DB_URL, max: 12 });
// Server-side time of the monitoring functions is counted on every connection.
pool.on("connect", (c) => void c.query("set track_functions = 'all'"));
// Only this script works on these jobs: the stack's own pg_cron poller would lease them for another
// simulator, and nothing here needs dispatching. A cycle polls every active job exactly once (a polled
// job is not due again within the cycle) however long it takes.
await pool.query("select cron.unschedule('poll-training-jobs'), cron.unschedule('dispatch-training-jobs')");
await pool.query("update private.job_settings set value = 3600 where name in ('poll_worker_budget_seconds', 'poll_interval_seconds')");
const serverMs = async () => {
  // Backends flush function statistics lazily (up to 10 s later): make every pooled one flush now.
  const clients = await Promise.all(Array.from({ length: pool.totalCount }, () => pool.connect()));
  for (const c of clients) {
    await c.query("select pg_stat_force_next_flush()");
    await c.query("select 1");
    c.release();
  }
  return Number((await pool.query(
    "select coalesce(sum(total_time), 0) as ms from pg_stat_user_functions where funcname in ('poll_claim', 'apply_cluster_update', 'poll_failed')",
  )).rows[0].ms);
};
const timing = { ms: 0, queries: 0 };
const timed = {
  query: async (...args: Parameters<pg.Pool["query"]>) => {
    const t = performance.now();
    try {
      return await (pool.query as (...a: unknown[]) => Promise<pg.QueryResult>)(...args);
    } finally {
      timing.ms += performance.now() - t;
      timing.queries++;
    }
  },
} as unknown as pg.Pool;
const gpu = new GpuClusterClient({ baseUrl: simUrl, apiKey, timeoutMs: 30_000, maxAttempts: 2 });
const noCards = async () => ({ storagePath: "", sizeBytes: 0 });

// Slow, long jobs: one step per ~5 s, a metric point every step, so each poll brings a point or two.
const config: GpuTrainingConfig = {
  base_model: "meta-llama/Llama-3.1-8B-Instruct", parameter_count: 8_030_261_248, r: 16, lora_alpha: 32, lora_dropout: 0.05,
  target_modules: ["q_proj", "v_proj"], use_rslora: false, use_dora: false, epochs: 100, batch_size: 1,
  gradient_accumulation_steps: 1, learning_rate: 2e-4, lr_scheduler: "linear", warmup_steps: 0, max_seq_length: 512, seed: 7,
  checkpoint_every_steps: 1000, logging_steps: 1, expected_tokens_per_second: 8,
};

const user = await makeUser(pool, s.JWT_SECRET, "bench");
const datasetId = await readyDatasetRow(pool, user);
const ids: string[] = [];

/** Grow to n cluster jobs running on the simulator, each with a running training job and its monitor row. */
async function grow(n: number): Promise<void> {
  const fresh: string[] = [];
  await mapWithConcurrency(Array.from({ length: n - ids.length }), 16, async () => {
    const { job } = await gpu.submitJob({ dataset_url: datasetUrl, config });
    fresh.push(job.id);
  });
  const c = await pool.connect();
  try {
    await c.query("begin");
    // Bulk rows as the dispatcher would leave them (running, external id), without per-row triggers.
    await c.query("set local session_replication_role = replica");
    const { rows } = await c.query<{ id: string; external_job_id: string }>(
      `insert into public.training_jobs (user_id, dataset_id, base_model_id, status, external_job_id, started_at, attempt_count)
       select $1, $2, 'llama-3.1-8b-instruct', 'running', e, now(), 1 from unnest($3::text[]) e returning id, external_job_id`,
      [user.id, datasetId, fresh],
    );
    await c.query("insert into private.job_monitor (job_id, external_job_id) select id, external_job_id from public.training_jobs where external_job_id = any($1)", [fresh]);
    await c.query("commit");
    ids.push(...rows.map((r) => r.id));
  } finally {
    c.release();
  }
  await waitRunning();
}

async function waitRunning(): Promise<void> {
  for (;;) {
    const answer = simAnswer("queued");
    simProcess.stdin!.write("queued\n");
    if (Number(await answer) === 0) return;
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function cycleOnce(): Promise<{ ms: number; cpuMs: number; dbMs: number; serverMs: number; queries: number; claimed: number }> {
  await pool.query("update private.job_monitor set next_poll_at = now(), lease_until = null where needs_poll");
  await pool.query("analyze private.job_monitor");
  timing.ms = 0;
  timing.queries = 0;
  const server0 = await serverMs();
  const t = performance.now();
  const cpu0 = process.cpuUsage();
  const report = await runPollCycle({ db: timed, gpu, writeModelCard: noCards }, {});
  const cpu = process.cpuUsage(cpu0);
  const ms = performance.now() - t;
  return {
    ms, cpuMs: (cpu.user + cpu.system) / 1000, dbMs: timing.ms, serverMs: (await serverMs()) - server0,
    queries: timing.queries, claimed: report.claimed,
  };
}

console.log("\n1. One poll cycle: every active job polled once (batch 50; median of 3)\n");
console.log("| active jobs | total jobs | concurrency | cycle (ms) | jobs/s | poller CPU per job (ms) | DB server time per job (ms) | DB round trips, summed (ms) | queries |");
console.log("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
const setConcurrency = (n: number) => pool.query("update private.job_settings set value = $1 where name = 'poll_concurrency'", [n]);
const row = async (label: string, concurrency = 8) => {
  await setConcurrency(concurrency);
  const runs = [await cycleOnce(), await cycleOnce(), await cycleOnce()];
  const ms = median(runs.map((r) => r.ms));
  const db = median(runs.map((r) => r.dbMs));
  const server = median(runs.map((r) => r.serverMs));
  const cpu = median(runs.map((r) => r.cpuMs));
  const active = runs[0]!.claimed;
  const total = (await pool.query("select count(*)::int as n from public.training_jobs")).rows[0].n as number;
  console.log(`| ${f(active)}${label} | ${f(total)} | ${concurrency} | ${f(ms)} | ${f(active / (ms / 1000))} | ${f(cpu / active, 2)} | ${f(server / active, 2)} | ${f(db)} | ${runs[0]!.queries} |`);
};
for (const n of quick ? [100, 1000] : [100, 1000, 10_000]) {
  await grow(n);
  await row("");
  if (n >= 1000) await row("", 32);
}
await setConcurrency(8);
// Only active jobs cost: deactivate all but 100 (as finished jobs).
await pool.query(
  "update private.job_monitor set active = false where job_id in (select job_id from private.job_monitor order by job_id offset 100)");
await row(" (of many finished)");
simProcess.stdin!.end();

console.log("\n2. Metrics ingestion through private.apply_cluster_update()\n");
console.log("| points per update | jobs at once | updates | points/s | ms per update |");
console.log("|---:|---:|---:|---:|---:|");
for (const [batch, parallel, updates] of [[1, 1, 300], [50, 1, 100], [500, 1, 40], [50, 8, 400]] as const) {
  const jobs = await Promise.all(Array.from({ length: parallel }, () => runningJob(pool, s.JWT_SECRET)));
  const t = performance.now();
  await mapWithConcurrency(jobs, parallel, async (j) => {
    for (let u = 0; u < updates / parallel; u++) {
      const from = u * batch + 1;
      const metrics = Array.from({ length: batch }, (_, i) => point(from + i));
      await applyPolledJob(pool, snapshotJob(j.externalJobId, { step: from + batch - 1, total: 1_000_000, metrics, gpu_seconds: from }));
    }
  });
  const ms = performance.now() - t;
  console.log(`| ${batch} | ${parallel} | ${updates} | ${f((batch * updates) / (ms / 1000))} | ${f(ms / updates, 2)} |`);
}

console.log("\n3. job_loss_curve() on 100,000 points, as the owner (20 calls)\n");
const j = await runningJob(pool, s.JWT_SECRET);
await pool.query(
  `insert into public.metrics_points (job_id, user_id, step, epoch, train_loss, eval_loss, learning_rate, tokens_per_second)
   select $1, $2, g, g / 1000.0, 2.0 / sqrt(g) + 0.01 * random(), case when g % 100 = 0 then 2.1 / sqrt(g) end, 0.0002, 3900
     from generate_series(1, 100000) g`, [j.jobId, j.user.id]);
await pool.query("analyze public.metrics_points");
console.log("| max_points | rows | first call (ms) | median (ms) | p95 (ms) |");
console.log("|---:|---:|---:|---:|---:|");
for (const max of [500, 2000]) {
  const c = await pool.connect();
  const times: number[] = [];
  let rows = 0;
  try {
    await c.query("select set_config('role', 'authenticated', false), set_config('request.jwt.claims', $1, false)", [
      JSON.stringify({ sub: j.user.id, role: "authenticated" }),
    ]);
    for (let i = 0; i < 21; i++) {
      const t = performance.now();
      rows = (await c.query("select * from public.job_loss_curve($1, $2)", [j.jobId, max])).rowCount ?? 0;
      times.push(performance.now() - t);
    }
  } finally {
    c.release(true);
  }
  console.log(`| ${f(max)} | ${rows} | ${f(times[0]!)} | ${f(median(times.slice(1)))} | ${f(p95(times.slice(1)))} |`);
}

files.close();
await pool.end();
await stack.stop();
