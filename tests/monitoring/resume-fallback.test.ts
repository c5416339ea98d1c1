/**
 * Where a retry continues when the GPU cluster lost checkpoints (issue 16.3),
 * the SQL path: private.fail_or_retry() records the cluster runs whose
 * checkpoints are gone (a run the cluster answers 404 for; the run a resumed
 * run could not find its checkpoint in) and private.resume_point() skips
 * them, so the next run continues from the latest checkpoint the cluster
 * still has, or from step 0, within auto_retry_max, and the retry event says
 * which. Against the shared stack, on jobs running on made-up cluster jobs,
 * with the dispatcher's part done by hand.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JobError } from "../../functions/_shared/gpu/types.ts";
import { applyWebhookEvent } from "../../functions/_shared/job-updates.ts";
import { testStack } from "../helpers/stack.ts";
import { checkpoint, event, nodeFailure } from "./support/events.ts";
import { events, job, runningJob } from "./support/fixtures.ts";

describe("resuming after the cluster lost checkpoints", () => {
  let db: pg.Pool;
  beforeAll(() => {
    db = new pg.Pool({ connectionString: testStack().DB_URL, max: 4 });
  });
  afterAll(async () => {
    await db.end();
  });
  let n = 0;
  /**
   * Apply an event, and drop any dispatch message it sent in the same transaction: the stack's
   * dispatch worker, woken after the commit, then finds nothing and leaves the job to these tests.
   */
  const send = async (e: ReturnType<typeof event>) => await inTransaction(async (c) => {
    const out = await applyWebhookEvent(c, { webhookId: `fallback_${Date.now()}_${n++}`, event: e });
    await c.query("delete from pgmq.q_training_dispatch where message ->> 'job_id' = $1", [out.job_id]);
    return out;
  });
  const inTransaction = async <T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> => {
    const c = await db.connect();
    try {
      await c.query("begin");
      const out = await fn(c);
      await c.query("commit");
      return out;
    } catch (err) {
      await c.query("rollback");
      throw err;
    } finally {
      c.release();
    }
  };
  const saved = async (ext: string, ...steps: number[]) => {
    for (const [i, step] of steps.entries()) {
      await send(event("job.checkpoint", ext, { sequence: 10 + i, step }, { checkpoint: checkpoint(step, 1.2) }));
    }
  };
  const resumeFrom = async (jobId: string) =>
    (await db.query<{ r: { job_id: string; checkpoint: string; step: number } | null }>("select private.cluster_resume_from($1) as r", [jobId])).rows[0]!.r;
  /** What the dispatcher does for the next run: claim it with resume_from, submit, record the new cluster job. */
  const nextRun = async (jobId: string, ext: string) => {
    const resume = await resumeFrom(jobId);
    await db.query(
      `insert into private.training_job_dispatch (job_id, cluster_idempotency_key, request) values ($1, $2, $3)
       on conflict (job_id) do update set cluster_idempotency_key = excluded.cluster_idempotency_key, request = excluded.request`,
      [jobId, `key-${ext}`, JSON.stringify({ dataset_url: "https://example.test/d", resume_from: resume })]);
    await db.query("update public.training_jobs set status = 'dispatching' where id = $1", [jobId]);
    await db.query("update public.training_jobs set status = 'running', external_job_id = $2 where id = $1", [jobId, ext]);
    return resume;
  };
  const retries = async (jobId: string) => (await events(db, jobId)).filter((e) => e.type === "training.retry_scheduled");

  it("a run the cluster no longer knows (404) is retried from the latest checkpoint of a run it still has", async () => {
    const j = await running();
    await saved(j.externalJobId, 10, 20);
    expect((await send(event("job.failed", j.externalJobId, { sequence: 20, step: 25 }, { error: nodeFailure(25) }))).status).toBe("queued");
    const runB = `${j.externalJobId}_b`;
    expect(await nextRun(j.jobId, runB)).toEqual({ job_id: j.externalJobId, checkpoint: "checkpoint-20", step: 20 });
    await saved(runB, 30, 40);

    // The cluster answers 404 for run B past the grace period (private.poll_failed's "lost" path).
    const notFound = JSON.stringify({ kind: "not_found", message: "GPU cluster answered 404" });
    await db.query("select private.poll_failed($1, $2)", [j.jobId, notFound]);
    await db.query("update private.job_monitor set not_found_since = now() - interval '1 hour' where job_id = $1", [j.jobId]);
    expect(await inTransaction(async (c) => {
      const { rows: [r] } = await c.query<{ s: string }>("select private.poll_failed($1, $2) as s", [j.jobId, notFound]);
      await c.query("delete from pgmq.q_training_dispatch where message ->> 'job_id' = $1", [j.jobId]);
      return r!.s;
    })).toBe("queued");

    const [, second] = await retries(j.jobId);
    expect(second!.data).toMatchObject({
      retry: 2, error: { code: "LT411" },
      resume_from: { step: 20, name: "checkpoint-20", external_job_id: j.externalJobId },
      fallback: { lost_cluster_job: runB, reason: "not_found", resume_from: "checkpoint-20" },
    });
    expect(second!.message).toContain("from checkpoint-20 (step 20)");
    expect(second!.message).toContain(`no longer has the checkpoints of cluster job "${runB}"`);
    expect(await resumeFrom(j.jobId)).toEqual({ job_id: j.externalJobId, checkpoint: "checkpoint-20", step: 20 });
    const lost = await db.query("select external_job_id, reason from private.lost_cluster_runs where job_id = $1", [j.jobId]);
    expect(lost.rows).toEqual([{ external_job_id: runB, reason: "not_found" }]);
  });

  it("a run whose checkpoint is gone (LT414) is retried from step 0 when the cluster has none of the job's checkpoints", async () => {
    const j = await running();
    await saved(j.externalJobId, 10, 20);
    expect((await send(event("job.failed", j.externalJobId, { sequence: 20, step: 25 }, { error: nodeFailure(25) }))).status).toBe("queued");
    const runB = `${j.externalJobId}_b`;
    await nextRun(j.jobId, runB);
    const gone: JobError = {
      code: "checkpoint_unavailable", retryable: false, category: "system", step: null,
      message: `Checkpoint "checkpoint-20" (step 20) of job "${j.externalJobId}" is not stored on the cluster`,
    };
    expect((await send(event("job.failed", runB, { sequence: 1 }, { error: gone }))).status).toBe("queued");

    const [, second] = await retries(j.jobId);
    expect(second!.data).toMatchObject({
      retry: 2, error: { code: "LT414", retryable: true }, resume_from: null,
      fallback: { lost_cluster_job: j.externalJobId, reason: "checkpoint_unavailable", resume_from: "step 0" },
    });
    expect(second!.message).toContain("from the start (step 0)");
    // The next run is submitted without resume_from: it trains from step 0.
    expect(await resumeFrom(j.jobId)).toBeNull();
    expect((await job(db, j.jobId)).status).toBe("queued");
  });

  it("with no retries left, a lost checkpoint fails the job with LT414 saying how many runs it took", async () => {
    const j = await running();
    let ext = j.externalJobId;
    for (let run = 1; run <= 2; run++) {
      await saved(ext, run * 10);
      expect((await send(event("job.failed", ext, { sequence: 20, step: run * 10 + 5 }, { error: nodeFailure(run * 10 + 5) }))).status).toBe("queued");
      ext = `${j.externalJobId}_${run + 1}`;
      await nextRun(j.jobId, ext);
    }
    const gone: JobError = { code: "checkpoint_unavailable", retryable: false, category: "system", step: null, message: "Checkpoint \"checkpoint-20\" is not stored on the cluster" };
    expect((await send(event("job.failed", ext, { sequence: 1 }, { error: gone }))).status).toBe("failed");
    const row = await job(db, j.jobId);
    expect(row.attempt_count).toBe(3);
    expect(row.error).toMatchObject({ code: "LT414", kind: "system", message: expect.stringContaining("after 3 runs") });
  });

  const running = () => runningJob(db, testStack().JWT_SECRET);
});
