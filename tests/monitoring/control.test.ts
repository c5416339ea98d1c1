/**
 * Control of real runs on the embedded stack with the GPU simulator, in this
 * file's own world (the owner cancels with supabase-js rpc() through
 * PostgREST): cancel at each stage (queued, dispatching, running,
 * racing completion, finished), MAX_TRAINING_DURATION_HOURS, automatic
 * retries after an injected node failure (one that a retry fixes, and one
 * that retries cannot), and an out-of-memory failure that is left to the
 * owner, who continues with a smaller batch.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Job } from "../../functions/_shared/gpu/types.ts";
import type { LocalUser } from "../../stack/jwt.ts";
import { waitFor } from "../helpers/wait.ts";
import { events, job, makeUser } from "./support/fixtures.ts";
import { cancelAs, createJob, uploadedDataset, waitForStatus } from "./support/pipeline.ts";
import { startWorld, type World } from "./support/world.ts";

describe("control of running jobs", () => {
  let w: World;
  let user: LocalUser;
  let datasetId: string;
  beforeAll(async () => {
    w = await startWorld({ purpose: "mon-control", timeScale: 15 });
    await w.db.query("update private.job_settings set value = 1 where name = 'poll_interval_seconds'");
    await w.db.query("update private.job_settings set value = 20 where name = 'poll_worker_budget_seconds'");
    // Enough room for every job of this file under one user.
    ({ user, datasetId } = await uploadedDataset(w));
    await w.db.query("insert into private.user_quotas (user_id, max_active_jobs) values ($1, 20)", [user.id]);
  }, 180_000);
  afterAll(async () => {
    await w?.stop();
  });

  let n = 0;
  const newJob = () => createJob(w, user, datasetId, { epochs: 3, batch_size: 4, seed: 1000 + n++ });
  const cancel = (jobId: string) => cancelAs(w, user, jobId);
  const clusterJobs = (jobId: string): Job[] => w.sim.jobs.list().filter((j) => j.metadata.training_job_id === jobId);
  const notifications = async (jobId: string) =>
    (await w.db.query("select kind from public.notifications where job_id = $1 order by created_at", [jobId])).rows.map((r) => r.kind);

  it("cancelling a queued job cancels it at once and nothing reaches the cluster", async () => {
    w.sim.setFaults({ capacityRefusalRate: 1, retryAfterSeconds: 30 });
    try {
      const jobId = await newJob();
      await waitFor(async () => (await events(w.db, jobId)).some((e) => e.type === "dispatch.retry_scheduled"), { what: "a refused dispatch" });
      expect((await job(w.db, jobId)).status).toBe("queued");
      expect(await cancel(jobId)).toBe("cancelled");
      expect(clusterJobs(jobId)).toEqual([]);
      expect(await notifications(jobId)).toEqual(["job.cancelled"]);
      // Idempotent: the same answer again, nothing new.
      const before = (await events(w.db, jobId)).length;
      expect(await cancel(jobId)).toBe("cancelled");
      expect((await events(w.db, jobId)).length).toBe(before);
    } finally {
      w.sim.setFaults({});
    }
  });

  it("cancelling while the submit is in flight stops the cluster job the dispatcher then records", async () => {
    w.sim.setFaults({ latencyMs: 2500 });
    try {
      const jobId = await newJob();
      await waitFor(async () => (await w.db.query("select 1 from private.training_job_dispatch where job_id = $1 and submit_started_at is not null", [jobId])).rowCount === 1,
        { what: "the submit to start" });
      expect(await cancel(jobId)).toBe("cancelling");
      expect(await waitForStatus(w, jobId, ["cancelled", "failed", "succeeded"], { timeoutMs: 40_000 })).toBe("cancelled");
      const [cluster] = clusterJobs(jobId);
      expect(cluster?.status).toBe("cancelled");
      expect((await job(w.db, jobId)).external_job_id).toBe(cluster!.id);
    } finally {
      w.sim.setFaults({});
    }
  });

  it("cancelling a running job cancels the cluster job and confirms; cancelling again changes nothing", async () => {
    const jobId = await newJob();
    await waitFor(async () => ((await job(w.db, jobId)).current_step ?? 0) > 0, { timeoutMs: 40_000, what: "training to start" });
    expect(await cancel(jobId)).toBe("cancelling");
    expect(await waitForStatus(w, jobId, ["cancelled", "failed", "succeeded"], { timeoutMs: 30_000 })).toBe("cancelled");
    const ext = (await job(w.db, jobId)).external_job_id!;
    expect(w.sim.jobs.get(ext)!.status).toBe("cancelled");
    expect(Number((await job(w.db, jobId)).actual_gpu_seconds)).toBeGreaterThan(0);
    expect(await notifications(jobId)).toEqual(["job.first_metrics", "job.cancelled"]);
    const before = (await events(w.db, jobId)).length;
    expect(await cancel(jobId)).toBe("cancelled");
    expect((await events(w.db, jobId)).length).toBe(before);
  });

  it("a cancel racing the end of training ends as whatever the cluster did, consistently", async () => {
    const jobId = await newJob();
    await waitFor(async () => Number((await job(w.db, jobId)).progress_pct) >= 80, { timeoutMs: 60_000, what: "training to near its end" });
    const status = await cancel(jobId).then((s) => s, (e: { code?: string }) => {
      if (e.code === "LT421") return "finished";
      throw e;
    });
    expect(["cancelling", "finished"]).toContain(status);
    const end = await waitForStatus(w, jobId, ["cancelled", "succeeded", "failed"], { timeoutMs: 40_000, poll: true });
    const cluster = w.sim.jobs.get((await job(w.db, jobId)).external_job_id!)!;
    expect(end).toBe(cluster.status);
    if (end === "succeeded") {
      const arts = await w.db.query("select count(*)::int as n from public.model_artifacts where job_id = $1 and kind <> 'model_card'", [jobId]);
      expect(arts.rows[0].n).toBe(cluster.artifacts.length);
    }
    expect((await notifications(jobId)).filter((k) => k !== "job.first_metrics")).toEqual([`job.${end}`]);
  });

  it("cancelling a finished job is refused with LT421; another user's job is LT420", async () => {
    const jobId = await newJob();
    expect(await waitForStatus(w, jobId, ["succeeded", "failed"], { poll: true })).toBe("succeeded");
    await expect(cancel(jobId)).rejects.toMatchObject({ code: "LT421", status: 400 });
    const stranger = await makeUser(w.db, w.jwtSecret);
    await expect(cancelAs(w, stranger, jobId)).rejects.toMatchObject({ code: "LT420", status: 400 });
  });

  it("a job over MAX_TRAINING_DURATION_HOURS is stopped on the cluster and marked timed_out", async () => {
    const jobId = await newJob();
    await waitFor(async () => ((await job(w.db, jobId)).current_step ?? 0) > 0, { timeoutMs: 40_000, what: "training to start" });
    await w.db.query("update public.training_jobs set started_at = now() - interval '49 hours' where id = $1", [jobId]);
    expect(await waitForStatus(w, jobId, ["timed_out", "succeeded", "failed"], { poll: true, timeoutMs: 30_000 })).toBe("timed_out");
    const row = await job(w.db, jobId);
    expect(row.error).toMatchObject({ code: "LT410", kind: "system" });
    await waitFor(() => w.sim.jobs.get(row.external_job_id!)!.status === "cancelled", { timeoutMs: 20_000, what: "the cluster job to be cancelled" });
    expect(await notifications(jobId)).toContain("job.timed_out");
  });

  const NODE_FAILURE = { code: "node_failure", message: "GPU node lost (injected)" };

  it("a failure the cluster calls transient (a lost node) is retried automatically and the retry succeeds", async () => {
    w.sim.setFaults({ failAtStep: { step: 5, ...NODE_FAILURE } });
    let jobId = "";
    try {
      jobId = await newJob();
      await waitFor(async () => (await events(w.db, jobId)).some((e) => e.type === "training.retry_scheduled"),
        { timeoutMs: 60_000, intervalMs: 20, what: "the automatic retry" });
    } finally {
      w.sim.setFaults({});
    }
    expect(await waitForStatus(w, jobId, ["succeeded", "failed"], { poll: true })).toBe("succeeded");
    const row = await job(w.db, jobId);
    expect(row.attempt_count).toBe(2);
    const runs = clusterJobs(jobId).sort((a, b) => a.created_at.localeCompare(b.created_at));
    expect(runs.map((r) => r.status)).toEqual(["failed", "succeeded"]);
    expect(row.external_job_id).toBe(runs[1]!.id);
    const ev = await events(w.db, jobId);
    const failed = ev.find((e) => e.type === "training.failed")!;
    expect(failed.data).toMatchObject({ error: { code: "LT405", kind: "system", retryable: true } });
    expect(ev.find((e) => e.type === "training.retry_scheduled")!.data).toMatchObject({ retry: 1, max_retries: 2 });
    // Both runs' GPU time is billed.
    const usage = await w.db.query("select round(sum(gpu_seconds), 3)::float8 as s from public.cost_records where job_id = $1 and kind = 'usage'", [jobId]);
    expect(usage.rows[0].s).toBeCloseTo(runs[0]!.gpu_seconds + runs[1]!.gpu_seconds, 3);
  });

  it("a failure that retries cannot fix fails the job after auto_retry_max retries with an actionable message", async () => {
    w.sim.setFaults({ failAtStep: { step: 3, ...NODE_FAILURE } });
    try {
      const jobId = await newJob();
      expect(await waitForStatus(w, jobId, ["succeeded", "failed"], { timeoutMs: 120_000 })).toBe("failed");
      const row = await job(w.db, jobId);
      expect(row.attempt_count).toBe(3);
      expect(row.error).toMatchObject({ code: "LT405", kind: "system", message: expect.stringContaining("after 3 runs") });
      expect(row.error!.hint).toMatch(/retry it from its last checkpoint/);
      expect(clusterJobs(jobId)).toHaveLength(3);
      expect((await events(w.db, jobId)).filter((e) => e.type === "training.retry_scheduled")).toHaveLength(2);
      expect(await notifications(jobId)).toEqual(["job.first_metrics", "job.failed"]);
    } finally {
      w.sim.setFaults({});
    }
  });

  it("an out-of-memory failure is not retried with the same configuration; the owner continues with the suggested smaller batch", async () => {
    const config = { epochs: 3, batch_size: 4, gradient_accumulation_steps: 1, checkpoint_every_steps: 10, seed: 77 };
    w.sim.setFaults({ failAtStep: { step: 25 } }); // the cluster's default: oom, system, retryable
    let jobId: string;
    try {
      jobId = await createJob(w, user, datasetId, config);
      expect(await waitForStatus(w, jobId, ["succeeded", "failed"], { poll: true })).toBe("failed");
    } finally {
      w.sim.setFaults({});
    }
    const row = await job(w.db, jobId);
    expect(row.attempt_count).toBe(1);
    expect(clusterJobs(jobId)).toHaveLength(1);
    expect(row.error).toMatchObject({
      code: "LT401", kind: "user", retryable: false,
      suggested_config: { batch_size: 2, gradient_accumulation_steps: 2 },
    });
    expect((await events(w.db, jobId)).map((e) => e.type)).not.toContain("training.retry_scheduled");
    expect(await notifications(jobId)).toEqual(["job.first_metrics", "job.failed"]);
    // Only the one run is billed.
    const [run] = clusterJobs(jobId);
    const usage = await w.db.query("select round(sum(gpu_seconds), 3)::float8 as s from public.cost_records where job_id = $1 and kind = 'usage'", [jobId]);
    expect(usage.rows[0].s).toBeCloseTo(run!.gpu_seconds, 3);

    // What the hint says: continue from the last checkpoint with the suggested configuration.
    const last = (await w.db.query<{ id: string }>("select id from public.checkpoints where job_id = $1 order by step desc limit 1", [jobId])).rows[0]!;
    const retried = await w.userClient(user.token).rpc("retry_training_job", {
      job_id: jobId, checkpoint_id: last.id, config: (row.error as unknown as { suggested_config: unknown }).suggested_config,
    }).select("id, total_steps").single();
    expect(retried.error).toBeNull();
    const child = retried.data as { id: string; total_steps: number };
    expect(child.total_steps).toBe(90); // same effective batch, same steps
    expect(await waitForStatus(w, child.id, ["succeeded", "failed"], { poll: true })).toBe("succeeded");
    const [resumed] = clusterJobs(child.id);
    expect(resumed!.config).toMatchObject({ batch_size: 2, gradient_accumulation_steps: 2 });
    expect(resumed!.resume_from).toEqual({ job_id: run!.id, checkpoint: "checkpoint-20", step: 20 });
  });
});
