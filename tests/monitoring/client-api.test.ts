/**
 * What clients call and watch, on the shared stack: the loss curve RPC
 * (downsampling that keeps extremes, RLS, 100,000 points) and the cancel and
 * retry RPCs' doors, called with supabase-js `rpc()` through the real
 * PostgREST (codes and HTTP statuses asserted); then, in SQL, the Realtime
 * publication of the monitoring tables and the pg_cron schedules the
 * migrations create.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LocalUser } from "../../stack/jwt.ts";
import { testStack } from "../helpers/stack.ts";
import { supabaseClient } from "../helpers/supabase.ts";
import { makeUser, runningJob } from "./support/fixtures.ts";

type Point = { step: number; train_loss: number; eval_loss: number | null };

describe("client API of monitoring", () => {
  let db: pg.Pool;
  beforeAll(() => {
    db = new pg.Pool({ connectionString: testStack().DB_URL, max: 3 });
  });
  afterAll(async () => {
    await db.end();
  });
  const running = () => runningJob(db, testStack().JWT_SECRET);

  /** `n` points: a decaying curve with one spike and one dip, eval every 100 steps. */
  async function series(jobId: string, n: number): Promise<void> {
    await db.query(
      `insert into public.metrics_points (job_id, step, epoch, train_loss, eval_loss, learning_rate, tokens_per_second)
       select $1, s, s / 1000.0, case when s = $3 then 9.5 when s = $4 then 0.001 else 2.0 / sqrt(s) + 0.001 * sin(s) end,
              case when s % 100 = 0 then 2.2 / sqrt(s) end, 0.0002, 3900
         from generate_series(1, $2) s`,
      [jobId, n, Math.floor(n * 0.37), Math.floor(n * 0.81)],
    );
  }
  /** supabase-js as the user (anon without one): rpc() and its HTTP status. */
  const as = (user?: LocalUser) => supabaseClient(testStack().ANON_KEY, user?.token);
  const curveCall = (user: LocalUser | undefined, jobId: string, max?: number) =>
    as(user).rpc("job_loss_curve", max === undefined ? { job_id: jobId } : { job_id: jobId, max_points: max });
  const curve = async (user: LocalUser, jobId: string, max?: number): Promise<Point[]> => {
    const { data, error } = await curveCall(user, jobId, max);
    if (error) throw Object.assign(new Error(error.message), error);
    return data as Point[];
  };

  it("job_loss_curve returns a short series whole, in step order", async () => {
    const j = await running();
    await series(j.jobId, 120);
    const rows = await curve(j.user, j.jobId);
    expect(rows.map((r) => r.step)).toEqual(Array.from({ length: 120 }, (_, i) => i + 1));
  });

  it("job_loss_curve downsamples 100,000 points to at most max_points, keeping the ends, the spike and the dip", async () => {
    const j = await running();
    await series(j.jobId, 100_000);
    const rows = await curve(j.user, j.jobId, 500);
    expect(rows.length).toBeLessThanOrEqual(500);
    expect(rows.length).toBeGreaterThan(300);
    const steps = rows.map((r) => r.step);
    expect(steps).toEqual([...steps].sort((a, b) => a - b));
    expect(steps[0]).toBe(1);
    expect(steps.at(-1)).toBe(100_000);
    expect(rows.find((r) => r.step === 37_000)?.train_loss).toBe(9.5);
    expect(rows.find((r) => r.step === 81_000)?.train_loss).toBe(0.001);
    const evals = rows.filter((r) => r.eval_loss !== null).map((r) => r.eval_loss!);
    expect(Math.min(...evals)).toBeCloseTo(2.2 / Math.sqrt(100_000), 10);
    // Its speed is the benchmark's (docs/BENCHMARKS.md), not a threshold here.
    // Another user sees nothing; anon may not call it; too few points is the caller's 400.
    const other = await makeUser(db, testStack().JWT_SECRET);
    expect(await curveCall(other, j.jobId)).toMatchObject({ status: 200, error: null, data: [] });
    expect(await curveCall(undefined, j.jobId)).toMatchObject({ status: 401, error: { code: "42501" } });
    expect(await curveCall(j.user, j.jobId, 3)).toMatchObject({ status: 400, error: { code: "22023" } });
  });

  it("cancel_training_job: anon may not call it (401 42501); another user's job does not exist for the caller (400 LT420)", async () => {
    const j = await running();
    const other = await makeUser(db, testStack().JWT_SECRET);
    expect(await as(other).rpc("cancel_training_job", { job_id: j.jobId })).toMatchObject({ status: 400, error: { code: "LT420" } });
    expect(await as().rpc("cancel_training_job", { job_id: j.jobId })).toMatchObject({ status: 401, error: { code: "42501" } });
    expect((await db.query("select status from public.training_jobs where id = $1", [j.jobId])).rows[0].status).toBe("running");
  });

  it("retry_training_job starts a new job from a chosen checkpoint of a finished one, with overrides", async () => {
    const j = await running();
    const ck = await db.query<{ id: string }>(
      `insert into public.checkpoints (job_id, step, eval_loss, metrics) values ($1, 40, 1.2, '{"name": "checkpoint-40"}') returning id`, [j.jobId]);
    // Not finished yet: the reference check refuses a continuation (LT010).
    expect(await as(j.user).rpc("retry_training_job", { job_id: j.jobId })).toMatchObject({ status: 400, error: { code: "LT010" } });
    await db.query("update public.training_jobs set status = 'failed', error = '{\"code\":\"LT401\",\"message\":\"oom\",\"kind\":\"system\"}' where id = $1", [j.jobId]);
    const child = await as(j.user).rpc("retry_training_job", { job_id: j.jobId, checkpoint_id: ck.rows[0]!.id, config: { batch_size: 2 } })
      .select("id, parent_job_id, resume_from_checkpoint_id, requested_config, dataset_id").single();
    expect(child).toMatchObject({
      status: 200, error: null,
      data: { parent_job_id: j.jobId, resume_from_checkpoint_id: ck.rows[0]!.id, dataset_id: j.datasetId, requested_config: { batch_size: 2 } },
    });
    const other = await running();
    const foreign = await db.query<{ id: string }>("insert into public.checkpoints (job_id, step) values ($1, 1) returning id", [other.jobId]);
    expect(await as(j.user).rpc("retry_training_job", { job_id: j.jobId, checkpoint_id: foreign.rows[0]!.id }))
      .toMatchObject({ status: 400, error: { code: "LT422" } });
    expect(await as(other.user).rpc("retry_training_job", { job_id: j.jobId })).toMatchObject({ status: 400, error: { code: "LT420" } });
  });

  it("metrics, checkpoints and artifacts are published to Realtime with their primary key as replica identity", async () => {
    const { rows } = await db.query(
      `select c.relname::text as t, c.relreplident as identity from pg_publication_tables p
         join pg_class c on c.relname = p.tablename and c.relnamespace = 'public'::regnamespace
        where p.pubname = 'supabase_realtime' and p.tablename in ('metrics_points', 'checkpoints', 'model_artifacts') order by 1`,
    );
    expect(rows).toEqual([
      { t: "checkpoints", identity: "d" }, { t: "metrics_points", identity: "d" }, { t: "model_artifacts", identity: "d" },
    ]);
  });

  it("pg_cron schedules: polling every minute on pg_cron 1.4 (10 seconds from 1.5), storage cleanup, receipt purge", async () => {
    const version = (await db.query("select extversion from pg_extension where extname = 'pg_cron'")).rows[0].extversion as string;
    const { rows } = await db.query(
      "select jobname, schedule, command from cron.job where jobname in ('poll-training-jobs', 'storage-cleanup', 'purge-webhook-receipts') order by 1");
    expect(rows).toEqual([
      { jobname: "poll-training-jobs", schedule: /^1\.[0-4]/.test(version) ? "* * * * *" : "10 seconds", command: "select private.poll_tick()" },
      { jobname: "purge-webhook-receipts", schedule: "17 3 * * *", command: "select private.purge_webhook_receipts()" },
      { jobname: "storage-cleanup", schedule: "*/5 * * * *", command: "select private.storage_cleanup_safety_net()" },
    ]);
  });
});
