/**
 * public.quote_training_job(): the resolved configuration, billable tokens,
 * GPU time, cost, finish time and quota verdict of a job that is not created,
 * checked against a case computed by hand; and the same estimate stored on the
 * job and in cost_records when the job is created. Called as a frontend
 * does: supabase-js `rpc('quote_training_job')` through the real PostgREST.
 */
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LocalUser } from "../../stack/jwt.ts";
import { TrainingQuoteSchema, type TrainingQuote as Quote } from "../../types/training-quote.ts";
import { connect, newUser } from "../helpers/db.ts";
import { testStack } from "../helpers/stack.ts";
import { supabaseClient } from "../helpers/supabase.ts";
import { insertJobAsUser, LLAMA, readyDataset } from "./fixtures.ts";

describe("quote_training_job()", () => {
  let db: pg.Client;
  let user: LocalUser;
  let dataset: string;

  beforeAll(async () => {
    db = await connect();
    user = await newUser(db, "quote");
    // 1,000 examples, 512,000 tokens in all, the longest 1,500 tokens.
    dataset = (await readyDataset(db, user, { examples: 1000, totalTokens: 512_000, maxTokens: 1500 }, { upload: false })).id;
  });
  afterAll(async () => {
    await db.end();
  });

  /** A quote as the user, checked against the shared contract (types/training-quote.ts). */
  const quote = async (args: { dataset?: string; model?: string; config?: unknown; validation?: string | null; suffix?: string | null }, who = user): Promise<Quote> => {
    const { data, error, status } = await supabaseClient(testStack().ANON_KEY, who.token).rpc("quote_training_job", {
      dataset_id: args.dataset ?? dataset, base_model_id: args.model ?? LLAMA, config: (args.config ?? {}) as never,
      validation_dataset_id: args.validation ?? undefined, suffix: args.suffix ?? undefined,
    });
    if (error) throw Object.assign(new Error(error.message), error);
    expect(status).toBe(200);
    return TrainingQuoteSchema.parse(data);
  };

  it("matches the hand-computed estimate for Llama 3.1 8B on 1,000 examples", async () => {
    const q = await quote({ config: { max_seq_length: "auto" } });
    // epochs "auto": 1000 x 3 = 3000 is within 100..25000, so 3 (OpenAI's heuristic).
    // max_seq_length "auto": the smallest power of two >= 1500 is 2048, so every example fits: exact.
    // billable = 512,000 x 3 = 1,536,000 tokens; training = 1,536,000 / 4,000 tok/s = 384 s;
    // wall = 384 + 600 s overhead = 984 s on 1 GPU; cost = 984 / 3600 h x 1.89 USD = 0.5166 USD.
    expect(q.allowed).toBe(true);
    expect(q.errors).toEqual([]);
    expect(q.config).toMatchObject({ epochs: 3, max_seq_length: 2048, batch_size: 8, learning_rate: 0.0002 });
    expect(q.estimate).toMatchObject({
      examples: 1000, train_examples: 1000, tokens_per_epoch: 512000, tokens_exact: true, epochs: 3,
      billable_tokens: 1536000, throughput_tokens_per_second: 4000, training_seconds: 384, overhead_seconds: 600,
      wall_seconds: 984, gpu_count: 1, gpu_seconds: 984, gpu_hours: 0.2733, price_per_gpu_hour: 1.89, cost: 0.5166,
      currency: "USD", total_steps: 375, warmup_steps: 12, duration_hours: 0.273,
    });
    const finish = new Date(q.estimate!.finish_at).getTime();
    expect(Math.abs(finish - (Date.now() + 984_000))).toBeLessThan(60_000);
    expect(q.quotas).toMatchObject({ active_jobs: 0, max_active_jobs: 3, max_training_duration_hours: 48, monthly_spend_cap: null });
  });

  it("bounds the tokens from above and says so when examples are longer than max_seq_length", async () => {
    const q = await quote({ config: { max_seq_length: 1024, epochs: 2 } });
    // Truncated at 1,024: at most min(512,000, 1,000 x 1,024) = 512,000 per epoch, but not exact.
    expect(q.estimate).toMatchObject({ tokens_exact: false, tokens_per_epoch: 512000, billable_tokens: 1024000, training_seconds: 256 });
    const short = await quote({ config: { max_seq_length: 256, epochs: 1 } });
    expect(short.estimate).toMatchObject({ tokens_exact: false, tokens_per_epoch: 256000, billable_tokens: 256000 });
  });

  it("prices multi-GPU models by GPU time: Llama 3.3 70B runs on 4 GPUs", async () => {
    const q = await quote({ model: "llama-3.3-70b-instruct", config: { epochs: 1, max_seq_length: 2048 } });
    // 512,000 tokens / 1,800 tok/s = 284.444 s; + 600 = 884.444 s wall; x 4 GPUs = 3537.776 GPU-s;
    // 3537.776 / 3600 x 2.99 = 2.9383 USD.
    expect(q.estimate).toMatchObject({ training_seconds: 284.444, wall_seconds: 884.444, gpu_count: 4, gpu_seconds: 3537.776, cost: 2.9383 });
  });

  it("prices a 4-bit (QLoRA) run at qlora_throughput_factor (0.8) of the catalog throughput", async () => {
    const q = await quote({ model: "llama-3.3-70b-instruct", config: { epochs: 1, max_seq_length: 2048, quantization: "4bit" } });
    // 512,000 tokens / (1,800 x 0.8 = 1,440 tok/s) = 355.556 s; + 600 = 955.556 s wall; x 4 GPUs = 3822.224 GPU-s;
    // 3822.224 / 3600 x 2.99 = 3.1746 USD (bf16: 2.9383 USD, above).
    expect(q.estimate).toMatchObject({
      throughput_tokens_per_second: 1440, training_seconds: 355.556, wall_seconds: 955.556, gpu_seconds: 3822.224, cost: 3.1746,
    });
  });

  it("creates nothing", async () => {
    const before = await db.query("select count(*)::int as n from public.training_jobs where user_id = $1", [user.id]);
    await quote({});
    const after = await db.query("select count(*)::int as n from public.training_jobs where user_id = $1", [user.id]);
    expect(after.rows[0].n).toBe(before.rows[0].n);
  });

  it("lists every problem an insert would raise, in the order it would raise them", async () => {
    const other = await newUser(db, "quote-other");
    const foreign = (await readyDataset(db, other, undefined, { upload: false })).id;
    const q = await quote({ dataset: foreign, config: { learning_rate: 0.5, lora: { rank: 0 } } });
    expect(q.allowed).toBe(false);
    expect(q.errors.map((e) => e.code)).toEqual(["LT103", "LT103", "23503"]);
    expect(q.errors[0]!.message).toBe(`Learning rate 0.5 is above the maximum 0.001 for "${LLAMA}"`);
    expect(q.errors[2]!.message).toBe(`Dataset "${foreign}" does not exist`);
    expect(q.config).toBeNull();
    expect(q.estimate).toBeNull();

    const gaps = await quote({ config: { lr_scheduler: "cosine_with_restarts", quantization: "4bit", early_stopping_patience: 1 } });
    expect(gaps.errors.map((e) => [e.code, e.path])).toEqual([["LT305", ["early_stopping_patience"]]]);
    expect(gaps.estimate).not.toBeNull(); // the quote still says what it would cost
    const runnable = await quote({ config: { lr_scheduler: "cosine_with_restarts", quantization: "4bit", early_stopping_patience: 1, validation: { split_fraction: 0.1 } } });
    expect(runnable).toMatchObject({ allowed: true, errors: [], config: { quantization: "4bit", validation: { split_fraction: 0.1 }, early_stopping_patience: 1 } });
    expect(runnable.estimate!.total_steps).toBeLessThan(gaps.estimate!.total_steps!); // 100 of the 1,000 examples held out
  });

  it("stores the quoted estimate on the job and as an estimate in cost_records", async () => {
    const config = { epochs: 2, max_seq_length: 2048 };
    const q = await quote({ config });
    const job = await insertJobAsUser(db, user, { dataset_id: dataset, base_model_id: LLAMA, requested_config: config });
    expect(job.config).toEqual(q.config);
    expect(Number(job.estimated_cost)).toBe(q.estimate!.cost);
    expect(Number(job.estimated_gpu_seconds)).toBe(q.estimate!.gpu_seconds);
    expect(job.total_steps).toBe(q.estimate!.total_steps);
    const costs = await db.query("select kind::text, amount::float8, gpu_seconds::float8, idempotency_key from public.cost_records where job_id = $1", [job.id]);
    expect(costs.rows).toEqual([{ kind: "estimate", amount: q.estimate!.cost, gpu_seconds: q.estimate!.gpu_seconds, idempotency_key: "estimate" }]);
  });

  it("is for signed-in users only: anon gets 401 with 42501", async () => {
    const res = await supabaseClient(testStack().ANON_KEY).rpc("quote_training_job", { dataset_id: dataset, base_model_id: LLAMA });
    expect(res.status).toBe(401);
    expect(res.error?.code).toBe("42501");
  });
});
