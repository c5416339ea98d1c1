/**
 * Admission refuses, with stable codes and actionable messages, a job that
 * would exceed a quota: active jobs per user (LT301, overridable per user),
 * MAX_TRAINING_DURATION_HOURS against the estimate (LT302), a monthly spend
 * cap (LT303; LT308 when there is no estimate to check it with), and
 * combinations the GPU cluster cannot run (LT305) or a suffix given twice
 * (LT307). Quotas are per user: every test has its own users.
 * Jobs that must stay active are inserted by the server as `pending`, which no
 * worker touches. The client's inserts and quotes go through supabase-js and
 * the real PostgREST: refusals arrive as HTTP 400 with the LT code, message,
 * details and hint.
 */
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LocalUser } from "../../stack/jwt.ts";
import { connect, newUser } from "../helpers/db.ts";
import { testStack } from "../helpers/stack.ts";
import { supabaseClient } from "../helpers/supabase.ts";
import { LLAMA, readyDataset } from "./fixtures.ts";

type Refusal = { code: string; message: string; detail?: string; hint?: string };

describe("job quotas", () => {
  let db: pg.Client;
  beforeAll(async () => {
    db = await connect();
  });
  afterAll(async () => {
    await db.end();
  });

  /** Insert as the client with supabase-js; the refusal (always HTTP 400) or the new job's id. */
  const tryInsert = async (user: LocalUser, values: Record<string, unknown>): Promise<{ id: string } | Refusal> => {
    const { data, error, status } = await supabaseClient(testStack().ANON_KEY, user.token)
      .from("training_jobs").insert(values as never).select("id").single();
    if (!error) return { id: data.id };
    expect(status).toBe(400);
    return { code: error.code, message: error.message, detail: error.details, hint: error.hint };
  };
  /** An active job the server holds back (pending): counts against quotas, never dispatched. */
  const pendingJob = async (user: LocalUser, dataset: string, config: object) =>
    (await db.query<{ id: string }>(
      "insert into public.training_jobs (user_id, dataset_id, base_model_id, requested_config, status) values ($1, $2, $3, $4, 'pending') returning id",
      [user.id, dataset, LLAMA, JSON.stringify(config)],
    )).rows[0]!.id;

  it("refuses a fourth active job (LT301) and admits one again when a job finishes", async () => {
    const user = await newUser(db, "quota-active");
    const dataset = (await readyDataset(db, user, undefined, { upload: false })).id;
    const held = [];
    for (const seed of [1, 2, 3]) held.push(await pendingJob(user, dataset, { seed }));
    const refused = await tryInsert(user, { dataset_id: dataset, base_model_id: LLAMA, requested_config: { seed: 4 } });
    expect(refused).toMatchObject({ code: "LT301", message: "You already have 3 active training jobs; the limit is 3" });
    expect((refused as Refusal).hint).toContain("cancel");
    expect(JSON.parse((refused as Refusal).detail!)).toEqual([expect.objectContaining({ code: "LT301" })]);
    await db.query("update public.training_jobs set status = 'cancelled' where id = $1", [held[0]]);
    expect(await tryInsert(user, { dataset_id: dataset, base_model_id: LLAMA, requested_config: { seed: 4 } })).toHaveProperty("id");
  });

  it("applies a per-user override of the active-job limit, and only to that user", async () => {
    const [limited, other] = [await newUser(db, "quota-one"), await newUser(db, "quota-free")];
    await db.query("insert into private.user_quotas (user_id, max_active_jobs, note) values ($1, 1, 'test')", [limited.id]);
    const ds = (await readyDataset(db, limited, undefined, { upload: false })).id;
    const otherDs = (await readyDataset(db, other, undefined, { upload: false })).id;
    await pendingJob(limited, ds, { seed: 1 });
    await pendingJob(other, otherDs, { seed: 1 });
    await pendingJob(other, otherDs, { seed: 2 });
    expect(await tryInsert(limited, { dataset_id: ds, base_model_id: LLAMA, requested_config: { seed: 2 } }))
      .toMatchObject({ code: "LT301", message: "You already have 1 active training jobs; the limit is 1" });
    expect(await tryInsert(other, { dataset_id: otherDs, base_model_id: LLAMA, requested_config: { seed: 3 } })).toHaveProperty("id");
  });

  it("refuses a job estimated to run longer than MAX_TRAINING_DURATION_HOURS (LT302)", async () => {
    const user = await newUser(db, "quota-long");
    // 200,000 examples x 1,000 tokens = 200M tokens per epoch at 4,000 tokens/s.
    const ds = (await readyDataset(db, user, { examples: 200_000, totalTokens: 200_000_000, maxTokens: 2000 }, { upload: false })).id;
    const max = (await db.query("select value::int as v from private.job_settings where name = 'max_training_duration_hours'")).rows[0].v;
    expect(max).toBe(48);
    // 4 epochs: 200,000 s of training + 600 s = 55.7 h.
    expect(await tryInsert(user, { dataset_id: ds, base_model_id: LLAMA, requested_config: { epochs: 4 } }))
      .toMatchObject({ code: "LT302", message: "Estimated training time 55.7 h is above the maximum 48 h" });
    // 3 epochs: 150,600 s = 41.8 h.
    expect(await tryInsert(user, { dataset_id: ds, base_model_id: LLAMA, requested_config: { epochs: 3 } })).toHaveProperty("id");
  });

  it("keeps a user's monthly spend, estimates of active jobs included, under their cap (LT303)", async () => {
    const user = await newUser(db, "quota-cap");
    await db.query("insert into private.user_quotas (user_id, monthly_spend_cap) values ($1, 1.00)", [user.id]);
    const ds = (await readyDataset(db, user, undefined, { upload: false })).id;
    // Estimates (1,000 examples, 512,000 tokens): 3 epochs 0.5166, 2 epochs 0.4494, 1 epoch 0.3822 USD.
    await pendingJob(user, ds, { epochs: 3 });
    const finished = await pendingJob(user, ds, { epochs: 2 });
    await db.query("update public.training_jobs set status = 'cancelled' where id = $1", [finished]);
    await db.query("insert into public.cost_records (job_id, kind, gpu_seconds, amount) values ($1, 'usage', 300, 0.2)", [finished]);
    // Spent: 0.5166 (active, estimate) + 0.2 (finished, charged) = 0.7166; + 0.3822 = 1.0988 > 1.
    expect(await tryInsert(user, { dataset_id: ds, base_model_id: LLAMA, requested_config: { epochs: 1 } })).toMatchObject({
      code: "LT303", message: "Estimated cost 0.3822 USD would bring this month's spend to 1.0988 USD, above your cap of 1.0000 USD",
    });
    const quote = await supabaseClient(testStack().ANON_KEY, user.token)
      .rpc("quote_training_job", { dataset_id: ds, base_model_id: LLAMA, config: { epochs: 1 } });
    expect(quote.error).toBeNull();
    expect(quote.data).toMatchObject({ allowed: false, quotas: { monthly_spend_cap: 1, spent_this_month: 0.7166, currency: "USD" } });
    // Raised to 1.10, the same job fits: 1.0988 <= 1.10.
    await db.query("update private.user_quotas set monthly_spend_cap = 1.10 where user_id = $1", [user.id]);
    expect(await tryInsert(user, { dataset_id: ds, base_model_id: LLAMA, requested_config: { epochs: 1 } })).toHaveProperty("id");
  });

  it("refuses a capped user's job that cannot be estimated (LT308)", async () => {
    const user = await newUser(db, "quota-nostats");
    await db.query("insert into private.user_quotas (user_id, monthly_spend_cap) values ($1, 100)", [user.id]);
    const ds = (await readyDataset(db, user, undefined, { upload: false })).id;
    await db.query("update public.datasets set stats = null where id = $1", [ds]);
    expect(await tryInsert(user, { dataset_id: ds, base_model_id: LLAMA })).toMatchObject({ code: "LT308" });
  });

  it("refuses combinations the GPU cluster cannot run (LT305) and a suffix given twice (LT307)", async () => {
    const user = await newUser(db, "quota-gaps");
    const ds = (await readyDataset(db, user, undefined, { upload: false })).id;
    const val = (await readyDataset(db, user, undefined, { upload: false })).id;
    const blind = await tryInsert(user, { dataset_id: ds, base_model_id: LLAMA, requested_config: { quantization: "4bit", early_stopping_patience: 2 } });
    expect(blind).toMatchObject({ code: "LT305", message: "Early stopping needs validation data to watch the eval loss" });
    expect((blind as Refusal).hint).toContain('"validation": {"split_fraction": 0.1}');
    expect(JSON.parse((blind as Refusal).detail!).map((e: { path: string[] }) => e.path)).toEqual([["early_stopping_patience"]]);
    const both = await tryInsert(user, { dataset_id: ds, validation_dataset_id: val, base_model_id: LLAMA, requested_config: { validation: { split_fraction: 0.1 } } });
    expect(both).toMatchObject({ code: "LT305", message: "A validation split and a validation dataset cannot be used together; the GPU cluster evaluates on one" });
    expect(JSON.parse((both as Refusal).detail!).map((e: { path: string[] }) => e.path)).toEqual([["validation"]]);
    // What the cluster now runs is admitted: QLoRA with restarts, and early stopping on a validation dataset.
    expect(await tryInsert(user, { dataset_id: ds, validation_dataset_id: val, base_model_id: LLAMA, requested_config: { quantization: "4bit", lr_scheduler: "cosine_with_restarts", early_stopping_patience: 2 } }))
      .toHaveProperty("id");
    expect(await tryInsert(user, { dataset_id: ds, base_model_id: LLAMA, suffix: "a", requested_config: { suffix: "b" } }))
      .toMatchObject({ code: "LT307", message: 'Suffix given twice with different values: "b" in the configuration, "a" as the job\'s suffix' });
    expect(await tryInsert(user, { dataset_id: ds, base_model_id: LLAMA, suffix: "a", requested_config: { suffix: "a", seed: 9 } })).toHaveProperty("id");
  });
});
