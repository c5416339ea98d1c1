/**
 * The dispatch handler called directly (functions/dispatch-training-job/handler.ts
 * runs under Node: Web APIs, pg and supabase-js only) against the stack's
 * database, Storage and GPU simulator, on a queue of this file's own so the
 * stack's worker never sees these jobs. Hooks simulate crashes at the worst
 * moments: between the cluster's 2xx and the database commit, and between
 * saving the request and sending it; the next delivery must still end with
 * exactly one cluster job. Also: redeliveries, leases, poison messages and
 * jobs that ended while they were being submitted.
 */
import { randomBytes, randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GpuClusterClient } from "../../functions/_shared/gpu/client.ts";
import { createDownloadUrlSigner } from "../../functions/_shared/storage.ts";
import type { DispatchDeps } from "../../functions/dispatch-training-job/dispatch.ts";
import { createHandler, type DispatchReport } from "../../functions/dispatch-training-job/handler.ts";
import { dispatchStore } from "../../functions/dispatch-training-job/store.ts";
import { connect, newUser } from "../helpers/db.ts";
import { testStack } from "../helpers/stack.ts";
import { supabaseClient } from "../helpers/supabase.ts";
import { clusterJobsFor, jobEvents, jobRow, LLAMA, readyDataset } from "./fixtures.ts";

class Crash extends Error {}

describe("dispatch worker: crashes and redeliveries", () => {
  const queue = `tdq_${randomBytes(4).toString("hex")}`;
  let db: pg.Client;
  let pool: pg.Pool;

  beforeAll(async () => {
    db = await connect();
    pool = new pg.Pool({ connectionString: testStack().DB_URL, max: 3 });
    await db.query("select pgmq.create(queue_name => $1)", [queue]);
  });
  afterAll(async () => {
    await db.query("select pgmq.drop_queue(queue_name => $1)", [queue]);
    await pool.end();
    await db.end();
  });

  function handler(hooks: DispatchDeps["hooks"] = {}, key = testStack().SERVICE_ROLE_KEY, callbacks?: DispatchDeps["callbacks"]) {
    const s = testStack();
    const handle = createHandler({
      serviceRoleKey: s.SERVICE_ROLE_KEY,
      queue,
      store: dispatchStore(pool),
      gpu: (onRetry) => new GpuClusterClient({
        baseUrl: s.GPU_CLUSTER_URL, apiKey: s.GPU_CLUSTER_API_KEY, timeoutMs: 5000, maxAttempts: 3, maxDelayMs: 200, onRetry,
      }),
      signDatasetUrl: createDownloadUrlSigner(supabaseClient(s.SERVICE_ROLE_KEY).storage),
      hooks,
      ...(callbacks ? { callbacks } : {}),
    });
    return async () => {
      const res = await handle(new Request("http://localhost/functions/v1/dispatch-training-job", {
        method: "POST", headers: { authorization: `Bearer ${key}` },
      }));
      return { status: res.status, body: (await res.json()) as { success?: true; data?: DispatchReport; error?: { code: string } } };
    };
  }

  /** A queued job whose dispatch message is on this file's queue (moved there in the creating transaction). */
  async function jobOnOwnQueue(): Promise<string> {
    const user = await newUser(db, "worker");
    const dataset = await readyDataset(db, user);
    const id = randomUUID();
    await db.query("begin");
    await db.query("insert into public.training_jobs (id, user_id, dataset_id, base_model_id) values ($1, $2, $3, $4)", [id, user.id, dataset.id, LLAMA]);
    await db.query("select pgmq.delete(queue_name => 'training_dispatch', msg_id => q.msg_id) from pgmq.q_training_dispatch q where q.message ->> 'job_id' = $1", [id]);
    await db.query("select pgmq.send(queue_name => $1, msg => $2::jsonb)", [queue, JSON.stringify({ job_id: id })]);
    await db.query("commit");
    return id;
  }
  const messages = async (id: string) =>
    (await db.query(`select msg_id, read_ct, vt from pgmq.${pg.escapeIdentifier(`q_${queue}`)} where message ->> 'job_id' = $1`, [id])).rows;
  /** What a crashed worker leaves behind once its message's visibility timeout has passed. */
  async function timeoutPasses(id: string): Promise<void> {
    for (const m of await messages(id)) await db.query("select pgmq.set_vt(queue_name => $1, msg_id => $2, vt => 0)", [queue, m.msg_id]);
    await db.query("update private.training_job_dispatch set lease_until = now() - interval '1 second' where job_id = $1", [id]);
  }

  it("a crash between the cluster's 2xx and the commit ends, on redelivery, with exactly one cluster job", async () => {
    const id = await jobOnOwnQueue();
    const crashed = await handler({ afterSubmit: () => { throw new Crash("killed after the 2xx"); } })();
    expect(crashed.status).toBe(500);
    const lost = await jobRow(db, id);
    expect(lost).toMatchObject({ status: "dispatching", external_job_id: null });
    const [created] = await clusterJobsFor(id);
    expect(created).toBeDefined();
    // The message is still there, invisible for the visibility timeout (longer than any worker run).
    const [msg] = await messages(id);
    expect(new Date(msg.vt).getTime()).toBeGreaterThan(Date.now() + 170_000);

    await timeoutPasses(id);
    const again = await handler()();
    expect(again.body.data!.processed).toEqual([{ job_id: id, outcome: { action: "running" }, external_job_id: created!.id }]);
    expect(await jobRow(db, id)).toMatchObject({ status: "running", external_job_id: created!.id, dispatch_attempts: 1 });
    expect((await clusterJobsFor(id)).map((j) => j.id)).toEqual([created!.id]);
    const events = await jobEvents(db, id);
    expect(events.map((e) => e.type)).toEqual(["job.created", "job.status_changed", "dispatch.lookup", "job.status_changed", "dispatch.submitted"]);
    expect(events.at(-1)!.data).toMatchObject({ adopted: true, external_job_id: created!.id });
    expect(await messages(id)).toEqual([]);
  });

  it("a crash after saving the request but before sending it looks first, finds nothing, and submits once", async () => {
    const id = await jobOnOwnQueue();
    expect((await handler({ beforeSubmit: () => { throw new Crash("killed before sending"); } })()).status).toBe(500);
    expect(await clusterJobsFor(id)).toEqual([]);
    await timeoutPasses(id);
    await handler()();
    const job = await jobRow(db, id);
    expect(job.status).toBe("running");
    expect((await clusterJobsFor(id)).map((j) => j.id)).toEqual([job.external_job_id]);
    const types = (await jobEvents(db, id)).map((e) => e.type);
    expect(types.indexOf("dispatch.lookup")).toBeLessThan(types.indexOf("dispatch.submitted"));
  });

  it("a redelivered message for a job already running does nothing", async () => {
    const id = await jobOnOwnQueue();
    await handler()();
    const before = await jobRow(db, id);
    expect(before.status).toBe("running");
    await db.query("select pgmq.send(queue_name => $1, msg => $2::jsonb)", [queue, JSON.stringify({ job_id: id })]);
    const again = await handler()();
    expect(again.body.data!.processed).toEqual([expect.objectContaining({ action: "done", job_id: id, status: "running" })]);
    expect(await jobRow(db, id)).toMatchObject({ status: "running", external_job_id: before.external_job_id });
    expect(await clusterJobsFor(id)).toHaveLength(1);
    expect(await messages(id)).toEqual([]);
  });

  it("a second message for a job another worker holds waits for the holder's lease", async () => {
    const id = await jobOnOwnQueue();
    await handler({ beforeSubmit: () => { throw new Crash("stuck holder"); } })(); // holds the lease, message in flight
    await db.query("select pgmq.send(queue_name => $1, msg => $2::jsonb)", [queue, JSON.stringify({ job_id: id })]);
    const second = await handler()();
    expect(second.body.data!.processed).toEqual([expect.objectContaining({ action: "busy", job_id: id })]);
    expect(await clusterJobsFor(id)).toEqual([]);
    expect((await messages(id)).every((m) => new Date(m.vt).getTime() > Date.now() + 60_000)).toBe(true);
  });

  it("archives a message delivered too often and fails its job with an actionable system error (LT314)", async () => {
    const id = await jobOnOwnQueue();
    for (let i = 0; i < 5; i++) await db.query("select * from pgmq.read(queue_name => $1, vt => 0, qty => 1)", [queue]);
    const res = await handler()();
    expect(res.body.data!.processed).toEqual([expect.objectContaining({ action: "poisoned", job_id: id, read_ct: 6 })]);
    expect(await jobRow(db, id)).toMatchObject({ status: "failed", error: { code: "LT314", kind: "system" } });
    expect(await messages(id)).toEqual([]);
    const archived = await db.query(`select 1 from pgmq.${pg.escapeIdentifier(`a_${queue}`)} where message ->> 'job_id' = $1`, [id]);
    expect(archived.rowCount).toBe(1);
    expect(await clusterJobsFor(id)).toEqual([]);
  });

  it("archives a message without a job id", async () => {
    await db.query("select pgmq.send(queue_name => $1, msg => '{\"oops\": 1}'::jsonb)", [queue]);
    const res = await handler()();
    expect(res.body.data!.processed).toEqual([expect.objectContaining({ action: "discarded" })]);
  });

  it("records the cluster job of a job cancelled during submission, and cancels the one of a job that ended", async () => {
    const cancelling = await jobOnOwnQueue();
    await handler({ afterSubmit: async () => {
      await db.query("update public.training_jobs set status = 'cancelling' where id = $1", [cancelling]);
    } })();
    const [kept] = await clusterJobsFor(cancelling);
    // The stack's own poller may already have carried the cancel through (a cancel wakes it).
    expect(await jobRow(db, cancelling)).toMatchObject({
      status: expect.stringMatching(/^cancell(ing|ed)$/), external_job_id: kept!.id,
    });

    const ended = await jobOnOwnQueue();
    const res = await handler({ afterSubmit: async () => {
      await db.query("update public.training_jobs set status = 'failed', error = '{\"code\": \"LT399\", \"message\": \"stopped by an operator\", \"kind\": \"system\"}' where id = $1", [ended]);
    } })();
    expect(res.body.data!.processed).toEqual([expect.objectContaining({ job_id: ended, outcome: { action: "orphaned" } })]);
    const [orphan] = await clusterJobsFor(ended);
    expect(orphan!.status).toBe("cancelled");
    expect((await jobEvents(db, ended)).at(-1)).toMatchObject({ level: "warning", type: "dispatch.submitted", data: { outcome: "orphaned" } });
  });

  it("gives the cluster the callback URLs, binding the events to the job", async () => {
    const id = await jobOnOwnQueue();
    // Unreachable on purpose: only what the cluster was told matters here.
    await handler({}, undefined, { eventsUrl: "http://127.0.0.1:9/functions/v1/gpu-webhook", uploadUrlsUrl: "http://127.0.0.1:9/functions/v1/gpu-upload-urls" })();
    const [job] = await clusterJobsFor(id);
    expect(job).toMatchObject({
      callback_url: `http://127.0.0.1:9/functions/v1/gpu-webhook?job=${id}`,
      upload_urls_callback_url: "http://127.0.0.1:9/functions/v1/gpu-upload-urls",
    });
  });

  it("refuses callers other than the service role", async () => {
    const anon = await handler({}, testStack().ANON_KEY)();
    expect(anon).toMatchObject({ status: 403, body: { error: { code: "forbidden" } } });
    const none = await createHandler({ ...({} as DispatchDeps), serviceRoleKey: "k" })(new Request("http://localhost/", { method: "POST" }));
    expect(none.status).toBe(401);
  });
});
