/**
 * Creating a job with one client insert (or public.create_training_job()):
 * the row gets its resolved configuration and estimate, one dispatch message
 * is enqueued, and a double submit - same idempotency key, or same dataset and
 * configuration within the window - yields one job, even when the two
 * requests race. Plain inserts report the double with 23505 / LT304 (naming
 * the existing job); the RPC returns the existing job instead. What a client
 * sends goes through supabase-js and the real PostgREST; the races of two
 * open transactions are held in SQL, where their order can be forced.
 */
import { randomUUID } from "node:crypto";
import type pg from "pg";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { LocalUser } from "../../stack/jwt.ts";
import { asRole, claimsFor, connect, newUser } from "../helpers/db.ts";
import { testStack } from "../helpers/stack.ts";
import { supabaseClient } from "../helpers/supabase.ts";
import { waitFor } from "../helpers/wait.ts";
import { LLAMA, readyDataset } from "./fixtures.ts";

type Outcome = { id?: string; code?: string; message?: string; detail?: string };

describe("job creation", () => {
  let db: pg.Client;
  let user: LocalUser;
  let dataset: string;
  const extra: pg.Client[] = [];

  beforeAll(async () => {
    db = await connect();
    for (let i = 0; i < 5; i++) extra.push(await connect());
  });
  // A fresh user per test: at most 3 active jobs each (the quota), and no test sees another's jobs.
  // The file is uploaded so that dispatch succeeds: a failed job would not count as a double.
  beforeEach(async () => {
    user = await newUser(db, "create");
    dataset = (await readyDataset(db, user)).id;
  });
  afterAll(async () => {
    await Promise.all([db, ...extra].map((c) => c.end()));
  });

  /** Open a transaction on `c` acting as `u`, as PostgREST does for one request. */
  const begin = async (c: pg.Client, u: LocalUser = user) => {
    await c.query("begin");
    await c.query("select set_config('role', 'authenticated', true), set_config('request.jwt.claims', $1, true)", [
      JSON.stringify(claimsFor("authenticated", u)),
    ]);
  };
  const insert = (c: pg.Client, config: object, key: string | null = null): Promise<Outcome> =>
    c.query<{ id: string }>(
      "insert into public.training_jobs (dataset_id, base_model_id, requested_config, idempotency_key) values ($1, $2, $3, $4) returning id",
      [dataset, LLAMA, JSON.stringify(config), key],
    ).then((r) => ({ id: r.rows[0]!.id }), (e: Outcome) => ({ code: e.code, message: e.message, detail: e.detail }));
  /** supabase-js as `u`: the job's id, or PostgREST's error code, message and HTTP status. */
  const client = (u: LocalUser = user) => supabaseClient(testStack().ANON_KEY, u.token);
  const rpc = async (config: object, key: string | null = null, u: LocalUser = user): Promise<Outcome & { status: number }> => {
    const { data, error, status } = await client(u).rpc("create_training_job", {
      dataset_id: dataset, base_model_id: LLAMA, config: config as never, idempotency_key: key ?? undefined,
    });
    return error ? { code: error.code, message: error.message, status } : { id: data.id, status };
  };
  const httpInsert = async (config: object, key?: string): Promise<Outcome & { status: number }> => {
    const { data, error, status } = await client().from("training_jobs")
      .insert({ dataset_id: dataset, base_model_id: LLAMA, requested_config: config as never, idempotency_key: key }).select("id").single();
    return error ? { code: error.code, message: error.message, status } : { id: data.id, status };
  };
  const jobsWith = async (config: object) =>
    (await db.query("select id from public.training_jobs where user_id = $1 and requested_config = $2", [user.id, JSON.stringify(config)])).rows.map((r) => r.id);

  it("a client insert returns the job queued with its resolved configuration and estimate (201)", async () => {
    const { data: job, error, status } = await client().from("training_jobs")
      .insert({ dataset_id: dataset, base_model_id: LLAMA, requested_config: { seed: 101 } }).select().single();
    expect(error).toBeNull();
    expect(status).toBe(201);
    expect(job).toMatchObject({ status: "queued", config: { seed: 101, epochs: 3, lora: { rank: 16, alpha: 32 } }, estimated_cost: 0.5166, total_steps: 375 });
  });

  it("an insert enqueues exactly one dispatch message (the trigger, seen inside the uncommitted transaction in SQL)", async () => {
    // Once committed the dispatcher deletes the message at any moment; inside the transaction it is still there.
    const seen = await asRole(db, { role: "authenticated", user }, async (c) => {
      const job = (await c.query("insert into public.training_jobs (dataset_id, base_model_id, requested_config) values ($1, $2, '{\"seed\": 102}') returning id", [dataset, LLAMA])).rows[0];
      await c.query("reset role");
      const messages = await c.query("select message from pgmq.q_training_dispatch where message ->> 'job_id' = $1", [job.id]);
      return { job, messages: messages.rows.map((r) => r.message) };
    });
    expect(seen.messages).toEqual([{ job_id: seen.job.id }]);
  });

  it("two racing inserts with the same idempotency key make one job; the other gets 23505", async () => {
    const key = `k-${randomUUID()}`;
    const [a, b] = extra as [pg.Client, pg.Client];
    await begin(a);
    await begin(b);
    const first = await insert(a, { seed: 201 }, key);
    const second = insert(b, { seed: 201 }, key); // blocks on the first's uncommitted row
    await a.query("commit");
    const late = await second;
    await b.query("rollback");
    expect(first.id).toBeDefined();
    expect(late.code).toBe("23505");
    expect(await jobsWith({ seed: 201 })).toEqual([first.id]);
  });

  it("two racing inserts of the same dataset and configuration without a key make one job; the other gets LT304 naming it", async () => {
    const [a, b] = extra as [pg.Client, pg.Client];
    await begin(a);
    await begin(b);
    const first = await insert(a, { seed: 202 });
    const second = insert(b, { seed: 202 }); // waits for the first's admission lock
    await a.query("commit");
    const late = await second;
    await b.query("rollback");
    expect(late.code).toBe("LT304");
    expect(late.message).toMatch(new RegExp(`^Job "${first.id}" with the same dataset and configuration was created \\d+ s ago$`));
    expect(JSON.parse(late.detail!)).toEqual([expect.objectContaining({ code: "LT304", existing_job_id: first.id })]);
    expect(await jobsWith({ seed: 202 })).toEqual([first.id]);
  });

  it("a repeat after the first committed is refused too (400 LT304), but another configuration or a deliberate key is not a double", async () => {
    const first = await httpInsert({ seed: 203 });
    expect(first).toMatchObject({ status: 201, id: expect.any(String) });
    expect(await httpInsert({ seed: 203 })).toMatchObject({ status: 400, code: "LT304", message: expect.stringContaining(first.id!) });
    expect(await httpInsert({ seed: 204 })).toMatchObject({ status: 201, id: expect.any(String) });
    expect(await httpInsert({ seed: 203 }, `k-${randomUUID()}`)).toMatchObject({ status: 201, id: expect.any(String) });
    expect(await jobsWith({ seed: 203 })).toHaveLength(2);
  });

  it("jobs created earlier in the same transaction are not doubles (one request, on purpose)", async () => {
    const ids = await asRole(db, { role: "authenticated", user }, async (c) => [await insert(c as pg.Client, { seed: 205 }), await insert(c as pg.Client, { seed: 205 })]);
    expect(ids.map((o) => o.code)).toEqual([undefined, undefined]);
  });

  it("a failed or cancelled job does not block its resubmission", async () => {
    const first = await httpInsert({ seed: 206 });
    expect(first.status).toBe(201);
    // Cancelled the way its owner would: the stack's dispatcher may already have picked the job up,
    // so the cancel can pass through cancelling first; wait for the terminal status.
    expect((await client().rpc("cancel_training_job", { job_id: first.id! })).error).toBeNull();
    await waitFor(async () => (await db.query("select status from public.training_jobs where id = $1", [first.id])).rows[0]?.status === "cancelled",
      { timeoutMs: 30_000, what: "the first job to be cancelled" });
    expect(await httpInsert({ seed: 206 })).toMatchObject({ status: 201, id: expect.any(String) });
  });

  it("create_training_job() returns the existing job to every racing double submit, keyed or not", async () => {
    const key = `k-${randomUUID()}`;
    // Five requests at once through PostgREST's connection pool.
    const keyed = await Promise.all(extra.map(() => rpc({ seed: 301 }, key)));
    expect(keyed.map((j) => j.status)).toEqual(Array(5).fill(200));
    expect(new Set(keyed.map((j) => j.id)).size).toBe(1);
    expect(await jobsWith({ seed: 301 })).toEqual([keyed[0]!.id]);
    const unkeyed = await Promise.all(extra.map(() => rpc({ seed: 302 })));
    expect(unkeyed.map((j) => j.status)).toEqual(Array(5).fill(200));
    expect(new Set(unkeyed.map((j) => j.id)).size).toBe(1);
    expect(await jobsWith({ seed: 302 })).toEqual([unkeyed[0]!.id]);
  });

  it("create_training_job() refuses a key reused for a different job (LT306) and runs the same admission as an insert", async () => {
    const key = `k-${randomUUID()}`;
    const job = await rpc({ seed: 303 }, key);
    expect(job.status).toBe(200);
    expect(await rpc({ seed: 304 }, key)).toEqual({
      status: 400, code: "LT306", message: `Idempotency key "${key}" was already used for job "${job.id}" with different parameters`,
    });
    expect(await rpc({ learning_rate: 0.5 })).toMatchObject({ status: 400, code: "LT103" });
    expect(await rpc({ early_stopping_patience: 2 })).toMatchObject({ status: 400, code: "LT305" }); // nothing to stop on
    const stranger = await newUser(db, "create-stranger");
    expect(await rpc({}, null, stranger)).toMatchObject({ status: 409, code: "23503" }); // not the stranger's dataset
    const anon = await supabaseClient(testStack().ANON_KEY).rpc("create_training_job", { dataset_id: dataset, base_model_id: LLAMA });
    expect(anon).toMatchObject({ status: 401, error: { code: "42501" } });
  });
});
