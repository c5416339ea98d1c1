/**
 * fast-check generators of training configurations for one base model: valid
 * ones, ones with a few bad fields (numbers just outside the bounds, wrong
 * types, "auto" where it is not allowed, unknown keys, bad target modules),
 * and plain garbage. Strings never contain U+0000 or lone surrogates, which
 * Postgres's jsonb cannot hold (such input never reaches the validator).
 */
import fc from "fast-check";
import { LR_SCHEDULERS, QUANTIZATIONS, type BaseModelBounds } from "../../types/training-config.ts";

type Arb = fc.Arbitrary<unknown>;

const SPECIAL_CHARS = ["é", "日", "😀", "\uff21", "\n", '"', "\\", "\u0001", "\u007f", "\u2028", " "];
const char = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(..."abcdefghijklmnopqrstuvwxyz0123456789-_ABZ.".split("")) },
  { weight: 1, arbitrary: fc.constantFrom(...SPECIAL_CHARS) },
);
const text = fc.string({ unit: char, maxLength: 12 });
/** Any JSON value, shallow. */
export const garbage: Arb = fc.jsonValue({ maxDepth: 2, stringUnit: char });

const view = new DataView(new ArrayBuffer(8));
/** The next double after x in direction dir (x + 1 ulp or x - 1 ulp). */
function nextDouble(x: number, dir: 1 | -1): number {
  if (x === 0) return dir * Number.MIN_VALUE;
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  view.setBigUint64(0, (x > 0) === (dir > 0) ? bits + 1n : bits - 1n);
  return view.getFloat64(0);
}

/** Numbers at, just inside and just outside a range, plus far-off and fractional ones. */
function near(min: number, max: number): fc.Arbitrary<number> {
  const edges = [min, max].flatMap((b) => [b, nextDouble(b, 1), nextDouble(b, -1), b + 1, b - 1, b + 0.5, b * 2, -b]);
  const lo = Math.max(-(2 ** 31), Math.floor(min) - 3);
  const hi = Math.min(2 ** 31 - 1, Math.ceil(max) + 3);
  return fc.oneof(
    fc.constantFrom(...edges, 0, 1e300, -1e300, 1e-320, 2 ** 53 + 2, 0.1 + 0.2),
    fc.integer({ min: lo, max: hi }),
    fc.double({ min: Math.min(min, 0), max: max * 2 + 1, noNaN: true }),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
  );
}

/** A field: mostly `valid`, sometimes `invalid` (chance 1 in `1 + validWeight`), never when validWeight is null. */
function mix(valid: Arb, invalid: Arb, validWeight: number | null): Arb {
  if (validWeight === null) return valid;
  return fc.oneof({ weight: validWeight, arbitrary: valid }, { weight: 1, arbitrary: invalid });
}

const wrong = (...extra: unknown[]) => fc.oneof(garbage, fc.constantFrom("auto", null, true, "1", [], {}, ...extra));

function numberField(b: { min: number; max: number }, o: { integer?: boolean; auto?: boolean; nullable?: boolean }, w: number | null): Arb {
  const inRange = o.integer
    ? fc.integer({ min: Math.max(Math.ceil(b.min), -(2 ** 31)), max: Math.min(Math.floor(b.max), 2 ** 31 - 1) })
    : fc.double({ min: b.min, max: b.max, noNaN: true });
  const valid = fc.oneof(
    { weight: 4, arbitrary: inRange },
    { weight: 1, arbitrary: o.auto ? fc.constant("auto") : o.nullable ? fc.constant(null) : inRange },
  );
  return mix(valid, fc.oneof(near(b.min, b.max), wrong(b.min + 0.25)), w);
}

function choiceField(allowed: readonly string[], w: number | null, extra: string[] = []): Arb {
  const invalid = fc.oneof(fc.constantFrom(...extra, ...allowed.map((a) => a.toUpperCase()), `${allowed[0]} `, ""), text, wrong());
  return mix(fc.constantFrom(...allowed), invalid, w);
}

function targetModules(m: BaseModelBounds, w: number | null): Arb {
  const allowed = fc.constantFrom(...m.lora_target_modules);
  const valid = fc.oneof(fc.constant("auto"), fc.uniqueArray(allowed, { minLength: 1, maxLength: m.lora_target_modules.length }));
  const item = fc.oneof({ weight: 5, arbitrary: allowed }, fc.constantFrom("Q_PROJ", "lm_head", "q_proj "), text, garbage);
  return mix(valid, fc.oneof(fc.array(item, { maxLength: 6 }), fc.constant([]), wrong()), w);
}

/** Extra keys: near-misses of real ones and random text. */
const unknownKey = fc.oneof(
  fc.constantFrom("learningRate", "Epochs", "lora_rank", "r", "target_modules", "__proto__", "constructor", "method "),
  text,
);

function withUnknownKeys(obj: fc.Arbitrary<Record<string, unknown>>, known: readonly string[], w: number | null): Arb {
  if (w === null) return obj;
  const extra = fc.dictionary(unknownKey.filter((k) => !known.includes(k)), garbage, { maxKeys: 2 });
  return fc.tuple(obj, fc.oneof({ weight: w, arbitrary: fc.constant({}) }, { weight: 1, arbitrary: extra }))
    .map(([o, e]) => JSON.parse(JSON.stringify({ ...o, ...e })) as Record<string, unknown>);
}

/** One configuration for `m`; validWeight null gives only valid values. */
function config(m: BaseModelBounds, w: number | null): Arb {
  const hp = m.hyperparameters;
  const lora = fc.record(
    {
      rank: numberField({ min: 1, max: m.max_lora_rank }, { integer: true, auto: true }, w),
      alpha: numberField(hp.lora_alpha, { auto: true }, w),
      dropout: numberField(hp.lora_dropout, {}, w),
      target_modules: targetModules(m, w),
      use_rslora: mix(fc.boolean(), wrong(0, "true"), w),
      use_dora: mix(fc.boolean(), wrong(1, "false"), w),
    },
    { requiredKeys: [] },
  );
  const validation = fc.record({ split_fraction: numberField({ min: Number.MIN_VALUE, max: 0.5 }, {}, w) }, { requiredKeys: [] });
  const suffixValid = fc.stringMatching(/^[a-z0-9-]{1,40}$/);
  const suffixInvalid = fc.oneof(fc.constantFrom("", "a".repeat(41), "My-Model", "a_b", "ok\n"), text, wrong());
  const steps = (min: number) => numberField({ min, max: 100_000 }, { integer: true, nullable: true }, w);
  const fields = {
    method: choiceField(["sft"], w, ["dpo", "DPO", "ppo"]),
    epochs: numberField(hp.epochs, { integer: true, auto: true }, w),
    learning_rate: numberField(hp.learning_rate, { auto: true }, w),
    batch_size: numberField(hp.batch_size, { integer: true, auto: true }, w),
    gradient_accumulation_steps: numberField(hp.gradient_accumulation_steps, { integer: true }, w),
    warmup_ratio: numberField(hp.warmup_ratio, {}, w),
    lr_scheduler: choiceField(LR_SCHEDULERS, w, ["cosine-with-restarts", "step"]),
    max_seq_length: numberField(hp.max_seq_length, { integer: true, auto: true }, w),
    seed: numberField({ min: 0, max: 2 ** 31 - 1 }, { integer: true }, w),
    lora: mix(withUnknownKeys(lora, ["rank", "alpha", "dropout", "target_modules", "use_rslora", "use_dora"], w), wrong(), w),
    quantization: choiceField(QUANTIZATIONS, w, ["8bit", "4-bit"]),
    validation: mix(withUnknownKeys(validation, ["split_fraction"], w), wrong(), w),
    eval_every_steps: steps(1),
    checkpoint_every_steps: steps(1),
    early_stopping_patience: steps(0),
    suffix: mix(suffixValid, suffixInvalid, w),
  };
  return withUnknownKeys(fc.record(fields, { requiredKeys: [] }), Object.keys(fields), w);
}

/** A (base model id, configuration) pair: valid, lightly broken, heavily broken, or not an object at all. */
export function trainingCase(models: BaseModelBounds[], unknownModelIds: string[]): fc.Arbitrary<{ modelId: string; config: unknown }> {
  const perModel = models.map((m) =>
    fc.oneof(
      { weight: 3, arbitrary: config(m, null) },
      { weight: 4, arbitrary: config(m, 12) },
      { weight: 2, arbitrary: config(m, 2) },
      { weight: 1, arbitrary: garbage },
    ).map((config) => ({ modelId: m.id, config })),
  );
  const unknown = fc.record({ modelId: fc.constantFrom(...unknownModelIds), config: fc.oneof(garbage, config(models[0]!, 4)) });
  return fc.oneof({ weight: 20, arbitrary: fc.oneof(...perModel) }, { weight: 1, arbitrary: unknown });
}

/** A valid configuration for `m` (every field optional, every value in bounds). */
export function validTrainingConfig(m: BaseModelBounds): fc.Arbitrary<Record<string, unknown>> {
  return config(m, null) as fc.Arbitrary<Record<string, unknown>>;
}
