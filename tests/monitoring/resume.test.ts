/**
 * Runs that continue from a checkpoint, end to end on the embedded stack with
 * the GPU simulator: an automatic retry after an injected node failure
 * continues from the failed run's last checkpoint (not step 0); an
 * owner continues a finished job from a chosen checkpoint with more epochs;
 * what cannot be continued is refused when the job is created (LT423-LT425),
 * and a checkpoint the cluster no longer has fails a continuation the owner
 * asked for (LT414), while a retry after a cluster restart falls back to
 * step 0 (the run lost, or the checkpoint it resumed from gone).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Job } from "../../functions/_shared/gpu/types.ts";
import type { LocalUser } from "../../stack/jwt.ts";
import { waitFor } from "../helpers/wait.ts";
import { events, job } from "./support/fixtures.ts";
import { createJob, uploadedDataset, waitForStatus } from "./support/pipeline.ts";
import { startWorld, type World } from "./support/world.ts";

// 120 examples, 3 epochs, 4 per step: 90 steps, a checkpoint every 10, a metric point every step.
const CONFIG = { epochs: 3, batch_size: 4, gradient_accumulation_steps: 1, checkpoint_every_steps: 10, seed: 7 };

describe("continuing from checkpoints", () => {
  let w: World;
  let user: LocalUser;
  let datasetId: string;
  /** The job of the first test: failed once at step 25, then finished from checkpoint-20. */
  let retried = "";
  beforeAll(async () => {
    w = await startWorld({ purpose: "mon-resume", timeScale: 15 });
    await w.db.query("update private.job_settings set value = 1 where name = 'poll_interval_seconds'");
    ({ user, datasetId } = await uploadedDataset(w));
    await w.db.query("insert into private.user_quotas (user_id, max_active_jobs) values ($1, 20)", [user.id]);
  }, 180_000);
  afterAll(async () => {
    await w?.stop();
  });

  const runsOf = (jobId: string): Job[] =>
    w.sim.jobs.list().filter((j) => j.metadata.training_job_id === jobId).sort((a, b) => a.created_at.localeCompare(b.created_at));
  const steps = async (table: "metrics_points" | "checkpoints", jobId: string): Promise<number[]> =>
    (await w.db.query<{ step: number }>(`select step from public.${table} where job_id = $1 order by step`, [jobId])).rows.map((r) => r.step);
  const checkpoint = async (jobId: string, step: number) =>
    (await w.db.query<{ id: string; external_job_id: string | null }>(
      "select id, external_job_id from public.checkpoints where job_id = $1 and step = $2", [jobId, step])).rows[0]!;
  /** supabase-js rpc('retry_training_job') as the owner; rejects with PostgREST's code, message and HTTP status. */
  const retry = async (jobId: string, checkpointId: string | null, config: Record<string, unknown> = {}) => {
    const { data, error, status } = await w.userClient(user.token)
      .rpc("retry_training_job", { job_id: jobId, checkpoint_id: checkpointId, config }).select("id, total_steps").single();
    if (error) throw Object.assign(new Error(error.message), error, { status });
    return data as { id: string; total_steps: number };
  };
  const resumePoint = async (jobId: string) =>
    (await w.db.query<{ r: Record<string, unknown> }>("select private.resume_point($1) as r", [jobId])).rows[0]!.r;
  const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

  it("an automatic retry continues from the failed run's last checkpoint and bills only the steps it trains", async () => {
    w.sim.setFaults({ failAtStep: { step: 25, code: "node_failure", message: "GPU node lost (injected)" } });
    try {
      retried = await createJob(w, user, datasetId, CONFIG);
      await waitFor(async () => (await events(w.db, retried)).some((e) => e.type === "training.retry_scheduled"),
        { timeoutMs: 90_000, intervalMs: 20, what: "the automatic retry" });
    } finally {
      w.sim.setFaults({});
    }
    expect(await waitForStatus(w, retried, ["succeeded", "failed"], { poll: true })).toBe("succeeded");

    const [failed, resumed] = runsOf(retried);
    expect([failed?.status, resumed?.status]).toEqual(["failed", "succeeded"]);
    expect(failed!.checkpoints.map((c) => c.step)).toEqual([10, 20]);
    expect(failed!.resume_from).toBeNull();
    expect(resumed!.resume_from).toEqual({ job_id: failed!.id, checkpoint: "checkpoint-20", step: 20 });
    expect(resumed!.metrics[0]!.step).toBe(21);
    // Run 1 trained 25 steps, run 2 the 70 after the checkpoint, at the same speed.
    expect(resumed!.gpu_seconds / failed!.gpu_seconds).toBeCloseTo(70 / 25, 2);

    const ev = (await events(w.db, retried)).find((e) => e.type === "training.retry_scheduled")!;
    expect(ev.message).toContain("from checkpoint-20 (step 20)");
    expect(ev.data.resume_from).toMatchObject({ step: 20, name: "checkpoint-20", external_job_id: failed!.id });

    const row = await job(w.db, retried);
    expect(row).toMatchObject({ attempt_count: 2, current_step: 90, total_steps: 90, external_job_id: resumed!.id });
    // One curve without gaps, and each checkpoint names the run that saved it.
    expect(await steps("metrics_points", retried)).toEqual(range(1, 90));
    const saved = await w.db.query<{ step: number; external_job_id: string }>(
      "select step, external_job_id from public.checkpoints where job_id = $1 order by step", [retried]);
    expect(saved.rows).toEqual(range(1, 9).map((i) => ({ step: i * 10, external_job_id: i <= 2 ? failed!.id : resumed!.id })));
    const usage = await w.db.query("select round(sum(gpu_seconds), 3)::float8 as s from public.cost_records where job_id = $1 and kind = 'usage'", [retried]);
    expect(usage.rows[0].s).toBeCloseTo(failed!.gpu_seconds + resumed!.gpu_seconds, 3);
  });

  it("an owner continues a finished job from a chosen checkpoint with more epochs", async () => {
    const from = await checkpoint(retried, 60);
    const child = await retry(retried, from.id, { epochs: 4 });
    expect(child.total_steps).toBe(120);
    // The loss curve starts with the parent's history up to the checkpoint, before anything ran.
    expect(await steps("metrics_points", child.id)).toEqual(range(1, 60));
    expect(await waitForStatus(w, child.id, ["succeeded", "failed"], { poll: true })).toBe("succeeded");

    const [run] = runsOf(child.id);
    expect(run!.resume_from).toEqual({ job_id: from.external_job_id, checkpoint: "checkpoint-60", step: 60 });
    expect(run!.progress).toMatchObject({ step: 120, total_steps: 120 });
    expect(run!.metrics[0]!.step).toBe(61);
    expect(await steps("metrics_points", child.id)).toEqual(range(1, 120));
    expect(await steps("checkpoints", child.id)).toEqual([70, 80, 90, 100, 110, 120]);
    // Copied points are the parent's, unchanged.
    const same = await w.db.query<{ n: number }>(
      `select count(*)::int as n from public.metrics_points c join public.metrics_points p on p.step = c.step
        where c.job_id = $1 and p.job_id = $2 and c.step <= 60 and (c.train_loss, c.learning_rate) = (p.train_loss, p.learning_rate)`,
      [child.id, retried]);
    expect(same.rows[0]!.n).toBe(60);
    expect(await job(w.db, child.id)).toMatchObject({ attempt_count: 1, current_step: 120 });
    // A further run of the child would continue from its own latest checkpoint, not the parent's.
    expect(await resumePoint(child.id)).toMatchObject({ job_id: child.id, step: 120, external_job_id: run!.id });
  });

  it("refuses, when the job is created, a checkpoint it cannot continue from, and creates nothing", async () => {
    const count = async () => (await w.db.query<{ n: number }>("select count(*)::int as n from public.training_jobs where user_id = $1", [user.id])).rows[0]!.n;
    const before = await count();
    const last = await checkpoint(retried, 90);
    await expect(retry(retried, last.id)).rejects.toMatchObject({ code: "LT424", message: expect.stringContaining("ends at step 90") });

    const { rows } = await w.db.query<{ rank: number }>("select (config #>> '{lora,rank}')::int as rank from public.training_jobs where id = $1", [retried]);
    const mid = await checkpoint(retried, 50);
    await expect(retry(retried, mid.id, { lora: { rank: rows[0]!.rank * 2 } }))
      .rejects.toMatchObject({ code: "LT423", message: expect.stringContaining(`rank ${rows[0]!.rank * 2} instead of ${rows[0]!.rank}`) });

    const untracked = await checkpoint(retried, 40);
    await w.db.query("update public.checkpoints set external_job_id = null where id = $1", [untracked.id]);
    await expect(retry(retried, untracked.id)).rejects.toMatchObject({ code: "LT425" });
    expect(await count()).toBe(before);
  });

  it("a checkpoint the cluster no longer has fails the run with LT414, without automatic retries", async () => {
    const gone = await checkpoint(retried, 30);
    await w.db.query("update public.checkpoints set external_job_id = 'job_expired' where id = $1", [gone.id]);
    const child = await retry(retried, gone.id);
    expect(await waitForStatus(w, child.id, ["succeeded", "failed"], { poll: true })).toBe("failed");
    const row = await job(w.db, child.id);
    expect(row.attempt_count).toBe(1);
    expect(row.error).toMatchObject({ code: "LT414", kind: "system", message: expect.stringContaining("checkpoint-30") });
    expect(row.error!.hint).toContain("retry_training_job");
    expect(runsOf(child.id).map((r) => r.error?.code)).toEqual(["checkpoint_unavailable"]);
    // With no checkpoint of its own, the child's next run would start from the parent's.
    expect(await resumePoint(child.id)).toMatchObject({ id: gone.id, job_id: retried, step: 30, external_job_id: "job_expired" });
  });

  it("after a cluster restart, a lost run is retried from step 0, not from a checkpoint the cluster no longer has", async () => {
    await w.db.query("update private.job_settings set value = 1 where name = 'monitor_not_found_grace_seconds'");
    const jobId = await createJob(w, user, datasetId, { ...CONFIG, seed: 8 });
    await waitFor(async () => (await steps("checkpoints", jobId)).includes(20), { timeoutMs: 90_000, intervalMs: 20, what: "checkpoint-20" });
    const lost = (await job(w.db, jobId)).external_job_id!;
    w.sim.restart();
    expect(await waitForStatus(w, jobId, ["succeeded", "failed"], { poll: true, timeoutMs: 120_000 })).toBe("succeeded");

    // The cluster knows only the run after the restart, which started from step 0.
    const [run] = runsOf(jobId);
    expect(runsOf(jobId)).toHaveLength(1);
    expect(run!.resume_from).toBeNull();
    expect(run!.metrics[0]!.step).toBe(1);
    expect(await job(w.db, jobId)).toMatchObject({ attempt_count: 2, current_step: 90, external_job_id: run!.id });
    const ev = (await events(w.db, jobId)).find((e) => e.type === "training.retry_scheduled")!;
    expect(ev.data).toMatchObject({ error: { code: "LT411" }, resume_from: null, fallback: { lost_cluster_job: lost, reason: "not_found", resume_from: "step 0" } });
    expect(ev.message).toContain("from the start (step 0)");
  });

  it("a retry that finds its checkpoint gone after a cluster restart falls back to step 0 within auto_retry_max", async () => {
    w.sim.setFaults({ failAtStep: { step: 25, code: "node_failure", message: "GPU node lost (injected)" } });
    let jobId = "";
    try {
      jobId = await createJob(w, user, datasetId, { ...CONFIG, seed: 9 });
      // Hold the second run's submit at the cluster, and restart the cluster while it is held.
      const key = (await w.db.query<{ k: string }>("select private.cluster_idempotency_key($1, 2) as k", [jobId])).rows[0]!.k;
      w.sim.setFaults({ latencyMs: 2500 }, { idempotencyKey: key });
      await waitFor(async () => (await events(w.db, jobId)).some((e) => e.type === "training.retry_scheduled"),
        { timeoutMs: 90_000, intervalMs: 20, what: "the first automatic retry" });
      w.sim.setFaults({});
      await waitFor(async () => (await w.db.query(
        "select 1 from private.training_job_dispatch where job_id = $1 and cluster_idempotency_key = $2 and submit_started_at is not null",
        [jobId, key])).rowCount === 1, { timeoutMs: 30_000, intervalMs: 20, what: "the second run's submit" });
      w.sim.restart();
      w.sim.setFaults({}, { idempotencyKey: key });
    } finally {
      w.sim.setFaults({});
    }
    expect(await waitForStatus(w, jobId, ["succeeded", "failed"], { poll: true, timeoutMs: 120_000 })).toBe("succeeded");

    const [firstRetry, second] = (await events(w.db, jobId)).filter((e) => e.type === "training.retry_scheduled");
    // The run that saved checkpoint-20 first (the run from step 0 saved it again since).
    const first = (firstRetry!.data.resume_from as { external_job_id: string }).external_job_id;
    const [resumed, fresh] = runsOf(jobId);
    expect(resumed!.resume_from).toEqual({ job_id: first, checkpoint: "checkpoint-20", step: 20 });
    expect(resumed!.error?.code).toBe("checkpoint_unavailable");
    expect(fresh!.resume_from).toBeNull();
    expect(fresh!.status).toBe("succeeded");
    expect(await job(w.db, jobId)).toMatchObject({ attempt_count: 3, current_step: 90 });
    expect(second!.data).toMatchObject({
      retry: 2, max_retries: 2, error: { code: "LT414" },
      fallback: { lost_cluster_job: first, reason: "checkpoint_unavailable", resume_from: "step 0" },
    });
    expect(second!.message).toContain("from the start (step 0)");
  });
});
