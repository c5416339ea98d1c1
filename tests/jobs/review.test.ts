/**
 * A review step before a job runs, like Mistral's auto_start=false:
 * create_training_job(..., start => false) admits the job (validation,
 * estimate, quotas) and leaves it pending with nothing sent to the GPU
 * cluster; start_training_job() (owner only) queues it and dispatch follows;
 * cancel_training_job() ends it at once. A pending job holds its quota.
 * Every call is the client's: supabase-js RPCs through the stack's API URL
 * (the real PostgREST), as the user.
 */
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LocalUser } from "../../stack/jwt.ts";
import { connect, newUser } from "../helpers/db.ts";
import { testStack } from "../helpers/stack.ts";
import { supabaseClient } from "../helpers/supabase.ts";
import { waitFor } from "../helpers/wait.ts";
import { clusterJobsFor, jobEvents, jobRow, LLAMA, pokeDispatcher, readyDataset } from "./fixtures.ts";

describe("jobs created for review (start => false)", () => {
  let db: pg.Client;
  beforeAll(async () => {
    db = await connect();
  });
  afterAll(async () => {
    await db.end();
  });

  const client = (user: LocalUser) => supabaseClient(testStack().ANON_KEY, user.token);
  /** The job's fields, or the error PostgREST answered (code = SQLSTATE). */
  const rpcJob = async (p: PromiseLike<{ data: unknown; error: { code: string; message: string } | null }>) => {
    const { data, error } = await p;
    if (error) throw Object.assign(new Error(error.message), { code: error.code });
    return data as { id: string; status: string };
  };
  const create = (user: LocalUser, dataset: string, config: { epochs: number; seed: number } = { epochs: 1, seed: 5 }) =>
    rpcJob(client(user).rpc("create_training_job", { dataset_id: dataset, base_model_id: LLAMA, config, start: false }));
  const start = async (user: LocalUser, jobId: string) =>
    (await rpcJob(client(user).rpc("start_training_job", { job_id: jobId }))).status;
  const queued = async (jobId: string) =>
    (await db.query<{ n: number }>("select count(*)::int as n from pgmq.q_training_dispatch where message ->> 'job_id' = $1", [jobId])).rows[0]!.n;

  it("admits the job with its estimate but leaves it pending: nothing is queued or reaches the cluster", async () => {
    const user = await newUser(db, "review");
    const dataset = await readyDataset(db, user);
    const job = await create(user, dataset.id);
    expect(job.status).toBe("pending");
    const row = await jobRow(db, job.id);
    expect(Number(row.estimated_cost)).toBeGreaterThan(0);
    const estimate = await db.query("select amount from public.cost_records where job_id = $1 and kind = 'estimate'", [job.id]);
    expect(estimate.rows.map((r) => r.amount)).toEqual([row.estimated_cost]);
    const review = (await jobEvents(db, job.id)).find((e) => e.type === "job.awaiting_start")!;
    expect(review.data).toMatchObject({ total_steps: row.total_steps, currency: "USD" });
    expect(Number(review.data.estimated_cost)).toBe(Number(row.estimated_cost));
    // The dispatcher has nothing to do for it, however often it is woken.
    expect(await queued(job.id)).toBe(0);
    await (await pokeDispatcher()).arrayBuffer();
    expect((await jobRow(db, job.id)).status).toBe("pending");
    expect(await clusterJobsFor(job.id)).toEqual([]);
  });

  it("start_training_job() queues the owner's pending job and it is dispatched; starting it again changes nothing", async () => {
    const user = await newUser(db, "review");
    const dataset = await readyDataset(db, user);
    const job = await create(user, dataset.id);
    expect(await start(user, job.id)).toBe("queued");
    const dispatched = await waitFor(async () => {
      const j = await jobRow(db, job.id);
      return j.external_job_id !== null && j;
    }, { timeoutMs: 30_000, what: "the started job to reach the cluster" });
    expect((await clusterJobsFor(job.id)).map((j) => j.id)).toEqual([dispatched.external_job_id]);
    const before = await jobEvents(db, job.id);
    expect(before.filter((e) => e.type === "job.start_requested")).toHaveLength(1);
    expect(before.find((e) => e.type === "job.start_requested")!.data).toMatchObject({ from: "pending", by: user.id });
    expect(["queued", "dispatching", "running", "succeeded"]).toContain(await start(user, job.id));
    expect((await jobEvents(db, job.id)).filter((e) => e.type === "job.start_requested")).toHaveLength(1);
  });

  it("only the owner can start a job: another user's and a missing one are LT420, anon is refused", async () => {
    const owner = await newUser(db, "review");
    const stranger = await newUser(db, "review");
    const dataset = await readyDataset(db, owner, undefined, { upload: false });
    const job = await create(owner, dataset.id);
    await expect(start(stranger, job.id)).rejects.toMatchObject({ code: "LT420" });
    await expect(start(owner, "00000000-0000-4000-8000-000000000000")).rejects.toMatchObject({ code: "LT420" });
    const anon = await supabaseClient(testStack().ANON_KEY).rpc("start_training_job", { job_id: job.id });
    expect(anon.error?.code).toBe("42501");
    expect((await jobRow(db, job.id)).status).toBe("pending");
  });

  it("a pending job holds its place in max_active_jobs until it is cancelled; a cancelled one cannot be started (LT450)", async () => {
    const user = await newUser(db, "review");
    const dataset = await readyDataset(db, user, undefined, { upload: false });
    await db.query("insert into private.user_quotas (user_id, max_active_jobs) values ($1, 1)", [user.id]);
    const first = await create(user, dataset.id, { epochs: 1, seed: 1 });
    await expect(create(user, dataset.id, { epochs: 1, seed: 2 })).rejects.toMatchObject({ code: "LT301" });
    expect((await rpcJob(client(user).rpc("cancel_training_job", { job_id: first.id }))).status).toBe("cancelled");
    await expect(start(user, first.id)).rejects.toMatchObject({ code: "LT450" });
    expect((await jobRow(db, first.id)).status).toBe("cancelled");
    expect((await create(user, dataset.id, { epochs: 1, seed: 2 })).status).toBe("pending");
  });

  it("a job whose dataset was deleted during review is refused at start (LT007) and stays pending", async () => {
    const user = await newUser(db, "review");
    const dataset = await readyDataset(db, user, undefined, { upload: false });
    const job = await create(user, dataset.id);
    await db.query("update public.datasets set deleted_at = now() where id = $1", [dataset.id]);
    await expect(start(user, job.id)).rejects.toMatchObject({ code: "LT007", message: expect.stringContaining(dataset.id) });
    expect((await jobRow(db, job.id)).status).toBe("pending");
    expect(await queued(job.id)).toBe(0);
  });
});
