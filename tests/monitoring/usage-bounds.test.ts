/**
 * Billing trusts nothing the cluster says (issue 16.1, 15.4): a run's usage
 * is frozen once the cluster said the run ended, never exceeds wall time x
 * GPUs since it started, a gpu_seconds outside the contract is a 4xx
 * contract error, and costs use the price fixed when the job was created.
 * Through gpu-webhook on the shared stack (signed with the stack's real
 * webhook secret) and, for the SQL path, private.apply_cluster_update().
 */
import { randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobSchema } from "../../functions/_shared/gpu/types.ts";
import { testStack } from "../helpers/stack.ts";
import { event, point, snapshotJob } from "./support/events.ts";
import { events, job, LLAMA, makeUser, readyDatasetRow, runningJob, signedPost, snapshot } from "./support/fixtures.ts";

describe("usage bounds", () => {
  let db: pg.Pool;
  let url: string;
  beforeAll(() => {
    db = new pg.Pool({ connectionString: testStack().DB_URL, max: 3 });
    url = `${testStack().API_URL}/functions/v1/gpu-webhook`;
  });
  afterAll(async () => {
    await db.end();
  });
  const running = () => runningJob(db, testStack().JWT_SECRET);
  const post = (body: unknown) => signedPost(url, testStack().GPU_WEBHOOK_SECRET, JSON.stringify(body));
  const usageRows = async (jobId: string) =>
    (await db.query("select gpu_seconds::float8 as s from public.cost_records where job_id = $1 and kind = 'usage' order by created_at", [jobId])).rows
      .map((r: { s: number }) => r.s);
  const refusals = async (jobId: string) =>
    (await events(db, jobId)).filter((e) => e.type === "billing.usage_refused").map((e) => e.data);

  it("a signed progress report for a run that already ended bills nothing and says so once (LT461)", async () => {
    const j = await running();
    const done = await post(event("job.failed", j.externalJobId, { sequence: 3, step: 100, gpuSeconds: 30 }, {
      error: { code: "dataset_invalid", message: "line 3 is not JSON", retryable: false, category: "user", step: null },
    }));
    expect(done.status).toBe(200);
    expect((await job(db, j.jobId)).status).toBe("failed");
    const before = await job(db, j.jobId);
    expect(Number(before.actual_gpu_seconds)).toBe(30);
    expect(await usageRows(j.jobId)).toEqual([30]);

    const late = event("job.progress", j.externalJobId, { sequence: 9, step: 100, gpuSeconds: 1e7 }, { metrics: [] });
    expect((await post(late)).status).toBe(200);
    expect((await post({ ...late, data: { ...late.data, sequence: 10 } })).status).toBe(200);

    const after = await job(db, j.jobId);
    expect([after.actual_gpu_seconds, after.actual_cost]).toEqual([before.actual_gpu_seconds, before.actual_cost]);
    expect(await usageRows(j.jobId)).toEqual([30]);
    expect(await refusals(j.jobId)).toEqual([expect.objectContaining({ code: "LT461", claimed_gpu_seconds: 1e7, billed_gpu_seconds: 30 })]);
  });

  it("a claim above wall time x GPUs since the run started is billed only up to that bound (LT460), and usage never goes back", async () => {
    const j = await running();
    const res = await post(event("job.progress", j.externalJobId, { sequence: 1, step: 5, gpuSeconds: 1e7 }, { metrics: [point(5)] }));
    expect(res.status).toBe(200);
    const { rows } = await db.query<{ bound: string; gpus: number }>(
      `select private.usage_bound(j, m) as bound, j.billed_gpu_count as gpus
         from public.training_jobs j join private.job_monitor m on m.job_id = j.id where j.id = $1`, [j.jobId]);
    const billed = Number((await job(db, j.jobId)).actual_gpu_seconds);
    expect(billed).toBeGreaterThan(0);
    expect(billed).toBeLessThanOrEqual(Number(rows[0]!.bound));
    expect(billed).toBeLessThan(1e7);
    expect(await refusals(j.jobId)).toEqual([expect.objectContaining({ code: "LT460", claimed_gpu_seconds: 1e7, billed_gpu_seconds: billed })]);

    // A lower report afterwards does not lower what was billed.
    await post(event("job.progress", j.externalJobId, { sequence: 2, step: 6, gpuSeconds: 1 }, { metrics: [point(6)] }));
    expect(Number((await job(db, j.jobId)).actual_gpu_seconds)).toBe(billed);
  });

  it("gpu_seconds 1e308 is a 400 contract error (LT435) through the webhook and changes nothing", async () => {
    const j = await running();
    const before = await snapshot(db, j.jobId);
    const e = event("job.progress", j.externalJobId, { sequence: 1, step: 5, gpuSeconds: 5 }, { metrics: [point(5)] });
    const body = JSON.stringify(e).replace('"gpu_seconds":5', '"gpu_seconds":1e308');
    expect(body).toContain("1e308");
    const res = await signedPost(url, testStack().GPU_WEBHOOK_SECRET, body);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("LT435");
    expect(await snapshot(db, j.jobId)).toEqual(before);
  });

  it("a poll snapshot with gpu_seconds beyond the contract is refused by the client's schema", () => {
    const valid = snapshotJob("job_x", { step: 5 });
    expect(JobSchema.safeParse({ ...valid, gpu_seconds: 5 }).success).toBe(true);
    expect(JobSchema.safeParse({ ...valid, gpu_seconds: 1e308 }).success).toBe(false);
    expect(JobSchema.safeParse({ ...valid, gpu_seconds: 1e9 + 1 }).success).toBe(false);
  });

  it("the SQL path refuses gpu_seconds outside the contract with LT462 before writing anything", async () => {
    const j = await running();
    const before = await snapshot(db, j.jobId);
    for (const bad of ["1e308", '"12"', "-1"]) {
      const err = await db.query(
        `select private.apply_cluster_update($1, jsonb_build_object('status', 'running', 'progress', '{}'::jsonb, 'gpu_seconds', $2::jsonb))`,
        [j.externalJobId, bad],
      ).catch((e: { code?: string }) => e);
      expect((err as { code?: string }).code).toBe("LT462");
    }
    expect(await snapshot(db, j.jobId)).toEqual(before);
  });

  it("a catalog price change after creation does not change the job's bill", async () => {
    const c = await db.connect();
    try {
      const user = await makeUser(db, testStack().JWT_SECRET);
      const datasetId = await readyDatasetRow(db, user);
      await c.query("begin");
      const price = Number((await c.query("select price_per_gpu_hour from public.base_models where id = $1", [LLAMA])).rows[0].price_per_gpu_hour);
      const { rows } = await c.query<{ id: string; price_per_gpu_hour: string }>(
        "insert into public.training_jobs (user_id, dataset_id, base_model_id, name) values ($1, $2, $3, 'fixed price') returning id, price_per_gpu_hour",
        [user.id, datasetId, LLAMA],
      );
      const jobId = rows[0]!.id;
      expect(Number(rows[0]!.price_per_gpu_hour)).toBe(price);
      const ext = `fake_${randomUUID()}`;
      await c.query("update public.training_jobs set status = 'dispatching' where id = $1", [jobId]);
      await c.query("update public.training_jobs set status = 'running', external_job_id = $2 where id = $1", [jobId, ext]);
      // Rolled back below: no other test sees the new price.
      await c.query("update public.base_models set price_per_gpu_hour = price_per_gpu_hour * 10 where id = $1", [LLAMA]);
      await c.query("select private.apply_cluster_update($1, $2::jsonb)", [ext, JSON.stringify({
        status: "failed", progress: { step: 3 }, gpu_seconds: 3600, metrics: [], checkpoints: [],
        error: { code: "dataset_invalid", message: "line 3 is not JSON", retryable: false, category: "user", step: null },
      })]);
      const cost = (await c.query("select actual_cost::float8 as a from public.training_jobs where id = $1", [jobId])).rows[0].a;
      const ledger = (await c.query("select sum(amount)::float8 as a from public.cost_records where job_id = $1 and kind = 'usage'", [jobId])).rows[0].a;
      expect(cost).toBeCloseTo(price, 4);
      expect(ledger).toBeCloseTo(price, 4);
    } finally {
      await c.query("rollback").catch(() => {});
      c.release();
    }
  });
});
