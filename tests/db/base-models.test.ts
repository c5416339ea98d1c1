/**
 * The base-model catalog: the seeded models are usable as shipped, the
 * hyperparameter document keeps the shape the config validation relies on,
 * and clients see only what they may pick.
 */
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "../helpers/db.ts";
import { actAs, attempt, MODEL, rolledBack, seedWorld } from "./lora-fixtures.ts";

const PARAMS = [
  "batch_size", "epochs", "gradient_accumulation_steps", "learning_rate", "lora_alpha", "lora_dropout", "max_seq_length", "warmup_ratio",
];

type Bound = { min: number; max: number; default: number | "auto" };
type Model = {
  id: string; family: string; enabled: boolean; context_length: number; max_lora_rank: number;
  lora_target_modules: string[]; default_target_modules: string[]; hyperparameters: Record<string, Bound>;
};

describe("base model catalog", () => {
  let db: pg.Client;
  let models: Model[];
  beforeAll(async () => {
    db = await connect();
    models = (await db.query<Model>("select * from public.base_models where id not like 'test-%' order by id")).rows;
  });
  afterAll(async () => {
    await db.end();
  });

  it("ships enabled Llama 3.x, Qwen, Mistral and Gemma models", () => {
    expect(models.filter((m) => m.enabled).length).toBeGreaterThanOrEqual(4);
    expect(new Set(models.map((m) => m.family))).toEqual(new Set(["llama", "qwen", "mistral", "gemma"]));
    expect(models.map((m) => m.id)).toContain(MODEL);
  });

  it("every seeded model has bounds and a default for every hyperparameter", () => {
    for (const m of models) {
      expect(Object.keys(m.hyperparameters).sort(), m.id).toEqual(PARAMS);
      for (const [name, b] of Object.entries(m.hyperparameters)) {
        expect(b.min, `${m.id}.${name}`).toBeLessThanOrEqual(b.max);
        if (b.default !== "auto") expect(b.default, `${m.id}.${name}`).toBeGreaterThanOrEqual(b.min);
        if (b.default !== "auto") expect(b.default, `${m.id}.${name}`).toBeLessThanOrEqual(b.max);
      }
      expect(m.hyperparameters.max_seq_length!.max, m.id).toBeLessThanOrEqual(m.context_length);
      expect(m.lora_target_modules, m.id).toEqual(expect.arrayContaining(m.default_target_modules));
    }
  });

  const broken: Array<[string, string]> = [
    ["a missing parameter", "hyperparameters - 'warmup_ratio'"],
    ["a default above max", "jsonb_set(hyperparameters, '{batch_size,default}', '1000')"],
    ["min above max", "jsonb_set(hyperparameters, '{lora_dropout,min}', '0.9')"],
    ["auto for learning_rate", "jsonb_set(hyperparameters, '{learning_rate,default}', '\"auto\"')"],
    ["a fractional integer bound", "jsonb_set(hyperparameters, '{epochs,max}', '2.5')"],
    ["max_seq_length beyond the context", "jsonb_set(hyperparameters, '{max_seq_length,max}', to_jsonb(context_length + 1))"],
    ["a string bound", "jsonb_set(hyperparameters, '{epochs,min}', '\"1\"')"],
  ];
  it.each(broken)("rejects hyperparameters with %s (23514)", async (_what, expr) => {
    const r = await rolledBack(db, async () => {
      await actAs(db, "service_role");
      return await attempt(db, `update public.base_models set hyperparameters = ${expr} where id = $1`, [MODEL]);
    });
    expect(r.code).toBe("23514");
  });

  it("rejects default target modules the model does not allow (23514)", async () => {
    const r = await rolledBack(db, async () =>
      await attempt(db, "update public.base_models set default_target_modules = array['lm_head'] where id = $1", [MODEL]),
    );
    expect(r.code).toBe("23514");
  });

  it("signed-in users see enabled models only", async () => {
    const r = await rolledBack(db, async () => {
      const w = await seedWorld(db);
      await actAs(db, "owner", w);
      const { rows } = await db.query("select id from public.base_models where id = any($1)", [[w.model.enabled, w.model.disabled]]);
      return { ids: rows.map((x) => x.id), w };
    });
    expect(r.ids).toEqual([r.w.model.enabled]);
  });
});
