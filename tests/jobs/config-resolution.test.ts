/**
 * private.training_config_resolve(): absent keys take the base model's
 * catalog defaults, "auto" is derived from the dataset statistics, explicit
 * values are kept, and the result is a complete configuration that both
 * validators (SQL and zod) accept, for every seeded model. Bounds are per
 * model: the same value is fine for one and refused for another.
 */
import fc from "fast-check";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { recommendedEpochs } from "../../functions/_shared/dataset/epochs.ts";
import { trainingConfigErrors, type BaseModelBounds } from "../../types/training-config.ts";
import { connect, newUser } from "../helpers/db.ts";
import { testStack } from "../helpers/stack.ts";
import { supabaseClient } from "../helpers/supabase.ts";
import { validTrainingConfig } from "../db/training-config.arbitraries.ts";
import { LLAMA, readyDataset, statsFor, type TokenShape } from "./fixtures.ts";

type Model = BaseModelBounds & { default_target_modules: string[] };
type Resolved = Record<string, unknown> & { lora: Record<string, unknown> };

describe("training configuration resolution", () => {
  let db: pg.Client;
  let models: Model[];

  beforeAll(async () => {
    db = await connect();
    models = (await db.query<Model>("select * from public.base_models where enabled order by id")).rows;
  });
  afterAll(async () => {
    await db.end();
  });

  const resolve = async (model: string, config: unknown, shape: TokenShape | null): Promise<Resolved> =>
    (await db.query<{ r: Resolved }>("select private.training_config_resolve($1, $2, $3) as r", [
      model, JSON.stringify(config), shape === null ? null : JSON.stringify(await statsFor(db, shape)),
    ])).rows[0]!.r;
  const sqlErrors = async (model: string, config: unknown) =>
    (await db.query("select private.training_config_errors($1, $2) as e", [model, JSON.stringify(config)])).rows[0]!.e;
  const hasAuto = (v: unknown): boolean =>
    v === "auto" || (typeof v === "object" && v !== null && Object.values(v).some(hasAuto));

  it("fills an empty configuration from each model's catalog entry and the dataset", async () => {
    expect(models.length).toBeGreaterThanOrEqual(7);
    for (const m of models) {
      const hp = m.hyperparameters;
      const r = await resolve(m.id, {}, { examples: 1000, totalTokens: 512_000, maxTokens: 1500 });
      expect(r, m.id).toEqual({
        method: "sft", epochs: 3, learning_rate: hp.learning_rate.default, batch_size: hp.batch_size.default,
        gradient_accumulation_steps: hp.gradient_accumulation_steps.default, warmup_ratio: hp.warmup_ratio.default,
        lr_scheduler: "linear", max_seq_length: hp.max_seq_length.default, seed: 42,
        lora: { rank: 16, alpha: 32, dropout: hp.lora_dropout.default, target_modules: m.default_target_modules, use_rslora: false, use_dora: false },
        quantization: "none", early_stopping_patience: null,
        // ceil(1000 x 3 / 8) = 375 steps: ~20 evaluations, ~10 checkpoints.
        eval_every_steps: Math.ceil(Math.ceil(3000 / (hp.batch_size.default as number)) / 20),
        checkpoint_every_steps: Math.ceil(Math.ceil(3000 / (hp.batch_size.default as number)) / 10),
      });
      expect(await sqlErrors(m.id, r), m.id).toEqual([]);
      expect(trainingConfigErrors(m, r), m.id).toEqual([]);
    }
  });

  it('"auto" epochs follow OpenAI\'s heuristic on the training examples, as the dataset engine computes it', async () => {
    const cases = [5, 30, 33, 34, 1000, 8333, 8334, 12_500, 30_000];
    const got = [];
    for (const n of cases) got.push((await resolve(LLAMA, { epochs: "auto" }, { examples: n, totalTokens: n * 100, maxTokens: 200 })).epochs);
    expect(got).toEqual([20, 3, 3, 3, 3, 3, 2, 2, 1]);
    expect(got).toEqual(cases.map((n) => recommendedEpochs(n)));
    const { rows } = await db.query<{ n: number; e: number | null }>(
      "select n, private.recommended_epochs(n) as e from generate_series(0, 40000, 7) as n",
    );
    for (const { n, e } of rows) expect(e, String(n)).toBe(recommendedEpochs(n));
  });

  it('"auto" max_seq_length is the smallest power of two that holds the longest example, within the model\'s bounds', async () => {
    const seq = async (model: string, maxTokens: number) =>
      (await resolve(model, { max_seq_length: "auto" }, { examples: 100, totalTokens: 100 * 50, maxTokens })).max_seq_length;
    expect(await seq(LLAMA, 1500)).toBe(2048);
    expect(await seq(LLAMA, 2048)).toBe(2048);
    expect(await seq(LLAMA, 2049)).toBe(4096);
    expect(await seq(LLAMA, 50)).toBe(128); // the model's minimum
    expect(await seq("gemma-3-12b-it", 10_000)).toBe(8192); // the catalog's maximum for Gemma 3 12B; tokens beyond are truncated
    expect(await seq(LLAMA, 10_000)).toBe(16384);
  });

  it('"auto" batch size keeps the catalog\'s tokens per micro-batch and never exceeds the training set', async () => {
    const batch = async (config: object, examples = 1000) =>
      (await resolve(LLAMA, { batch_size: "auto", ...config }, { examples, totalTokens: examples * 100, maxTokens: 500 })).batch_size;
    expect(await batch({ max_seq_length: 4096 })).toBe(8); // the catalog default (8 at 4096)
    expect(await batch({ max_seq_length: 2048 })).toBe(16);
    expect(await batch({ max_seq_length: 16384 })).toBe(2);
    expect(await batch({ max_seq_length: 2048 }, 5)).toBe(5);
  });

  it('"auto" LoRA rank grows with the training set and alpha follows at 2 x rank', async () => {
    const lora = async (examples: number, config: object = {}) =>
      (await resolve(LLAMA, { lora: { rank: "auto", ...config } }, { examples, totalTokens: examples * 100, maxTokens: 200 })).lora;
    expect(await lora(500)).toMatchObject({ rank: 8, alpha: 16 });
    expect(await lora(5000)).toMatchObject({ rank: 16, alpha: 32 });
    expect(await lora(50_000)).toMatchObject({ rank: 32, alpha: 64 });
    expect(await lora(500, { alpha: 7 })).toMatchObject({ rank: 8, alpha: 7 });
    const big = await resolve("llama-3.3-70b-instruct", { lora: { rank: 64 } }, null);
    expect(big.lora).toMatchObject({ rank: 64, alpha: 128 });
  });

  it("keeps explicit values and resolves without statistics to catalog defaults", async () => {
    const explicit = {
      epochs: 7, learning_rate: 1e-5, batch_size: 3, gradient_accumulation_steps: 4, warmup_ratio: 0.1, lr_scheduler: "cosine",
      max_seq_length: 1000, seed: 7, lora: { rank: 4, alpha: 9, dropout: 0.2, target_modules: ["v_proj"], use_rslora: true, use_dora: true },
      quantization: "none", eval_every_steps: null, checkpoint_every_steps: 50, early_stopping_patience: 2, suffix: "x-1",
    };
    expect(await resolve(LLAMA, explicit, { examples: 10, totalTokens: 1000, maxTokens: 100 })).toEqual({ method: "sft", ...explicit });
    const bare = await resolve(LLAMA, {}, null);
    expect(bare).toMatchObject({ epochs: 3, max_seq_length: 4096, lora: { rank: 16, alpha: 32 }, eval_every_steps: null, checkpoint_every_steps: null });
  });

  it("resolves 300 random valid configurations on random datasets to complete configurations both validators accept", async () => {
    const shape = fc.record({
      examples: fc.integer({ min: 1, max: 200_000 }),
      maxTokens: fc.integer({ min: 1, max: 40_000 }),
    }).map((s) => ({ ...s, totalTokens: s.examples * Math.max(1, Math.floor(s.maxTokens / 3)) }));
    const anyCase = fc.oneof(...models.map((m) => fc.record({ model: fc.constant(m), config: validTrainingConfig(m), shape })));
    await fc.assert(
      fc.asyncProperty(anyCase, async ({ model, config, shape: s }) => {
        const r = await resolve(model.id, config, s);
        expect(hasAuto(r)).toBe(false);
        expect(await sqlErrors(model.id, r)).toEqual([]);
        expect(trainingConfigErrors(model, r)).toEqual([]);
        for (const [k, v] of Object.entries(config)) {
          if (typeof v === "number" || v === null) expect(r[k], k).toBe(v);
        }
        const lora = (config.lora ?? {}) as Record<string, unknown>;
        if (lora.alpha === undefined || lora.alpha === "auto") {
          const hp = model.hyperparameters.lora_alpha;
          expect(r.lora.alpha).toBe(Math.min(Math.max(2 * (r.lora.rank as number), hp.min), hp.max));
        }
      }),
      { numRuns: 300 },
    );
  });

  it("enforces each model's own bounds at creation (a client insert through PostgREST: 400 LT103)", async () => {
    const user = await newUser(db, "bounds");
    const dataset = (await readyDataset(db, user, undefined, { upload: false })).id;
    const client = supabaseClient(testStack().ANON_KEY, user.token);
    const insert = async (model: string, config: object) => {
      const { data, error, status } = await client.from("training_jobs")
        .insert({ dataset_id: dataset, base_model_id: model, requested_config: config as never }).select("config").single();
      if (!error) return { ok: data.config };
      expect(status).toBe(400);
      return { code: error.code, message: error.message };
    };
    expect(await insert(LLAMA, { max_seq_length: 16384 })).toMatchObject({ ok: { max_seq_length: 16384 } });
    expect(await insert("gemma-3-12b-it", { max_seq_length: 16384 })).toEqual({
      code: "LT103", message: 'Max sequence length 16384 is above the maximum 8192 for "gemma-3-12b-it"',
    });
    expect(await insert(LLAMA, { lora: { rank: 128 } })).toMatchObject({ ok: { lora: { rank: 128 } } });
    expect(await insert("llama-3.3-70b-instruct", { lora: { rank: 128 } })).toEqual({
      code: "LT103", message: 'LoRA rank 128 is above the maximum 64 for "llama-3.3-70b-instruct"',
    });
    expect(await insert("llama-3.3-70b-instruct", { batch_size: 32 })).toEqual({
      code: "LT103", message: 'Batch size 32 is above the maximum 16 for "llama-3.3-70b-instruct"',
    });
  });
});
