/**
 * is_best follows the history of the adapter a job delivers (issue 15.7):
 * when a later run resumes from an earlier step, the earlier runs'
 * checkpoints after that step are superseded and never best, so is_best
 * names what the cluster's best_checkpoint names (the lowest eval loss of the
 * runs the model went through). On the shared stack, with made-up cluster
 * jobs whose runs are recorded the way the dispatcher records them.
 */
import { randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyWebhookEvent } from "../../functions/_shared/job-updates.ts";
import { testStack } from "../helpers/stack.ts";
import { checkpoint, event } from "./support/events.ts";
import { runningJob } from "./support/fixtures.ts";

describe("best checkpoint across runs", () => {
  let db: pg.Pool;
  beforeAll(() => {
    db = new pg.Pool({ connectionString: testStack().DB_URL, max: 3 });
  });
  afterAll(async () => {
    await db.end();
  });
  let n = 0;
  const saved = (ext: string, sequence: number, step: number, evalLoss: number) =>
    applyWebhookEvent(db, {
      webhookId: `best_${randomUUID()}_${n++}`,
      event: event("job.checkpoint", ext, { sequence, step }, { checkpoint: checkpoint(step, evalLoss) }),
    });
  const rows = async (jobId: string) =>
    (await db.query<{ step: number; is_best: boolean; superseded: boolean }>(
      "select step, is_best, superseded from public.checkpoints where job_id = $1 order by step", [jobId])).rows;
  /** A new run recorded as the dispatcher does: its submitted request (with resume_from) saved, then running on `ext`. */
  const newRun = async (jobId: string, ext: string, resumeFrom: { job_id: string; checkpoint: string; step: number } | null) => {
    const c = await db.connect();
    try {
      // One transaction, its dispatch message removed: no dispatcher of the shared stack takes the job meanwhile.
      await c.query("begin");
      await c.query("update public.training_jobs set status = 'queued' where id = $1", [jobId]);
      await c.query("delete from pgmq.q_training_dispatch where message ->> 'job_id' = $1", [jobId]);
      await c.query("update public.training_jobs set status = 'dispatching' where id = $1", [jobId]);
      await c.query(
        `insert into private.training_job_dispatch (job_id, cluster_idempotency_key, request) values ($1, $3, $2)
         on conflict (job_id) do update set request = excluded.request, cluster_idempotency_key = excluded.cluster_idempotency_key`,
        [jobId, JSON.stringify({ config: {}, ...(resumeFrom ? { resume_from: resumeFrom } : {}) }), `key_${ext}`],
      );
      await c.query("update public.training_jobs set status = 'running', external_job_id = $2 where id = $1", [jobId, ext]);
      await c.query("commit");
    } catch (err) {
      await c.query("rollback");
      throw err;
    } finally {
      c.release();
    }
  };

  it("a run resumed from an earlier step supersedes the later checkpoints of the run before, and is_best moves into its history", async () => {
    const j = await running();
    for (const [i, [step, loss]] of ([[10, 1.0], [20, 0.8], [30, 0.5], [40, 0.6]] as const).entries()) await saved(j.externalJobId, i + 1, step, loss);
    expect((await rows(j.jobId)).filter((r) => r.is_best).map((r) => r.step)).toEqual([30]);

    const second = `fake_${randomUUID()}`;
    await newRun(j.jobId, second, { job_id: j.externalJobId, checkpoint: "checkpoint-20", step: 20 });
    expect(await rows(j.jobId)).toEqual([
      { step: 10, is_best: false, superseded: false },
      { step: 20, is_best: true, superseded: false },
      { step: 30, is_best: false, superseded: true },
      { step: 40, is_best: false, superseded: true },
    ]);

    // The resumed run saves step 30 again: it is in the history again, with the new run's loss.
    await saved(second, 1, 30, 0.7);
    expect(await rows(j.jobId)).toEqual([
      { step: 10, is_best: false, superseded: false },
      { step: 20, is_best: false, superseded: false },
      { step: 30, is_best: true, superseded: false },
      { step: 40, is_best: false, superseded: true },
    ]);
    const ck30 = await db.query("select external_job_id, eval_loss from public.checkpoints where job_id = $1 and step = 30", [j.jobId]);
    expect(ck30.rows).toEqual([{ external_job_id: second, eval_loss: 0.7 }]);
  });

  it("a run that starts again at step 0 supersedes every earlier checkpoint", async () => {
    const j = await running();
    await saved(j.externalJobId, 1, 10, 0.9);
    await saved(j.externalJobId, 2, 20, 0.4);
    await newRun(j.jobId, `fake_${randomUUID()}`, null);
    expect(await rows(j.jobId)).toEqual([
      { step: 10, is_best: false, superseded: true },
      { step: 20, is_best: false, superseded: true },
    ]);
  });

  const running = () => runningJob(db, testStack().JWT_SECRET);
});
