/**
 * What `public.quote_training_job()` returns (docs/jobs.md, "Quote
 * arithmetic"), for frontends that show a quote before creating a job, and
 * the job error codes of admission and dispatch (docs/ERRORS.md, LT3xx).
 * tests/jobs/quote.test.ts parses real answers with these schemas.
 *
 * Runtime-neutral (Node, Deno, browsers): imports nothing but "zod".
 */
import { z } from "zod";

/** Admission refusals (raised by the insert) and dispatch failures (`training_jobs.error.code`). */
export const JOB_ERROR_CODES = {
  LT301: "Too many active jobs",
  LT302: "Estimated duration above MAX_TRAINING_DURATION_HOURS",
  LT303: "Monthly spend cap exceeded",
  LT304: "Double submit of a recent job",
  LT305: "A combination the GPU cluster cannot run",
  LT306: "Idempotency key reused with different parameters",
  LT307: "Suffix given twice",
  LT308: "Cannot estimate under a spend cap",
  LT310: "Dataset file missing from Storage",
  LT311: "GPU cluster refused the job",
  LT312: "GPU cluster integration error",
  LT313: "GPU cluster unavailable after every attempt",
  LT314: "Dispatch kept crashing",
} as const;
export type JobErrorCode = keyof typeof JOB_ERROR_CODES;

/** One reason a job would be refused: any code an insert can raise (LT1xx, LT0xx, LT3xx, 23503). */
export const QuoteProblemSchema = z.object({
  code: z.string(),
  message: z.string(),
  hint: z.string().optional(),
  path: z.array(z.union([z.string(), z.number()])).optional(),
});

export const TrainingEstimateSchema = z.object({
  examples: z.number().int(),
  train_examples: z.number().int(),
  validation_examples: z.number().int(),
  total_steps: z.number().int().nullable(),
  warmup_steps: z.number().int(),
  tokenizer_family: z.string(),
  max_seq_length: z.number().int(),
  longest_example_tokens: z.number().int(),
  tokens_per_epoch: z.number(),
  /** False when examples longer than max_seq_length make tokens_per_epoch an upper bound. */
  tokens_exact: z.boolean(),
  epochs: z.number().int(),
  billable_tokens: z.number(),
  throughput_tokens_per_second: z.number(),
  training_seconds: z.number(),
  overhead_seconds: z.number(),
  wall_seconds: z.number(),
  duration_hours: z.number(),
  gpu_type: z.string(),
  gpu_count: z.number().int(),
  gpu_seconds: z.number(),
  gpu_hours: z.number(),
  price_per_gpu_hour: z.number(),
  currency: z.string(),
  cost: z.number(),
  finish_at: z.string(),
});
export type TrainingEstimate = z.infer<typeof TrainingEstimateSchema>;

export const QuotaStatusSchema = z.object({
  active_jobs: z.number().int(),
  max_active_jobs: z.number().int().nullable(),
  max_training_duration_hours: z.number().nullable(),
  monthly_spend_cap: z.number().nullable(),
  spent_this_month: z.number(),
  currency: z.string(),
});

export const TrainingQuoteSchema = z.object({
  allowed: z.boolean(),
  errors: z.array(QuoteProblemSchema),
  /** The resolved configuration the job would run (null when the request is invalid). */
  config: z.record(z.string(), z.unknown()).nullable(),
  /** Null without dataset statistics or with an invalid request. */
  estimate: TrainingEstimateSchema.nullable(),
  quotas: QuotaStatusSchema,
});
export type TrainingQuote = z.infer<typeof TrainingQuoteSchema>;
