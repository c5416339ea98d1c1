/**
 * The training configuration a client requests for a job
 * (`training_jobs.requested_config`), checked against its base model.
 *
 * Twin of `private.training_config_errors()` in
 * supabase/migrations/20261126110000_training_config_validation.sql: the same
 * error codes (LT101–LT109, docs/ERRORS.md), paths and messages, in the same
 * order. tests/db/training-config.property.test.ts proves that they agree, so
 * change both sides together.
 *
 * Runtime-neutral (Node, Deno, browsers): imports nothing but "zod".
 *
 * Number rules both sides share: a JSON number is read as JavaScript reads it
 * (an IEEE double, so 2.0 and 1e2 are the integers 2 and 100, 1e400 is
 * Infinity and therefore not a valid number); bounds are inclusive.
 */
import { z } from "zod";

/** Stable error codes; see docs/ERRORS.md. */
export type TrainingConfigErrorCode =
  | "LT101" // unknown key
  | "LT102" // wrong type
  | "LT103" // out of bounds
  | "LT104" // target module not allowed for the model
  | "LT105" // method not supported yet
  | "LT106" // unknown or disabled base model
  | "LT107" // not one of the allowed values
  | "LT108" // target_modules empty or with duplicates
  | "LT109"; // suffix format

/** One problem; `path` locates the value inside the configuration, as zod issue paths do. */
export type TrainingConfigError = { code: TrainingConfigErrorCode; path: Array<string | number>; message: string };

/** An inclusive range from `base_models.hyperparameters`. */
export type HyperparameterBound = { min: number; max: number; default?: unknown };

/** The columns of `public.base_models` that validation needs. */
export type BaseModelBounds = {
  id: string;
  enabled?: boolean;
  max_lora_rank: number;
  lora_target_modules: readonly string[];
  hyperparameters: Record<
    | "epochs" | "learning_rate" | "batch_size" | "gradient_accumulation_steps" | "warmup_ratio"
    | "max_seq_length" | "lora_alpha" | "lora_dropout",
    HyperparameterBound
  >;
};

/** What a client may send (every key optional; "auto" lets the server choose). */
export type TrainingConfigInput = {
  method?: "sft";
  epochs?: number | "auto";
  learning_rate?: number | "auto";
  batch_size?: number | "auto";
  gradient_accumulation_steps?: number;
  warmup_ratio?: number;
  lr_scheduler?: (typeof LR_SCHEDULERS)[number];
  max_seq_length?: number | "auto";
  seed?: number;
  lora?: {
    rank?: number | "auto";
    alpha?: number | "auto";
    dropout?: number;
    target_modules?: string[] | "auto";
    use_rslora?: boolean;
    use_dora?: boolean;
  };
  quantization?: (typeof QUANTIZATIONS)[number];
  validation?: { split_fraction?: number };
  eval_every_steps?: number | null;
  checkpoint_every_steps?: number | null;
  early_stopping_patience?: number | null;
  suffix?: string;
};

export const LR_SCHEDULERS = ["linear", "cosine", "constant", "cosine_with_restarts"] as const;
export const QUANTIZATIONS = ["none", "4bit"] as const;
/** Keys in the order errors are reported (after unknown keys, which come first). */
export const CONFIG_KEYS = [
  "method", "epochs", "learning_rate", "batch_size", "gradient_accumulation_steps", "warmup_ratio",
  "lr_scheduler", "max_seq_length", "seed", "lora", "quantization", "validation", "eval_every_steps",
  "checkpoint_every_steps", "early_stopping_patience", "suffix",
] as const;
export const LORA_KEYS = ["rank", "alpha", "dropout", "target_modules", "use_rslora", "use_dora"] as const;
export const VALIDATION_KEYS = ["split_fraction"] as const;
const SEED_MAX = 2147483647;
const SUFFIX = /^[a-z0-9-]{1,40}$/;

/** A value as messages quote it (numbers as JavaScript prints them, strings JSON-quoted). */
export function describeValue(v: unknown): string {
  if (typeof v === "number") return String(v);
  if (typeof v === "string" || typeof v === "boolean" || v === null) return JSON.stringify(v);
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object") return "an object";
  return String(typeof v);
}

const q = (s: string) => JSON.stringify(s);
const list = (xs: readonly string[]) => xs.map(q).join(", ");
type Problem = { code: TrainingConfigErrorCode; message: string; path?: Array<string | number> };

type NumberRule = {
  label: string;
  integer?: boolean;
  auto?: boolean;
  nullable?: boolean;
  min?: number | null;
  max?: number | null;
  minExclusive?: boolean;
  /** Set when the bounds come from the model, so the message names it. */
  modelId?: string;
};

function checkNumber(v: unknown, r: NumberRule): Problem | null {
  if ((r.auto && v === "auto") || (r.nullable && v === null)) return null;
  if (typeof v !== "number" || !Number.isFinite(v) || (r.integer && !Number.isInteger(v))) {
    const kind = `${r.integer ? "an integer" : "a number"}${r.auto ? ' or "auto"' : ""}${r.nullable ? " or null" : ""}`;
    return { code: "LT102", message: `${r.label} must be ${kind}, got ${describeValue(v)}` };
  }
  const forModel = r.modelId === undefined ? "" : ` for ${q(r.modelId)}`;
  if (r.min != null && (v < r.min || (r.minExclusive && v === r.min))) {
    return {
      code: "LT103",
      message: r.minExclusive
        ? `${r.label} ${v} must be greater than ${r.min}${forModel}`
        : `${r.label} ${v} is below the minimum ${r.min}${forModel}`,
    };
  }
  if (r.max != null && v > r.max) {
    return { code: "LT103", message: `${r.label} ${v} is above the maximum ${r.max}${forModel}` };
  }
  return null;
}

function checkChoice(v: unknown, label: string, allowed: readonly string[], notYet: readonly string[] = []): Problem | null {
  if (typeof v === "string" && allowed.includes(v)) return null;
  if (typeof v === "string" && notYet.includes(v)) {
    return { code: "LT105", message: `${label} ${q(v)} is not supported yet; use ${allowed.map(q).join(" or ")}` };
  }
  return { code: typeof v === "string" ? "LT107" : "LT102", message: `${label} must be one of ${list(allowed)}, got ${describeValue(v)}` };
}

function checkBoolean(v: unknown, label: string): Problem | null {
  return typeof v === "boolean" ? null : { code: "LT102", message: `${label} must be true or false, got ${describeValue(v)}` };
}

function checkTargetModules(v: unknown, model: BaseModelBounds): Problem[] {
  if (v === "auto") return [];
  if (!Array.isArray(v)) {
    return [{ code: "LT102", message: `Target modules must be a list of module names or "auto", got ${describeValue(v)}` }];
  }
  if (v.length === 0) return [{ code: "LT108", message: 'Target modules must list at least one module, or be "auto"' }];
  const allowed = model.lora_target_modules ?? [];
  const seen = new Set<string>();
  const out: Problem[] = [];
  v.forEach((m: unknown, i) => {
    if (typeof m !== "string") {
      out.push({ code: "LT102", path: [i], message: `Target module must be a string, got ${describeValue(m)}` });
    } else if (!allowed.includes(m)) {
      out.push({ code: "LT104", path: [i], message: `Target module ${q(m)} is not allowed for ${q(model.id)}; allowed: ${list(allowed)}` });
    } else if (seen.has(m)) {
      out.push({ code: "LT108", path: [i], message: `Target module ${q(m)} is listed more than once` });
    }
    if (typeof m === "string") seen.add(m);
  });
  return out;
}

function checkSuffix(v: unknown): Problem | null {
  if (typeof v !== "string") return { code: "LT102", message: `Suffix must be a string, got ${describeValue(v)}` };
  if (!SUFFIX.test(v)) return { code: "LT109", message: `Suffix must be 1 to 40 characters of a-z, 0-9 and "-", got ${q(v)}` };
  return null;
}

/** A zod field whose problems carry their LT code in `params.code`. */
function field<T>(check: (v: unknown) => Problem | Problem[] | null) {
  return z
    .custom<T>()
    .superRefine((v, ctx) => {
      const found = check(v);
      for (const p of found === null ? [] : Array.isArray(found) ? found : [found]) {
        ctx.addIssue({ code: "custom", path: p.path ?? [], message: p.message, params: { code: p.code } });
      }
    })
    .optional();
}

/** A strict object: non-objects and unknown keys get our messages. */
function object<S extends z.core.$ZodLooseShape>(label: string, shape: S) {
  return z.strictObject(shape, {
    error: (iss) =>
      iss.code === "unrecognized_keys"
        ? `Unknown ${iss.keys.length === 1 ? "key" : "keys"} ${iss.keys.map(q).join(", ")}`
        : `${label} must be ${label === "Configuration" ? "a JSON object" : "an object"}, got ${describeValue(iss.input)}`,
  });
}

function unknownModel(baseModelId?: string): TrainingConfigError {
  const name = baseModelId === undefined ? "" : `${q(baseModelId)} `;
  return { code: "LT106", path: [], message: `Base model ${name}does not exist or is not enabled` };
}

const schemas = new WeakMap<BaseModelBounds, z.ZodType<TrainingConfigInput>>();

/**
 * The zod schema of a configuration for `model`; issues from our checks carry
 * their LT code in `params.code` (use {@link trainingConfigErrors} for the
 * flat list the database returns). A disabled model accepts nothing.
 * Building a schema costs far more than running it, so it is cached per model
 * object: treat `model` as immutable.
 */
export function trainingConfigSchema(model: BaseModelBounds): z.ZodType<TrainingConfigInput> {
  const cached = schemas.get(model);
  if (cached) return cached;
  const schema = buildSchema(model);
  schemas.set(model, schema);
  return schema;
}

function buildSchema(model: BaseModelBounds): z.ZodType<TrainingConfigInput> {
  if (model.enabled === false) {
    const e = unknownModel(model.id);
    return z.custom<TrainingConfigInput>().superRefine((_v, ctx) => {
      ctx.addIssue({ code: "custom", message: e.message, params: { code: e.code } });
    });
  }
  const hp = model.hyperparameters;
  const bounded = (label: string, name: keyof BaseModelBounds["hyperparameters"], rule: Partial<NumberRule> = {}) =>
    field<number>((v) => checkNumber(v, { label, min: hp[name]?.min, max: hp[name]?.max, modelId: model.id, ...rule }));
  const fixed = (rule: NumberRule) => field<number>((v) => checkNumber(v, rule));
  return object("Configuration", {
    method: field<"sft">((v) => checkChoice(v, "Method", ["sft"], ["dpo"])),
    epochs: bounded("Epochs", "epochs", { integer: true, auto: true }),
    learning_rate: bounded("Learning rate", "learning_rate", { auto: true }),
    batch_size: bounded("Batch size", "batch_size", { integer: true, auto: true }),
    gradient_accumulation_steps: bounded("Gradient accumulation steps", "gradient_accumulation_steps", { integer: true }),
    warmup_ratio: bounded("Warmup ratio", "warmup_ratio"),
    lr_scheduler: field<(typeof LR_SCHEDULERS)[number]>((v) => checkChoice(v, "LR scheduler", LR_SCHEDULERS)),
    max_seq_length: bounded("Max sequence length", "max_seq_length", { integer: true, auto: true }),
    seed: fixed({ label: "Seed", integer: true, min: 0, max: SEED_MAX }),
    lora: object("LoRA settings", {
      rank: fixed({ label: "LoRA rank", integer: true, auto: true, min: 1, max: model.max_lora_rank, modelId: model.id }),
      alpha: bounded("LoRA alpha", "lora_alpha", { auto: true }),
      dropout: bounded("LoRA dropout", "lora_dropout"),
      target_modules: field<string[] | "auto">((v) => checkTargetModules(v, model)),
      use_rslora: field<boolean>((v) => checkBoolean(v, "Use rsLoRA")),
      use_dora: field<boolean>((v) => checkBoolean(v, "Use DoRA")),
    }).optional(),
    quantization: field<(typeof QUANTIZATIONS)[number]>((v) => checkChoice(v, "Quantization", QUANTIZATIONS)),
    validation: object("Validation settings", {
      split_fraction: fixed({ label: "Validation split fraction", min: 0, minExclusive: true, max: 0.5 }),
    }).optional(),
    eval_every_steps: fixed({ label: "Eval every steps", integer: true, nullable: true, min: 1 }),
    checkpoint_every_steps: fixed({ label: "Checkpoint every steps", integer: true, nullable: true, min: 1 }),
    early_stopping_patience: fixed({ label: "Early stopping patience", integer: true, nullable: true, min: 0 }),
    suffix: field<string>(checkSuffix),
  }) as unknown as z.ZodType<TrainingConfigInput>;
}

/** Compare strings by code point, as Postgres's "C" collation orders UTF-8. */
function byCodePoint(a: string, b: string): number {
  const x = Array.from(a, (c) => c.codePointAt(0)!);
  const y = Array.from(b, (c) => c.codePointAt(0)!);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return x.length - y.length;
}

/** Report order: at each level unknown keys first (by code point), then known keys in schema order, items by index. */
function comparePaths(a: Array<string | number>, b: Array<string | number>): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const [x, y] = [a[i]!, b[i]!];
    if (x === y) continue;
    if (typeof x === "number" && typeof y === "number") return x - y;
    const order: readonly string[] = i === 0 ? CONFIG_KEYS : a[0] === "lora" ? LORA_KEYS : VALIDATION_KEYS;
    const [ix, iy] = [order.indexOf(String(x)), order.indexOf(String(y))];
    if (ix >= 0 && iy >= 0) return ix - iy;
    if (ix >= 0 || iy >= 0) return ix >= 0 ? 1 : -1;
    return byCodePoint(String(x), String(y));
  }
  return a.length - b.length;
}

/**
 * Every problem with `config` for `model` (a `base_models` row; `null` when it
 * does not exist), as `private.training_config_errors()` reports them: empty
 * when valid. `options.baseModelId` names a missing model in the message.
 */
export function trainingConfigErrors(
  model: BaseModelBounds | null,
  config: unknown,
  options: { baseModelId?: string } = {},
): TrainingConfigError[] {
  if (model === null || model.enabled === false) return [unknownModel(model?.id ?? options.baseModelId)];
  const result = trainingConfigSchema(model).safeParse(config);
  if (result.success) return [];
  const errors = result.error.issues.flatMap((iss): TrainingConfigError[] => {
    const path = iss.path.map((p) => (typeof p === "number" ? p : String(p)));
    if (iss.code === "unrecognized_keys") {
      return iss.keys.map((k) => ({ code: "LT101", path: [...path, k], message: `Unknown key ${q(k)}` }));
    }
    const code = iss.code === "custom" ? (iss.params?.code as TrainingConfigErrorCode | undefined) : "LT102";
    return [{ code: code ?? "LT102", path, message: iss.message }];
  });
  return errors.sort((a, b) => comparePaths(a.path, b.path));
}
