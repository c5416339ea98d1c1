/**
 * Creating a job with one client insert (or public.create_training_job()):
 * the row gets its resolved configuration and estimate, one dispatch message
 * is enqueued, and a double submit - same idempotency key, or same dataset and
 * configuration within the window - yields one job, even when the two
 * requests race. Plain inserts report the double with 23505 / LT304 (naming
 * the existing job); the RPC returns the existing job instead.
 */
import { randomUUID } from "node:crypto";
import type pg from "pg";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { LocalUser } from "../../stack/jwt.ts";
import { asRole, claimsFor, connect, newUser, sqlState } from "../helpers/db.ts";
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
  const rpc = (c: pg.Client, config: object, key: string | null = null, u: LocalUser = user) =>
    asRole(c, { role: "authenticated", user: u }, (x) =>
      x.query<{ id: string; created_at: Date }>("select * from public.create_training_job(dataset_id => $1, base_model_id => $2, config => $3, idempotency_key => $4)",
        [dataset, LLAMA, JSON.stringify(config), key]), { commit: true }).then((r) => r.rows[0]!);
  const jobsWith = async (config: object) =>
    (await db.query("select id from public.training_jobs where user_id = $1 and requested_config = $2", [user.id, JSON.stringify(config)])).rows.map((r) => r.id);

  it("a client insert resolves the configuration, stores the estimate and enqueues one dispatch message", async () => {
    const seen = await asRole(db, { role: "authenticated", user }, async (c) => {
      const job = (await c.query("insert into public.training_jobs (dataset_id, base_model_id, requested_config) values ($1, $2, '{\"seed\": 101}') returning *", [dataset, LLAMA])).rows[0];
      await c.query("reset role");
      const messages = await c.query("select message from pgmq.q_training_dispatch where message ->> 'job_id' = $1", [job.id]);
      return { job, messages: messages.rows.map((r) => r.message) };
    });
    expect(seen.job).toMatchObject({ status: "queued", config: { seed: 101, epochs: 3, lora: { rank: 16, alpha: 32 } }, estimated_cost: "0.5166", total_steps: 375 });
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

  it("a repeat after the first committed is refused too, but another configuration or a deliberate key is not a double", async () => {
    const first = await asRole(db, { role: "authenticated", user }, (c) => insert(c as pg.Client, { seed: 203 }), { commit: true });
    const again = await asRole(db, { role: "authenticated", user }, (c) => insert(c as pg.Client, { seed: 203 })).catch((e: Outcome) => e);
    expect(again).toMatchObject({ code: "LT304" });
    const other = await asRole(db, { role: "authenticated", user }, (c) => insert(c as pg.Client, { seed: 204 }));
    expect(other.id).toBeDefined();
    const keyed = await asRole(db, { role: "authenticated", user }, (c) => insert(c as pg.Client, { seed: 203 }, `k-${randomUUID()}`));
    expect(keyed.id).toBeDefined();
    expect(first.id).toBeDefined();
  });

  it("jobs created earlier in the same transaction are not doubles (one request, on purpose)", async () => {
    const ids = await asRole(db, { role: "authenticated", user }, async (c) => [await insert(c as pg.Client, { seed: 205 }), await insert(c as pg.Client, { seed: 205 })]);
    expect(ids.map((o) => o.code)).toEqual([undefined, undefined]);
  });

  it("a failed or cancelled job does not block its resubmission", async () => {
    const first = await asRole(db, { role: "authenticated", user }, (c) => insert(c as pg.Client, { seed: 206 }), { commit: true });
    await db.query("update public.training_jobs set status = 'failed', error = '{\"code\": \"X\", \"message\": \"x\", \"kind\": \"system\"}' where id = $1", [first.id]);
    const again = await asRole(db, { role: "authenticated", user }, (c) => insert(c as pg.Client, { seed: 206 }), { commit: true });
    expect(again.id).toBeDefined();
  });

  it("create_training_job() returns the existing job to every racing double submit, keyed or not", async () => {
    const key = `k-${randomUUID()}`;
    const keyed = await Promise.all(extra.map((c) => rpc(c, { seed: 301 }, key)));
    expect(new Set(keyed.map((j) => j.id)).size).toBe(1);
    expect(await jobsWith({ seed: 301 })).toEqual([keyed[0]!.id]);
    const unkeyed = await Promise.all(extra.map((c) => rpc(c, { seed: 302 })));
    expect(new Set(unkeyed.map((j) => j.id)).size).toBe(1);
    expect(await jobsWith({ seed: 302 })).toEqual([unkeyed[0]!.id]);
  });

  it("create_training_job() refuses a key reused for a different job (LT306) and runs the same admission as an insert", async () => {
    const key = `k-${randomUUID()}`;
    const job = await rpc(db, { seed: 303 }, key);
    const reused = await rpc(db, { seed: 304 }, key).catch((e: Outcome) => e);
    expect(reused).toMatchObject({ code: "LT306", message: `Idempotency key "${key}" was already used for job "${job.id}" with different parameters` });
    expect(await sqlState(rpc(db, { learning_rate: 0.5 }))).toBe("LT103");
    expect(await sqlState(rpc(db, { early_stopping_patience: 2 }))).toBe("LT305"); // nothing to stop on
    const stranger = await newUser(db, "create-stranger");
    expect(await sqlState(rpc(db, {}, null, stranger))).toBe("23503"); // not the stranger's dataset
    expect(await sqlState(asRole(db, { role: "anon" }, (c) => c.query("select public.create_training_job($1, $2)", [dataset, LLAMA])))).toBe("42501");
  });
});
