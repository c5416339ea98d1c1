/**
 * private.apply_cluster_update(), the one idempotent path from what the GPU
 * cluster says (poll snapshots and webhook events, normalised by
 * functions/_shared/job-updates.ts) to our rows: progress, metrics,
 * checkpoints, usage, status through the state machine, events and
 * notifications. Against the shared stack's database, on jobs running on
 * made-up cluster jobs, so only these calls change them.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyPolledJob, applyWebhookEvent } from "../../functions/_shared/job-updates.ts";
import { testStack } from "../helpers/stack.ts";
import { checkpoint, event, nodeFailure, oom, point, points, snapshotJob } from "./support/events.ts";
import { events, job, runningJob, snapshot } from "./support/fixtures.ts";

describe("applying cluster updates", () => {
  let db: pg.Pool;
  beforeAll(() => {
    db = new pg.Pool({ connectionString: testStack().DB_URL, max: 4 });
  });
  afterAll(async () => {
    await db.end();
  });
  const running = () => runningJob(db, testStack().JWT_SECRET);
  let n = 0;
  const send = (e: ReturnType<typeof event>, expectedJobId?: string) =>
    applyWebhookEvent(db, { webhookId: `test_${Date.now()}_${n++}`, event: e, ...(expectedJobId ? { expectedJobId } : {}) });

  it("progress events move progress forward and store each metrics step once", async () => {
    const j = await running();
    await send(event("job.started", j.externalJobId, { sequence: 1, total: 100 }, { examples: 1000, total_steps: 100 }));
    const first = await send(event("job.progress", j.externalJobId, { sequence: 2, step: 20, gpuSeconds: 40 }, { metrics: points(1, 20) }));
    expect(first).toMatchObject({ outcome: "applied", metrics_written: 20 });
    // The same points again (a poll overlapping the event) write nothing.
    const again = await applyPolledJob(db, snapshotJob(j.externalJobId, { step: 20, metrics: points(1, 20), gpu_seconds: 40 }));
    expect(again).toMatchObject({ outcome: "applied", metrics_written: 0 });
    const row = await job(db, j.jobId);
    expect(row).toMatchObject({ status: "running", current_step: 20, total_steps: 100, progress_pct: "20.00" });
    expect(row.estimated_finish_at!.getTime()).toBeGreaterThan(Date.now());
    expect((await db.query("select count(*)::int as n from public.metrics_points where job_id = $1", [j.jobId])).rows[0].n).toBe(20);
    const types = (await events(db, j.jobId)).map((e) => e.type);
    expect(types).toContain("training.started");
    expect(types.filter((t) => t === "training.first_metrics")).toHaveLength(1);
    const notes = await db.query("select kind from public.notifications where job_id = $1", [j.jobId]);
    expect(notes.rows).toEqual([{ kind: "job.first_metrics" }]);
  });

  it("an older event changes no status or progress but its metric points are kept", async () => {
    const j = await running();
    await send(event("job.progress", j.externalJobId, { sequence: 5, step: 50 }, { metrics: points(41, 50) }));
    const late = await send(event("job.progress", j.externalJobId, { sequence: 3, step: 30 }, { metrics: points(21, 30) }));
    expect(late).toMatchObject({ outcome: "stale", metrics_written: 10 });
    expect((await job(db, j.jobId)).current_step).toBe(50);
    // A stale failure does not fail the job either.
    const staleFail = await send(event("job.failed", j.externalJobId, { sequence: 4, step: 45 }, { error: oom(45) }));
    expect(staleFail.outcome).toBe("stale");
    expect((await job(db, j.jobId)).status).toBe("running");
  });

  it("a webhook id applied once is a duplicate the second time and changes nothing", async () => {
    const j = await running();
    const e = event("job.progress", j.externalJobId, { sequence: 2, step: 10 }, { metrics: points(1, 10) });
    expect((await applyWebhookEvent(db, { webhookId: `dup_${j.jobId}`, event: e })).outcome).toBe("applied");
    const before = await snapshot(db, j.jobId);
    expect(await applyWebhookEvent(db, { webhookId: `dup_${j.jobId}`, event: e })).toEqual({ outcome: "duplicate" });
    expect(await snapshot(db, j.jobId)).toEqual(before);
  });

  it("events about an unknown cluster job, or about another job than the callback names, change nothing", async () => {
    const a = await running();
    const b = await running();
    const before = [await snapshot(db, a.jobId), await snapshot(db, b.jobId)];
    expect((await send(event("job.progress", "nope_unknown", { sequence: 1, step: 5 }, { metrics: points(1, 5) }))).outcome)
      .toBe("unknown_job");
    const cross = await send(event("job.failed", b.externalJobId, { sequence: 9 }, { error: oom(1) }), a.jobId);
    expect(cross.outcome).toBe("job_mismatch");
    expect([await snapshot(db, a.jobId), await snapshot(db, b.jobId)]).toEqual(before);
  });

  it("checkpoints are stored once each and the best one is the lowest eval loss", async () => {
    const j = await running();
    await send(event("job.checkpoint", j.externalJobId, { sequence: 1, step: 10 }, { checkpoint: checkpoint(10, 1.5) }));
    await send(event("job.checkpoint", j.externalJobId, { sequence: 2, step: 20 }, { checkpoint: checkpoint(20, 1.1) }));
    await send(event("job.checkpoint", j.externalJobId, { sequence: 3, step: 30 }, { checkpoint: checkpoint(30, 1.3) }));
    // A poll lists every checkpoint again.
    await applyPolledJob(db, snapshotJob(j.externalJobId, { step: 30, checkpoints: [checkpoint(10, 1.5), checkpoint(20, 1.1), checkpoint(30, 1.3)] }));
    const { rows } = await db.query("select step, is_best, metrics ->> 'name' as name from public.checkpoints where job_id = $1 order by step", [j.jobId]);
    expect(rows).toEqual([
      { step: 10, is_best: false, name: "checkpoint-10" },
      { step: 20, is_best: true, name: "checkpoint-20" },
      { step: 30, is_best: false, name: "checkpoint-30" },
    ]);
    expect((await events(db, j.jobId)).filter((e) => e.type === "training.checkpoint_saved")).toHaveLength(3);
  });

  it("usage accrues in cost_records in chunks and at the end of the run, and the job's cost follows the GPU seconds", async () => {
    const j = await running();
    const price = Number((await db.query("select price_per_gpu_hour from public.base_models where id = 'llama-3.1-8b-instruct'")).rows[0].price_per_gpu_hour);
    await send(event("job.progress", j.externalJobId, { sequence: 1, step: 1, gpuSeconds: 100 }, { metrics: [point(1)] }));
    await send(event("job.progress", j.externalJobId, { sequence: 2, step: 2, gpuSeconds: 350 }, { metrics: [point(2)] }));
    await send(event("job.progress", j.externalJobId, { sequence: 3, step: 3, gpuSeconds: 500 }, { metrics: [point(3)] }));
    let usage = await db.query("select gpu_seconds::float8 as s, amount::float8 as a from public.cost_records where job_id = $1 and kind = 'usage' order by created_at", [j.jobId]);
    expect(usage.rows.map((r) => r.s)).toEqual([350]);
    await send(event("job.failed", j.externalJobId, { sequence: 4, step: 3, gpuSeconds: 520 }, {
      error: { code: "dataset_invalid", message: "line 3 is not JSON", retryable: false, category: "user", step: null },
    }));
    usage = await db.query("select gpu_seconds::float8 as s, amount::float8 as a from public.cost_records where job_id = $1 and kind = 'usage' order by created_at", [j.jobId]);
    expect(usage.rows.map((r) => r.s)).toEqual([350, 170]);
    const total = usage.rows.reduce((s, r) => s + r.a, 0);
    expect(total).toBeCloseTo(Math.round((520 * price / 3600) * 1e4) / 1e4, 4);
    const row = await job(db, j.jobId);
    expect(Number(row.actual_gpu_seconds)).toBe(520);
    expect(Number(row.actual_cost)).toBeCloseTo(total, 4);
  });

  it("a user failure fails the job at once with the cluster's reason, kind user and a hint", async () => {
    const j = await running();
    await send(event("job.failed", j.externalJobId, { sequence: 1 }, {
      error: { code: "dataset_invalid", message: "Dataset line 7 is not a JSON object", retryable: false, category: "user", step: null },
    }));
    const row = await job(db, j.jobId);
    expect(row.status).toBe("failed");
    expect(row.error).toMatchObject({ code: "LT403", kind: "user", message: expect.stringContaining("line 7") });
    expect(row.error!.hint).toMatch(/upload it as a new dataset/);
    const note = await db.query("select kind, payload from public.notifications where job_id = $1 and kind = 'job.failed'", [j.jobId]);
    expect(note.rows).toHaveLength(1);
    expect(note.rows[0].payload.error.code).toBe("LT403");
  });

  it("a model too big for the GPUs fails at once as the user's (LT408), asking for 4-bit quantization, not a smaller batch", async () => {
    const j = await running();
    await send(event("job.failed", j.externalJobId, { sequence: 1 }, {
      error: {
        code: "oom", retryable: false, category: "user", step: 0,
        message: 'CUDA out of memory loading the model: bf16 weights need about 170 GB per GPU, a A100-80GB has 80 GB; use quantization "4bit" or more GPUs',
      },
    }));
    const row = await job(db, j.jobId);
    expect(row.status).toBe("failed");
    expect(row.attempt_count).toBe(1);
    expect(row.error).toMatchObject({ code: "LT408", kind: "user", retryable: false, message: expect.stringContaining("170 GB per GPU") });
    expect(row.error!.hint).toMatch(/"quantization": "4bit"/);
    expect(row.error!.hint).not.toMatch(/batch_size/);
  });

  it("an out-of-memory failure while training fails at once as the user's (LT401), with a smaller batch to continue with", async () => {
    const j = await running();
    await send(event("job.checkpoint", j.externalJobId, { sequence: 1, step: 10 }, { checkpoint: checkpoint(10, 1.2) }));
    // The cluster says retryable; the same configuration would run out of memory again, on the user's bill.
    const r = await send(event("job.failed", j.externalJobId, { sequence: 2, step: 12 }, { error: oom(12) }));
    expect(r.status).toBe("failed");
    const row = await job(db, j.jobId);
    expect(row.attempt_count).toBe(1);
    const cfg = (await db.query<{ c: { batch_size: number; gradient_accumulation_steps: number } }>(
      "select config as c from public.training_jobs where id = $1", [j.jobId])).rows[0]!.c;
    expect(row.error).toMatchObject({
      code: "LT401", kind: "user", retryable: false, runs: 1,
      message: expect.stringContaining(`out of memory at step 12 (batch_size ${cfg.batch_size}`),
      suggested_config: { batch_size: cfg.batch_size / 2, gradient_accumulation_steps: cfg.gradient_accumulation_steps * 2 },
    });
    expect(row.error!.message).not.toMatch(/after \d+ runs/);
    expect(row.error!.hint).toMatch(/retry_training_job\(job_id, checkpoint_id/);
    expect(row.error!.hint).toContain(`"batch_size": ${cfg.batch_size / 2}`);
    const types = (await events(db, j.jobId)).map((e) => e.type);
    expect(types).toContain("training.failed");
    expect(types).not.toContain("training.retry_scheduled");
    expect((await db.query("select count(*)::int as n from pgmq.q_training_dispatch where message ->> 'job_id' = $1", [j.jobId])).rows[0].n).toBe(0);
  });

  it("a retryable system failure is retried automatically up to auto_retry_max, then fails saying how many runs it took", async () => {
    const j = await running();
    let ext = j.externalJobId;
    for (let run = 1; run <= 3; run++) {
      await send(event("job.checkpoint", ext, { sequence: 1, step: 10 }, { checkpoint: checkpoint(10 * run, 1.2) }));
      const r = await send(event("job.failed", ext, { sequence: 2, step: 12 }, { error: nodeFailure(12) }));
      if (run < 3) {
        expect(r.status).toBe("queued");
        // What the dispatcher does for the next run: a new cluster job.
        ext = `${j.externalJobId}_run${run + 1}`;
        await db.query("delete from pgmq.q_training_dispatch where message ->> 'job_id' = $1", [j.jobId]);
        await db.query("update public.training_jobs set status = 'dispatching' where id = $1", [j.jobId]);
        await db.query("update public.training_jobs set status = 'running', external_job_id = $2 where id = $1", [j.jobId, ext]);
      } else {
        expect(r.status).toBe("failed");
      }
    }
    const row = await job(db, j.jobId);
    expect(row.attempt_count).toBe(3);
    expect(row.error).toMatchObject({ code: "LT405", kind: "system", message: expect.stringMatching(/failed at step 12.*after 3 runs/) });
    const retries = (await events(db, j.jobId)).filter((e) => e.type === "training.retry_scheduled");
    expect(retries.map((e) => e.data.retry)).toEqual([1, 2]);
    expect(retries[1]!.data.resume_from).toMatchObject({ step: 20, name: "checkpoint-20" });
  });

  it("success waits for every listed artifact, then completes delivery: succeeded, notified, model card pending", async () => {
    const j = await running();
    const files = [
      { path: "adapter_config.json", content_type: "application/json", size_bytes: 12, sha256: "b".repeat(64) },
      { path: "adapter_model.safetensors", content_type: "application/octet-stream", size_bytes: 34, sha256: "c".repeat(64) },
    ];
    const r = await send(event("job.succeeded", j.externalJobId, { sequence: 9, step: 100, gpuSeconds: 200 }, {
      artifacts: files, final_metrics: point(100),
    }));
    expect(r).toMatchObject({ outcome: "applied", status: "running", delivered: false });
    // Declared as gpu-upload-urls does, then each file stored and checked the way verify-artifacts records it,
    // in one transaction (so no worker sees it pending).
    await db.query("select private.prepare_artifact_uploads($1, $2, $3::jsonb)", [`upl_${j.jobId}`, j.externalJobId, JSON.stringify(files)]);
    const c = await db.connect();
    const stored = async (path: string, size: number, sha: string) => {
      await c.query("insert into storage.objects (bucket_id, name, metadata) values ('lora-models', $1, $2)", [
        `${j.user.id}/${j.jobId}/${path}`, JSON.stringify({ size }),
      ]);
      expect((await c.query("select status from public.training_jobs where id = $1", [j.jobId])).rows[0].status).toBe("running");
      await c.query("select private.record_artifact_verification(id, $2, $3) from public.model_artifacts where storage_path = $1", [
        `${j.user.id}/${j.jobId}/${path}`, size, sha,
      ]);
      return (await c.query("select status from public.training_jobs where id = $1", [j.jobId])).rows[0].status;
    };
    try {
      await c.query("begin");
      expect(await stored("adapter_config.json", 12, "b".repeat(64))).toBe("running");
      expect(await stored("adapter_model.safetensors", 34, "c".repeat(64))).toBe("succeeded");
      await c.query("commit");
    } finally {
      c.release();
    }
    const arts = await db.query("select kind, size_bytes::int as size from public.model_artifacts where job_id = $1 order by kind", [j.jobId]);
    expect(arts.rows).toEqual([{ kind: "adapter_weights", size: 34 }, { kind: "adapter_config", size: 12 }]);
    const mon = await db.query("select model_card_status, needs_poll from private.job_monitor where job_id = $1", [j.jobId]);
    expect(mon.rows[0]).toEqual({ model_card_status: "pending", needs_poll: true });
    const kinds = (await db.query("select kind from public.notifications where job_id = $1 order by created_at", [j.jobId])).rows.map((x) => x.kind);
    expect(kinds).toEqual(["job.first_metrics", "job.succeeded"]);
    // A late event after the end changes nothing.
    const before = await snapshot(db, j.jobId);
    expect((await send(event("job.cancelled", j.externalJobId, { sequence: 10 }))).outcome).toBe("inactive");
    expect(await snapshot(db, j.jobId)).toMatchObject({ ...before, receipts: Number(before.receipts) + 1 });
  });

  it("a cancel the cluster made on its own fails the run (LT407) without an automatic retry", async () => {
    const j = await running();
    await send(event("job.cancelled", j.externalJobId, { sequence: 2, step: 4 }));
    expect((await job(db, j.jobId)).error).toMatchObject({ code: "LT407", kind: "system" });
    expect((await job(db, j.jobId)).status).toBe("failed");
  });
});
