/**
 * The training-configuration contract has two implementations that must agree:
 * private.training_config_errors() (SQL, enforced by the insert trigger) and
 * trainingConfigErrors() (zod, types/training-config.ts). Random configurations
 * for every seeded base model go to both; codes, paths, messages and order must
 * be identical. Example tests pin the messages, the trigger and the RPC grants.
 */
import { randomUUID } from "node:crypto";
import fc from "fast-check";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  trainingConfigErrors, trainingConfigSchema, type BaseModelBounds, type TrainingConfigError,
} from "../../types/training-config.ts";
import { asRole, connect, newUser, sqlState } from "../helpers/db.ts";
import { testStack } from "../helpers/stack.ts";
import { supabaseClient } from "../helpers/supabase.ts";
import { trainingCase } from "./training-config.arbitraries.ts";

const MODEL = "llama-3.1-8b-instruct";
const CASES_PER_QUERY = 50;
const QUERIES = 24; // 1200 configurations per run
// Fixed unless FC_SEED is set: the coverage assertions below (every code reached) must not depend on luck in CI.
const SEED = Number(process.env.FC_SEED ?? 20261203);

async function sqlErrors(db: pg.ClientBase, cases: Array<{ modelId: string; config: unknown }>): Promise<TrainingConfigError[][]> {
  const { rows } = await db.query<{ errors: TrainingConfigError[] }>(
    `select private.training_config_errors(c.value ->> 'modelId', c.value -> 'config') as errors
       from jsonb_array_elements($1::jsonb) with ordinality as c(value, n) order by c.n`,
    [JSON.stringify(cases)],
  );
  return rows.map((r) => r.errors);
}

describe("training configuration contract", () => {
  let db: pg.Client;
  let models: BaseModelBounds[];
  let llama: BaseModelBounds;

  beforeAll(async () => {
    db = await connect();
    models = (await db.query<BaseModelBounds>("select * from public.base_models where enabled order by id")).rows;
    llama = models.find((m) => m.id === MODEL)!;
  });
  afterAll(async () => {
    await db.end();
  });

  it("SQL and zod report identical errors for 1200 random configurations across every seeded model", async () => {
    expect(models.length).toBeGreaterThan(1);
    const disabled = { ...llama, id: `disabled-${randomUUID().slice(0, 8)}`, enabled: false };
    const byId = new Map([...models, disabled].map((m) => [m.id, m]));
    const verdicts = { valid: 0, invalid: 0 };
    const codes = new Set<string>();
    await db.query("begin"); // the disabled model exists only for this test
    try {
      await db.query(
        `insert into public.base_models (id, display_name, family, hf_repo, parameter_count, context_length, tokenizer,
           lora_target_modules, default_target_modules, max_lora_rank, hyperparameters, gpu_type, gpu_count,
           price_per_gpu_hour, throughput_tokens_per_second, enabled)
         select $1, display_name, family, hf_repo, parameter_count, context_length, tokenizer, lora_target_modules,
           default_target_modules, max_lora_rank, hyperparameters, gpu_type, gpu_count, price_per_gpu_hour,
           throughput_tokens_per_second, false
         from public.base_models where id = $2`,
        [disabled.id, MODEL],
      );
      const batch = fc.array(trainingCase(models, [disabled.id, "no-such-model", ""]), {
        minLength: CASES_PER_QUERY, maxLength: CASES_PER_QUERY,
      });
      await fc.assert(
        fc.asyncProperty(batch, async (cases) => {
          // What the server sees: the JSON text of the configuration.
          const sent = cases.map((c) => ({ modelId: c.modelId, config: JSON.parse(JSON.stringify(c.config)) as unknown }));
          const fromSql = await sqlErrors(db, sent);
          sent.forEach((c, i) => {
            const fromZod = trainingConfigErrors(byId.get(c.modelId) ?? null, c.config, { baseModelId: c.modelId });
            if (JSON.stringify(fromZod) !== JSON.stringify(fromSql[i])) {
              throw new Error(`SQL and zod disagree for ${JSON.stringify(c)}\nSQL: ${JSON.stringify(fromSql[i])}\nzod: ${JSON.stringify(fromZod)}`);
            }
            verdicts[fromZod.length === 0 ? "valid" : "invalid"]++;
            for (const e of fromZod) codes.add(e.code);
          });
        }),
        { numRuns: QUERIES, seed: SEED },
      );
    } finally {
      await db.query("rollback");
    }
    // The generators reached both verdicts and every code, so agreement means something.
    expect(verdicts.valid + verdicts.invalid).toBeGreaterThanOrEqual(QUERIES * CASES_PER_QUERY);
    expect(verdicts.valid).toBeGreaterThan(100);
    expect(verdicts.invalid).toBeGreaterThan(100);
    expect([...codes].sort()).toEqual(["LT101", "LT102", "LT103", "LT104", "LT105", "LT106", "LT107", "LT108", "LT109"]);
  });

  it("a complete valid configuration passes both validators and parses to the typed input", async () => {
    const config = {
      method: "sft", epochs: 3, learning_rate: 1e-4, batch_size: "auto", gradient_accumulation_steps: 4,
      warmup_ratio: 0.05, lr_scheduler: "cosine", max_seq_length: 2048, seed: 42,
      lora: { rank: 16, alpha: 32, dropout: 0.1, target_modules: ["q_proj", "v_proj"], use_rslora: false, use_dora: true },
      quantization: "4bit", validation: { split_fraction: 0.1 }, eval_every_steps: 100, checkpoint_every_steps: null,
      early_stopping_patience: 3, suffix: "support-bot-v2",
    };
    expect(await sqlErrors(db, [{ modelId: MODEL, config }])).toEqual([[]]);
    expect(trainingConfigErrors(llama, config)).toEqual([]);
    expect(trainingConfigSchema(llama).parse(config)).toEqual(config);
    // 2.0 is the integer 2 on both sides.
    const raw = '{"epochs": 2.0, "lora": {"rank": 8.0}}';
    expect((await db.query("select private.training_config_errors($1, $2::jsonb) as e", [MODEL, raw])).rows[0].e).toEqual([]);
    expect(trainingConfigErrors(llama, JSON.parse(raw))).toEqual([]);
  });

  it("every error code carries its documented path and message on both sides", async () => {
    const m = `"${MODEL}"`;
    const examples: Array<[unknown, TrainingConfigError[]]> = [
      [{ lerning_rate: 1e-4 }, [{ code: "LT101", path: ["lerning_rate"], message: 'Unknown key "lerning_rate"' }]],
      [[], [{ code: "LT102", path: [], message: "Configuration must be a JSON object, got an array" }]],
      [{ epochs: 2.5 }, [{ code: "LT102", path: ["epochs"], message: 'Epochs must be an integer or "auto", got 2.5' }]],
      [{ gradient_accumulation_steps: "auto" }, [{ code: "LT102", path: ["gradient_accumulation_steps"], message: 'Gradient accumulation steps must be an integer, got "auto"' }]],
      [{ learning_rate: 0.5 }, [{ code: "LT103", path: ["learning_rate"], message: `Learning rate 0.5 is above the maximum 0.001 for ${m}` }]],
      [{ learning_rate: 1e-7 }, [{ code: "LT103", path: ["learning_rate"], message: `Learning rate 1e-7 is below the minimum 0.000001 for ${m}` }]],
      [{ lora: { rank: 256 } }, [{ code: "LT103", path: ["lora", "rank"], message: `LoRA rank 256 is above the maximum 128 for ${m}` }]],
      [{ validation: { split_fraction: 0 } }, [{ code: "LT103", path: ["validation", "split_fraction"], message: "Validation split fraction 0 must be greater than 0" }]],
      [{ seed: -1 }, [{ code: "LT103", path: ["seed"], message: "Seed -1 is below the minimum 0" }]],
      [{ lora: { target_modules: ["q_proj", "lm_head"] } }, [{ code: "LT104", path: ["lora", "target_modules", 1], message: `Target module "lm_head" is not allowed for ${m}; allowed: "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"` }]],
      [{ method: "dpo" }, [{ code: "LT105", path: ["method"], message: 'Method "dpo" is not supported yet; use "sft"' }]],
      [{ lr_scheduler: "step" }, [{ code: "LT107", path: ["lr_scheduler"], message: 'LR scheduler must be one of "linear", "cosine", "constant", "cosine_with_restarts", got "step"' }]],
      [{ lora: { target_modules: [] } }, [{ code: "LT108", path: ["lora", "target_modules"], message: 'Target modules must list at least one module, or be "auto"' }]],
      [{ lora: { target_modules: ["q_proj", "q_proj"] } }, [{ code: "LT108", path: ["lora", "target_modules", 1], message: 'Target module "q_proj" is listed more than once' }]],
      [{ suffix: "My Model" }, [{ code: "LT109", path: ["suffix"], message: 'Suffix must be 1 to 40 characters of a-z, 0-9 and "-", got "My Model"' }]],
    ];
    const fromSql = await sqlErrors(db, examples.map(([config]) => ({ modelId: MODEL, config })));
    examples.forEach(([config, expected], i) => {
      expect(fromSql[i], JSON.stringify(config)).toEqual(expected);
      expect(trainingConfigErrors(llama, config), JSON.stringify(config)).toEqual(expected);
    });
    const unknown = { code: "LT106", path: [], message: 'Base model "gpt-5" does not exist or is not enabled' };
    expect(await sqlErrors(db, [{ modelId: "gpt-5", config: {} }])).toEqual([[unknown]]);
    expect(trainingConfigErrors(null, {}, { baseModelId: "gpt-5" })).toEqual([unknown]);
  });

  it("numbers beyond double range read as Infinity on both sides and are rejected", async () => {
    const raw = '{"learning_rate": 1e400, "warmup_ratio": 1e-400}';
    const expected = [{ code: "LT102", path: ["learning_rate"], message: 'Learning rate must be a number or "auto", got Infinity' }];
    expect((await db.query("select private.training_config_errors($1, $2::jsonb) as e", [MODEL, raw])).rows[0].e).toEqual(expected);
    expect(trainingConfigErrors(llama, JSON.parse(raw))).toEqual(expected);
  });

  it("numbers in messages print exactly as JavaScript's String(n) prints them", async () => {
    const number = fc.oneof(
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.integer(),
      fc.double({ min: -1e-300, max: 1e-300, noNaN: true }),
      fc.integer({ min: 1, max: 17 }).chain((p) => fc.double({ min: 1e-9, max: 1e25, noNaN: true }).map((x) => Number(x.toPrecision(p)))),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(number, { minLength: 100, maxLength: 100 }), async (xs) => {
        const { rows } = await db.query<{ t: string }>(
          `select private.training_config_number_text(u.x) as t
             from unnest($1::double precision[]) with ordinality as u(x, n) order by u.n`,
          [xs.map(String)],
        );
        expect(rows.map((r) => r.t)).toEqual(xs.map(String));
      }),
      { numRuns: 20 },
    );
  });

  it("the insert trigger rejects an invalid configuration with its LT1xx SQLSTATE and inserts nothing", async () => {
    const user = await newUser(db);
    const dataset = await readyDataset(db, user);
    const insert = (config: unknown) => (c: pg.ClientBase) =>
      c.query("insert into public.training_jobs (dataset_id, base_model_id, requested_config) values ($1, $2, $3)", [
        dataset, MODEL, JSON.stringify(config),
      ]);
    const bad = { learning_rate: 0.5, lora: { rank: 0 } };
    const err = await asRole(db, { role: "authenticated", user }, insert(bad), { commit: true }).then(
      () => null,
      (e: unknown) => e as { code: string; message: string; detail: string; hint: string },
    );
    expect(err).toMatchObject({ code: "LT103", message: `Learning rate 0.5 is above the maximum 0.001 for "${MODEL}"` });
    expect(JSON.parse(err!.detail)).toEqual(trainingConfigErrors(llama, bad));
    expect(err!.hint).toContain("public.validate_training_config");
    const jobs = await db.query("select 1 from public.training_jobs where user_id = $1", [user.id]);
    expect(jobs.rowCount).toBe(0);
    // The same insert with a valid configuration goes through, so the configuration alone was the reason.
    const ok = await asRole(db, { role: "authenticated", user }, insert({ learning_rate: 1e-4 }));
    expect(ok.rowCount).toBe(1);
  });

  it("validate_training_config() is callable by authenticated users, not by anon, and the helper stays private", async () => {
    const user = await newUser(db);
    const asUser = supabaseClient(testStack().ANON_KEY, user.token);
    const invalid = await asUser.rpc("validate_training_config", { base_model_id: MODEL, config: { epochs: 0 } });
    expect(invalid.error).toBeNull();
    expect(invalid.data).toEqual([{ code: "LT103", path: ["epochs"], message: `Epochs 0 is below the minimum 1 for "${MODEL}"` }]);
    const valid = await asUser.rpc("validate_training_config", { base_model_id: MODEL, config: {} });
    expect(valid).toMatchObject({ error: null, data: [] });
    const anon = await supabaseClient(testStack().ANON_KEY).rpc("validate_training_config", { base_model_id: MODEL, config: {} });
    expect({ status: anon.status, code: anon.error?.code }).toEqual({ status: 401, code: "42501" });
    // The SQL helper behind it is not granted to clients at all (schema private is not exposed either).
    expect(await sqlState(asRole(db, { role: "authenticated", user }, (c) => c.query("select private.training_config_errors($1, '{}')", [MODEL])))).toBe("42501");
  });
});

/** A dataset of `user` in status ready, committed (moved along its state machine as the server would). */
async function readyDataset(db: pg.ClientBase, user: { id: string; email?: string }): Promise<string> {
  const { rows } = await asRole(
    db, { role: "authenticated", user },
    (c) => c.query<{ id: string }>("insert into public.datasets (name, file_name) values ('contract test', 'train.jsonl') returning id"),
    { commit: true },
  );
  const id = rows[0]!.id;
  await db.query("update public.datasets set status = 'validating' where id = $1", [id]);
  await db.query("update public.datasets set status = 'ready' where id = $1", [id]);
  return id;
}
