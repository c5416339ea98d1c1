/**
 * ops.queue_health, ops.archived_messages and ops.requeue_archived_message()
 * on real pgmq queues: a queue of the test's own for depth and ages, and the
 * project's queues for dead messages, archived the way their workers archive
 * them (the validation worker's give-up function, the dispatcher's poison
 * rule, pgmq.archive for malformed messages).
 */
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sqlState } from "../helpers/db.ts";
import { testStack } from "../helpers/stack.ts";
import { supabaseClient } from "../helpers/supabase.ts";
import { waitFor } from "../helpers/wait.ts";
import { dbaPool, jobRow, newUser, pendingJob, runbookLog, tag } from "./support.ts";

type Archived = { queue_name: string; msg_id: string; read_ct: number; subject_kind: string | null; subject_id: string | null; reason: string; requeueable: boolean };

describe("ops queues", () => {
  let db: pg.Pool;
  beforeAll(() => {
    db = dbaPool();
  });
  afterAll(async () => {
    await db.end();
  });

  const archived = async (queue: string, msgId: string | number): Promise<Archived | undefined> =>
    (await db.query<Archived>("select * from ops.archived_messages where queue_name = $1 and msg_id = $2", [queue, msgId])).rows[0];

  /** Send a message to a project queue and archive it in one transaction, as a worker would. */
  async function archiveNew(queue: string, message: unknown, readCt = 1): Promise<string> {
    const c = await db.connect();
    try {
      await c.query("begin");
      const id = (await c.query<{ id: string }>("select pgmq.send(queue_name => $1, msg => $2::jsonb) as id", [queue, JSON.stringify(message)])).rows[0]!.id;
      await c.query(`update pgmq.q_${queue} set read_ct = $2 where msg_id = $1`, [id, readCt]);
      await c.query("select pgmq.archive(queue_name => $1, msg_id => $2)", [queue, id]);
      await c.query("commit");
      return id;
    } finally {
      c.release();
    }
  }

  it("queue_health shows depth, visible and invisible messages, the oldest age and the archive", async () => {
    const queue = `ops_t_${tag()}`;
    await db.query("select pgmq.create(queue_name => $1)", [queue]);
    try {
      const send = async (delay = 0) =>
        (await db.query<{ id: string }>("select pgmq.send(queue_name => $1, msg => '{}'::jsonb, delay => $2::integer) as id", [queue, delay])).rows[0]!.id;
      const first = await send();
      const second = await send();
      await send(3600);
      await db.query("select * from pgmq.read(queue_name => $1, vt => 600, qty => 1)", [queue]); // takes the first: invisible
      await db.query("select pgmq.archive(queue_name => $1, msg_id => $2)", [queue, second]);
      await db.query(`update pgmq.q_${queue} set enqueued_at = now() - interval '1 hour' where msg_id = $1`, [first]);

      const { rows } = await db.query("select * from ops.queue_health where queue_name = $1", [queue]);
      expect(rows).toHaveLength(1);
      const h = rows[0];
      expect(h).toMatchObject({ worker: null, messages: "2", visible: "0", invisible: "2", max_read_ct: 1, archived: "1", archived_last_24h: "1" });
      expect(h.oldest_age.hours).toBe(1);
      expect(h.oldest_visible_age).toBeNull();
      expect(h.last_archived_at).not.toBeNull();
    } finally {
      await db.query("select pgmq.drop_queue(queue_name => $1)", [queue]);
    }
  });

  it("queue_health names the worker of each project queue", async () => {
    const { rows } = await db.query<{ queue_name: string; worker: string }>(
      "select queue_name, worker from ops.queue_health where queue_name in ('dataset_validation', 'training_dispatch', 'storage_cleanup') order by 1");
    expect(rows).toEqual([
      { queue_name: "dataset_validation", worker: "validate-dataset" },
      { queue_name: "storage_cleanup", worker: "storage-cleanup" },
      { queue_name: "training_dispatch", worker: "dispatch-training-job" },
    ]);
  });

  it("a dispatch message the dispatcher found poisonous is listed with LT314 and cannot be requeued", async () => {
    const { jobId } = await pendingJob(db);
    // The dispatcher's own poison rule fails the job (on a queue of this test, so no live worker is involved)...
    const queue = `ops_t_${tag()}`;
    await db.query("select pgmq.create(queue_name => $1)", [queue]);
    const c = await db.connect();
    try {
      await c.query("begin");
      await c.query("update public.training_jobs set status = 'queued' where id = $1", [jobId]);
      await c.query("delete from pgmq.q_training_dispatch where message ->> 'job_id' = $1", [jobId]);
      const id = (await c.query<{ id: string }>("select pgmq.send(queue_name => $1, msg => jsonb_build_object('job_id', $2::uuid)) as id", [queue, jobId])).rows[0]!.id;
      await c.query(`update pgmq.q_${queue} set read_ct = 5 where msg_id = $1`, [id]);
      expect((await c.query("select private.dispatch_next($1) as r", [queue])).rows[0].r).toMatchObject({ action: "poisoned", job_id: jobId });
      await c.query("commit");
    } finally {
      c.release();
      await db.query("select pgmq.drop_queue(queue_name => $1)", [queue]);
    }
    expect((await jobRow(db, jobId))).toMatchObject({ status: "failed", error: { code: "LT314" } });
    // ...and its message sits in the training_dispatch archive, as the dispatcher leaves it.
    const msgId = await archiveNew("training_dispatch", { job_id: jobId }, 6);

    const row = await archived("training_dispatch", msgId);
    expect(row).toMatchObject({ subject_kind: "job", subject_id: jobId, requeueable: false });
    expect(row!.reason).toMatch(/^Poison message \(LT314\): delivered 6 times/);
    expect(await sqlState(db.query("select ops.requeue_archived_message('training_dispatch', $1, 'try again please')", [msgId]))).toBe("LT511");
    expect(await archived("training_dispatch", msgId)).toBeDefined();
  });

  it("malformed messages are listed as such and are not requeueable", async () => {
    const dispatchId = await archiveNew("training_dispatch", { nope: true });
    const validationId = await archiveNew("dataset_validation", { dataset_id: "not-a-uuid" });
    expect((await archived("training_dispatch", dispatchId))).toMatchObject({ reason: "Malformed message: no job_id", requeueable: false });
    expect((await archived("dataset_validation", validationId))).toMatchObject({
      reason: 'Malformed message (LT285): not {"dataset_id", "generation"}', requeueable: false,
    });
    expect(await sqlState(db.query("select ops.requeue_archived_message('dataset_validation', $1, 'try again please')", [validationId]))).toBe("LT511");
  });

  it("a validation that gave up (LT282) is requeued: the stored file is validated again to a verdict", async () => {
    const user = await newUser(db);
    const { rows: [d] } = await db.query<{ id: string; storage_path: string }>(
      "insert into public.datasets (user_id, name, file_name) values ($1, 'ops requeue', 'train.jsonl') returning id, storage_path", [user.id]);
    const datasetId = d!.id;
    // A file with one broken line: every complete run ends in the same user verdict, whoever runs it.
    const lines = Array.from({ length: 12 }, (_, i) => JSON.stringify({ messages: [{ role: "user", content: `q${i}` }, { role: "assistant", content: `a${i}` }] }));
    const { error } = await supabaseClient(testStack().ANON_KEY, user.token).storage.from("lora-datasets")
      .upload(d!.storage_path, [...lines, "{not json"].join("\n") + "\n", { contentType: "application/octet-stream" });
    expect(error).toBeNull();
    const verdict = async () => (await db.query<{ status: string; error: { code: string } | null; generation: number; outcome: string | null }>(
      `select d.status, d.error, r.generation, r.outcome from public.datasets d join private.dataset_validation_runs r on r.dataset_id = d.id
        where d.id = $1`, [datasetId])).rows[0]!;
    const first = await waitFor(async () => { const v = await verdict(); return v.outcome === "error" ? v : false; },
      { timeoutMs: 90_000, what: "the first verdict" });

    // Then a run that gave up, as the worker leaves one after max_attempts system failures.
    const c = await db.connect();
    let msgId: string;
    try {
      await c.query("begin");
      await c.query("update public.datasets set status = 'validating' where id = $1", [datasetId]);
      msgId = (await c.query<{ id: string }>("select private.enqueue_dataset_validation($1) as id", [datasetId])).rows[0]!.id;
      await c.query("update private.dataset_validation_runs set failed_attempts = 5, last_error = 'Storage answered 503' where dataset_id = $1", [datasetId]);
      await c.query("select private.dataset_validation_give_up($1, 5, $2)", [datasetId, msgId]);
      await c.query("commit");
    } finally {
      c.release();
    }
    expect((await verdict()).error?.code).toBe("LT282");
    const row = await archived("dataset_validation", msgId);
    expect(row).toMatchObject({ subject_kind: "dataset", subject_id: datasetId, requeueable: true });
    expect(row!.reason).toBe("Validation failed 5 times in a row (LT282): Storage answered 503");

    expect(await sqlState(db.query("select ops.requeue_archived_message('dataset_validation', $1, '')", [msgId]))).toBe("22023");
    const newId = (await db.query<{ id: string }>(
      "select ops.requeue_archived_message('dataset_validation', $1, 'storage outage is over') as id", [msgId])).rows[0]!.id;
    expect(newId).not.toBe(msgId);
    expect(await archived("dataset_validation", msgId)).toBeUndefined();
    const again = await waitFor(async () => { const v = await verdict(); return v.outcome === "error" && v.generation > first.generation + 1 ? v : false; },
      { timeoutMs: 90_000, what: "the requeued validation to reach its verdict" });
    expect(again.error?.code).toBe(first.error?.code);
    expect(await runbookLog(db, `dataset_validation/${msgId}`)).toEqual([expect.objectContaining({
      action: "requeue_archived_message", reason: "storage outage is over",
      details: expect.objectContaining({ new_msg_id: Number(newId), subject_id: datasetId }),
    })]);
  }, 180_000);

  it("a storage cleanup that gave up is requeued as it was and its worker consumes it", async () => {
    const user = await newUser(db);
    const prefix = `${user.id}/${crypto.randomUUID()}/`;
    const msgId = await archiveNew("storage_cleanup", { bucket: "lora-models", prefix }, 21);
    expect(await archived("storage_cleanup", msgId)).toMatchObject({
      reason: `Gave up after 21 reads: removing lora-models/${prefix} kept failing`, requeueable: true,
    });
    const newId = (await db.query<{ id: string }>(
      "select ops.requeue_archived_message('storage_cleanup', $1, 'storage is back') as id", [msgId])).rows[0]!.id;
    expect(await archived("storage_cleanup", msgId)).toBeUndefined();
    // The requeue woke storage-cleanup, which removes nothing (no objects) and deletes the message.
    await waitFor(async () => (await db.query("select 1 from pgmq.q_storage_cleanup where msg_id = $1", [newId])).rowCount === 0,
      { timeoutMs: 90_000, what: "storage-cleanup to consume the requeued message" });
  }, 180_000);

  it("requeue refuses unknown queues and messages with LT510", async () => {
    expect(await sqlState(db.query("select ops.requeue_archived_message('no_such_queue', 1, 'because')"))).toBe("LT510");
    expect(await sqlState(db.query("select ops.requeue_archived_message('training_dispatch', -1, 'because')"))).toBe("LT510");
  });
});
