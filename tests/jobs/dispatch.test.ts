/**
 * Dispatch end to end on the embedded stack: a committed job wakes the
 * dispatch-training-job Edge Function through pg_net, which submits it to the
 * GPU cluster simulator. Under every fault the simulator can inject on the
 * job's requests (scoped to its idempotency key, so parallel tests are not
 * disturbed), the job ends in the right state with exactly one cluster-side
 * job and the events that tell what happened. Retries are driven by waking
 * the worker as pg_cron does, only more often.
 */
import { randomUUID } from "node:crypto";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { GpuSimulatorFaults } from "../../gpu-cluster/simulator/index.ts";
import { connect, newUser } from "../helpers/db.ts";
import { testStack } from "../helpers/stack.ts";
import { waitFor } from "../helpers/wait.ts";
import {
  clusterJobsFor, clusterKey, driveDispatch, jobEvents, jobRow, jsonl, LLAMA, pokeDispatcher, readyDataset, setClusterFaults,
  DISPATCHED,
} from "./fixtures.ts";

describe("dispatch to the GPU cluster", () => {
  let db: pg.Client;
  beforeAll(async () => {
    db = await connect();
  });
  afterAll(async () => {
    await db.end();
  });

  /**
   * A queued job of a fresh user (the server inserts it with a known id, so its faults can be
   * set before the worker wakes); `prepare` runs in the inserting transaction.
   */
  async function queuedJob(
    faults?: GpuSimulatorFaults,
    opts: { upload?: boolean; prepare?: (id: string) => Promise<void> } = {},
  ): Promise<{ id: string; key: string }> {
    const user = await newUser(db, "dispatch");
    const dataset = await readyDataset(db, user, undefined, { upload: opts.upload ?? true });
    const id = randomUUID();
    const key = await clusterKey(db, id);
    if (faults) await setClusterFaults(key, faults);
    await db.query("begin");
    try {
      await db.query(
        `insert into public.training_jobs (id, user_id, dataset_id, base_model_id, status) values ($1, $2, $3, $4, $5)`,
        [id, user.id, dataset.id, LLAMA, opts.prepare ? "pending" : "queued"],
      );
      await opts.prepare?.(id);
      await db.query("commit");
    } catch (err) {
      await db.query("rollback");
      throw err;
    }
    return { id, key };
  }
  const types = async (id: string) => (await jobEvents(db, id)).map((e) => e.type);

  it("submits a new job once, woken by pg_net after commit, with a signed dataset URL valid for 24 hours", async () => {
    const { id, key } = await queuedJob();
    // No pokes: only the wake-up sent after the insert committed (pg_cron would take up to a minute).
    const job = await waitFor(async () => {
      const j = await jobRow(db, id);
      return j.status === "running" && j;
    }, { timeoutMs: 20_000, what: "the job to run" });
    const cluster = await clusterJobsFor(id);
    expect(cluster).toHaveLength(1);
    expect(job.external_job_id).toBe(cluster[0]!.id);
    expect(cluster[0]).toMatchObject({
      idempotency_key: key,
      metadata: { training_job_id: id, run: "1" },
      config: {
        base_model: "meta-llama/Llama-3.1-8B-Instruct", r: 16, lora_alpha: 32, epochs: 3, batch_size: 8, learning_rate: 0.0002,
        lr_scheduler: "linear", max_seq_length: 4096, warmup_steps: 12, checkpoint_every_steps: 38, eval_every_steps: 19,
        expected_tokens_per_second: 4000, gpu_type: "A100-80GB", gpu_count: 1, target_modules: ["q_proj", "k_proj", "v_proj", "o_proj"],
      },
    });
    const saved = (await db.query("select request ->> 'dataset_url' as url from private.training_job_dispatch where job_id = $1", [id])).rows[0].url as string;
    expect(saved.startsWith(`${testStack().API_URL}/storage/v1/object/sign/lora-datasets/`)).toBe(true);
    const claims = JSON.parse(Buffer.from(new URL(saved).searchParams.get("token")!.split(".")[1]!, "base64url").toString()) as { exp: number; iat: number };
    expect(claims.exp - claims.iat).toBe(86_400);
    const download = await fetch(saved);
    expect(download.status).toBe(200);
    expect(await download.text()).toBe(jsonl(50));
    // The simulator may already be reporting back (training.*, by webhook) by the time we look.
    const seen = await types(id);
    expect(seen.slice(0, 4)).toEqual(["job.created", "job.status_changed", "job.status_changed", "dispatch.submitted"]);
    expect(seen.slice(4).filter((t) => !t.startsWith("training."))).toEqual([]);
    const submitted = (await jobEvents(db, id)).find((e) => e.type === "dispatch.submitted")!;
    expect(submitted.data).toMatchObject({ external_job_id: cluster[0]!.id, adopted: false, replayed: false, outcome: "running" });
  });

  it("rides out 5xx and 429 answers (rates) and submits exactly once", async () => {
    const { id } = await queuedJob({ serverErrorRate: 0.5, rateLimitRate: 0.2, retryAfterSeconds: 0, seed: 3 });
    const job = await driveDispatch(db, id);
    expect(DISPATCHED).toContain(job.status);
    const cluster = await clusterJobsFor(id);
    expect(cluster.map((j) => j.id)).toEqual([job.external_job_id]);
    const events = await jobEvents(db, id);
    expect(events.filter((e) => e.type === "dispatch.retrying").length).toBeGreaterThan(0);
    expect(events.every((e) => e.level !== "error")).toBe(true);
  });

  it("waits out latency", async () => {
    const { id } = await queuedJob({ latencyMs: 1500 });
    const started = Date.now();
    const job = await driveDispatch(db, id);
    expect(DISPATCHED).toContain(job.status);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1500);
    expect(await clusterJobsFor(id)).toHaveLength(1);
    expect(await types(id)).not.toContain("dispatch.retrying");
  });

  it("resubmits a timed-out submit with the same key and ends with one cluster job", async () => {
    const { id } = await queuedJob({ script: [{ fault: "timeout", on: "submit" }] });
    const job = await driveDispatch(db, id);
    expect(DISPATCHED).toContain(job.status);
    expect(await clusterJobsFor(id)).toHaveLength(1);
    const retry = (await jobEvents(db, id)).find((e) => e.type === "dispatch.retrying");
    expect(retry?.data).toMatchObject({ operation: "submit_job", error: { kind: "unknown_outcome" } });
  });

  it("adopts an accepted-but-lost submission found by its key instead of creating a second job", async () => {
    const { id, key } = await queuedJob({ lostSubmissionRate: 1 });
    const job = await driveDispatch(db, id);
    expect(DISPATCHED).toContain(job.status);
    const cluster = await clusterJobsFor(id);
    expect(cluster.map((j) => j.id)).toEqual([job.external_job_id]);
    expect(await types(id)).toEqual(expect.arrayContaining(["dispatch.unknown_outcome", "dispatch.lookup", "dispatch.submitted"]));
    const submitted = (await jobEvents(db, id)).find((e) => e.type === "dispatch.submitted")!;
    expect(submitted.data).toMatchObject({ adopted: true, idempotency_key: key });
  });

  it("backs off after capacity refusals, goes back to queued with an event, and submits on a later attempt", async () => {
    // The worker's client makes 3 attempts per call: all three refused fail the first dispatch attempt.
    const refusal = { fault: "capacity" as const, retryAfterSeconds: 0 };
    const { id } = await queuedJob({ script: [refusal, refusal, refusal] });
    const job = await driveDispatch(db, id);
    expect(job).toMatchObject({ dispatch_attempts: 2 });
    expect(DISPATCHED).toContain(job.status);
    expect(await clusterJobsFor(id)).toHaveLength(1);
    const events = await jobEvents(db, id);
    const scheduled = events.find((e) => e.type === "dispatch.retry_scheduled")!;
    expect(scheduled).toMatchObject({ level: "warning", data: { attempt: 1, max_attempts: 10, error: { code: "capacity_unavailable" } } });
    expect(scheduled.data.delay_seconds).toBeGreaterThanOrEqual(1);
    expect(events.filter((e) => e.type === "job.status_changed").map((e) => `${e.data.from}>${e.data.to}`).slice(0, 4))
      .toEqual(["queued>dispatching", "dispatching>queued", "queued>dispatching", "dispatching>running"]);
  });

  it("gives up after the last allowed attempt with a system error (LT313)", async () => {
    // Nine attempts already used (walked through the state machine as the worker would have).
    const { id } = await queuedJob({ capacityRefusalRate: 1, retryAfterSeconds: 0 }, {
      prepare: async (jobId) => {
        await db.query("update public.training_jobs set status = 'queued' where id = $1", [jobId]);
        for (let i = 0; i < 9; i++) {
          await db.query("update public.training_jobs set status = 'dispatching' where id = $1", [jobId]);
          await db.query("update public.training_jobs set status = 'queued' where id = $1", [jobId]);
        }
      },
    });
    const job = await driveDispatch(db, id);
    expect(job).toMatchObject({ status: "failed", dispatch_attempts: 10, error: { code: "LT313", kind: "system" } });
    expect(job.error!.message).toMatch(/^The GPU cluster could not take the job after 10 attempts: /);
    expect(await clusterJobsFor(id)).toHaveLength(0);
  });

  it("fails the job for the user when the cluster refuses it (LT311)", async () => {
    const { id } = await queuedJob({ script: [{ fault: "server_error", on: "submit", status: 422 }] });
    const job = await driveDispatch(db, id);
    expect(job).toMatchObject({ status: "failed", error: { code: "LT311", kind: "user" } });
    expect(job.error!.message).toMatch(/^The GPU cluster refused the job .*Change the configuration and create a new job$/);
    expect(await clusterJobsFor(id)).toHaveLength(0);
    const failed = (await jobEvents(db, id)).at(-1)!;
    expect(failed).toMatchObject({ level: "error", type: "job.status_changed", data: { to: "failed", error: { code: "LT311" } } });
  });

  it("fails the job as a system error when our credentials or contract are wrong (LT312)", async () => {
    const { id } = await queuedJob({ script: [{ fault: "server_error", on: "submit", status: 401 }] });
    const job = await driveDispatch(db, id);
    expect(job).toMatchObject({ status: "failed", error: { code: "LT312", kind: "system" } });
    expect(await clusterJobsFor(id)).toHaveLength(0);
  });

  it("fails the job for the user when its dataset file is gone from Storage (LT310)", async () => {
    const { id } = await queuedJob(undefined, { upload: false });
    const job = await driveDispatch(db, id);
    expect(job).toMatchObject({ status: "failed", error: { code: "LT310", kind: "user" } });
    expect(job.error!.message).toContain("is no longer in Storage");
    expect(await clusterJobsFor(id)).toHaveLength(0);
  });

  it("the pg_cron safety net re-enqueues a queued job that lost its message, every minute", async () => {
    const { id } = await queuedJob(undefined, {
      prepare: async (jobId) => {
        await db.query("update public.training_jobs set status = 'queued' where id = $1", [jobId]);
        await db.query("select pgmq.delete(queue_name => 'training_dispatch', msg_id => q.msg_id) from pgmq.q_training_dispatch q where q.message ->> 'job_id' = $1", [jobId]);
        await db.query("update public.training_jobs set status_changed_at = now() - interval '10 minutes' where id = $1", [jobId]);
      },
    });
    expect((await jobRow(db, id)).status).toBe("queued");
    const swept = (await db.query("select private.dispatch_sweep() as n")).rows[0].n;
    expect(swept).toBeGreaterThanOrEqual(1);
    expect(await types(id)).toContain("dispatch.requeued");
    expect(DISPATCHED).toContain((await driveDispatch(db, id)).status);
    const cron = await db.query("select schedule, command from cron.job where jobname = 'dispatch-training-jobs'");
    expect(cron.rows).toEqual([{ schedule: "* * * * *", command: "select private.dispatch_safety_net()" }]);
  });

  it("answers only the service role", async () => {
    const user = await newUser(db, "dispatch-auth");
    const anon = await pokeDispatcher(testStack().ANON_KEY);
    expect(anon.status).toBe(403);
    expect(await anon.json()).toEqual({ error: { code: "forbidden", message: "Only the service role may call this worker" } });
    expect((await pokeDispatcher(user.token)).status).toBe(403);
    const bare = await fetch(`${testStack().API_URL}/functions/v1/dispatch-training-job`, { method: "POST" });
    expect(bare.status).toBe(401);
    const ok = await pokeDispatcher();
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ success: true, data: { processed: expect.any(Array) } });
  });
});
