/**
 * The GPU cluster API's own payloads: the training configuration, the submit
 * request, the job resource and the error body. Import them through
 * `./types.ts`.
 */
import { z } from "zod";

/** Learning-rate schedule after warmup (Hugging Face `lr_scheduler_type` names). */
export const LrSchedulerSchema = z.enum(["linear", "cosine", "constant", "cosine_with_restarts"]);
export type LrScheduler = z.infer<typeof LrSchedulerSchema>;

/**
 * How the frozen base model is held: `none` = 16-bit (bf16) LoRA; `4bit` =
 * QLoRA: base weights loaded in 4-bit NormalFloat (bitsandbytes
 * `load_in_4bit`, `bnb_4bit_quant_type: "nf4"`, double quantization, bf16
 * compute), adapters trained in bf16.
 */
export const QuantizationSchema = z.enum(["none", "4bit"]);
export type Quantization = z.infer<typeof QuantizationSchema>;

/**
 * Where evaluation data comes from: a fraction of the training file held out
 * (ceil(examples x fraction) examples, not trained on) or a separate JSON
 * Lines file behind a signed URL, fetched once when the job starts, like
 * `dataset_url`.
 */
export const ValidationSourceSchema = z.union([
  z.strictObject({ split_fraction: z.number().gt(0).max(0.5) }),
  z.strictObject({ dataset_url: z.url() }),
]);
export type ValidationSource = z.infer<typeof ValidationSourceSchema>;

/**
 * The fully resolved training configuration the cluster runs: every default
 * already filled in by our backend, so the cluster never guesses.
 * LoRA fields use PEFT's names (they end up in `adapter_config.json`).
 */
export const GpuTrainingConfigSchema = z.object({
  base_model: z.string().min(1).max(200),
  /** Parameters of the base model; sizes throughput and GPU memory. */
  parameter_count: z.int().positive(),
  r: z.int().min(1).max(1024),
  lora_alpha: z.number().positive(),
  lora_dropout: z.number().min(0).max(0.9),
  target_modules: z.array(z.string().regex(/^[A-Za-z0-9_.]+$/)).min(1).max(64),
  use_rslora: z.boolean(),
  use_dora: z.boolean(),
  epochs: z.number().positive().max(100),
  batch_size: z.int().min(1).max(4096),
  gradient_accumulation_steps: z.int().min(1).max(4096),
  learning_rate: z.number().positive().max(1),
  lr_scheduler: LrSchedulerSchema,
  /** `cosine_with_restarts` only: cosine cycles after warmup, each restarting at the peak (default 1). */
  lr_scheduler_num_cycles: z.int().min(1).max(1000).optional(),
  warmup_steps: z.int().min(0),
  max_seq_length: z.int().min(16).max(262_144),
  /** Seeds data order and initialisation; the same seed reproduces the run. */
  seed: z.int().min(0).max(4_294_967_295),
  checkpoint_every_steps: z.int().min(1),
  /** Defaults to about 20 evaluations per run. */
  eval_every_steps: z.int().min(1).optional(),
  /** Defaults to at most about 500 metric points per run. */
  logging_steps: z.int().min(1).optional(),
  /** Absent means `none`. */
  quantization: QuantizationSchema.optional(),
  /** Evaluation data; absent: eval loss on the cluster's own sample of the training data. */
  validation: ValidationSourceSchema.optional(),
  /**
   * Stop when this many evaluations in a row have not lowered the best eval
   * loss (Hugging Face `EarlyStoppingCallback` counting: 0 stops after the
   * first evaluation); absent or null: off. Requires `validation`.
   */
  early_stopping_patience: z.int().min(0).nullable().optional(),
  /** The caller's throughput estimate; the cluster derives one from `parameter_count` otherwise. */
  expected_tokens_per_second: z.number().positive().optional(),
  gpu_type: z.string().min(1).max(64).optional(),
  gpu_count: z.int().min(1).max(64).optional(),
});
export type GpuTrainingConfig = z.infer<typeof GpuTrainingConfigSchema>;

/** Idempotency keys: printable ASCII without spaces, at most 255 characters. */
export const IdempotencyKeySchema = z.string().regex(/^[\x21-\x7e]{1,255}$/, "must be 1-255 printable ASCII characters");

/**
 * A checkpoint to continue from: one the cluster saved for one of its jobs
 * (kept at least 30 days). The run loads its adapter weights, optimizer,
 * scheduler and RNG state and continues at `step + 1`.
 */
export const ResumeFromSchema = z.object({
  /** The cluster job that saved the checkpoint. */
  job_id: z.string().min(1),
  /** Its name, as in that job's `checkpoints`, e.g. `checkpoint-500`. */
  checkpoint: z.string().min(1).max(200),
  /** Its step; must match the saved checkpoint. */
  step: z.int().min(1),
});
export type ResumeFrom = z.infer<typeof ResumeFromSchema>;

/** Line formats of `DatasetSpec` (types/dataset.ts DATASET_FORMATS). */
export const LineFormatSchema = z.enum(["chat", "conversation", "sharegpt", "instruction", "prompt_completion"]);
export type LineFormat = z.infer<typeof LineFormatSchema>;

/** Chat templates of `DatasetSpec`, by tokenizer family (types/dataset.ts TOKENIZER_FAMILIES). */
export const ChatTemplateSchema = z.enum(["llama3", "qwen3", "gemma3", "mistral-v1"]);

const SkipLinesSchema = z.array(z.int().min(1)).max(100_000);

/**
 * How to read and mask the dataset, as the backend's validator checked it and
 * counted its trainable tokens: skip blank lines and `skip_lines`, parse every
 * other line in `line_format`, render with `chat_template` (null: raw text),
 * and put in the loss only assistant messages (weight 0 excluded when
 * `message_weights`), plus the prompt side when `train_on_inputs`.
 */
export const DatasetSpecSchema = z.object({
  line_format: LineFormatSchema,
  chat_template: ChatTemplateSchema.nullable(),
  train_on_inputs: z.boolean(),
  message_weights: z.boolean(),
  /** 1-based physical lines (blank lines counted) not to train on, ascending. */
  skip_lines: SkipLinesSchema,
  /** The same for the validation file (`config.validation.dataset_url`). */
  validation_skip_lines: SkipLinesSchema.optional(),
});
export type DatasetSpec = z.infer<typeof DatasetSpecSchema>;

/** `POST /v1/jobs` body. */
export const SubmitJobRequestSchema = z.object({
  /** A signed HTTPS URL the cluster GETs once at start; JSON Lines, one example per line. */
  dataset_url: z.url(),
  dataset_format: z.literal("jsonl").default("jsonl"),
  config: GpuTrainingConfigSchema,
  /** Where the cluster POSTs signed webhook events; none are sent without it. */
  callback_url: z.url().optional(),
  /** Where the cluster POSTs to obtain signed upload URLs for the final artifacts. */
  upload_urls_callback_url: z.url().optional(),
  /** Opaque string pairs echoed back on the job (e.g. our training job id). */
  metadata: z.record(z.string().max(64), z.string().max(512)).optional(),
  /** Continue from a saved checkpoint instead of starting at step 0. */
  resume_from: ResumeFromSchema.optional(),
  /** How to read and mask the data; absent: every non-blank line is an example (a JSON object). */
  dataset_spec: DatasetSpecSchema.optional(),
});
export type SubmitJobRequest = z.input<typeof SubmitJobRequestSchema>;

export const JobStatusSchema = z.enum(["queued", "running", "succeeded", "failed", "cancelled"]);
export type JobStatus = z.infer<typeof JobStatusSchema>;
/** Statuses a job never leaves. */
export const TERMINAL_JOB_STATUSES: readonly JobStatus[] = ["succeeded", "failed", "cancelled"];

export const ProgressSchema = z.object({
  step: z.int().min(0),
  /** Null until the cluster has read the dataset and sized the job. */
  total_steps: z.int().min(1).nullable(),
  epoch: z.number().min(0),
  fraction: z.number().min(0).max(1),
  /** Seconds of (simulated) time left, null when unknown. */
  eta_seconds: z.number().min(0).nullable(),
});
export type Progress = z.infer<typeof ProgressSchema>;

export const MetricPointSchema = z.object({
  step: z.int().min(1),
  epoch: z.number().min(0),
  train_loss: z.number(),
  /** Present on evaluation steps only. */
  eval_loss: z.number().nullable(),
  learning_rate: z.number().min(0),
  tokens_per_second: z.number().min(0),
  /** Training seconds elapsed at this step (cluster time). */
  elapsed_seconds: z.number().min(0),
});
export type MetricPoint = z.infer<typeof MetricPointSchema>;

export const CheckpointSchema = z.object({
  name: z.string(),
  step: z.int().min(1),
  epoch: z.number().min(0),
  train_loss: z.number(),
  eval_loss: z.number().nullable(),
  created_at: z.iso.datetime({ offset: true }),
});
export type Checkpoint = z.infer<typeof CheckpointSchema>;

/** The early-stopping state of a job whose configuration set `early_stopping_patience`. */
export const EarlyStoppingSchema = z.object({
  patience: z.int().min(0),
  /** True once training ended before `total_steps` because eval loss stopped improving. */
  stopped_early: z.boolean(),
  /** The evaluation step with the lowest eval loss so far, null before the first evaluation. */
  best_step: z.int().min(1).nullable(),
  best_eval_loss: z.number().nullable(),
  /** The saved checkpoint with the lowest eval loss, null while none is saved. */
  best_checkpoint: z.string().nullable(),
});
export type EarlyStopping = z.infer<typeof EarlyStoppingSchema>;

/** A relative artifact path: no leading slash, no `..` segments. */
export const ArtifactPathSchema = z
  .string()
  .max(256)
  .regex(/^(?!.*(^|\/)\.\.(\/|$))[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/, "must be a relative path without '..'");

export const ArtifactSchema = z.object({
  path: ArtifactPathSchema,
  content_type: z.string().min(1),
  size_bytes: z.int().min(0),
  /** Lowercase hex SHA-256 of the file. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});
export type Artifact = z.infer<typeof ArtifactSchema>;

/** Whose fault a failure is: the submitted job (user) or the cluster (system). */
export const ErrorCategorySchema = z.enum(["user", "system"]);

export const JobErrorSchema = z.object({
  /**
   * Stable code, e.g. `oom`, `dataset_unreachable`, `dataset_invalid`, `validation_dataset_unreachable`,
   * `validation_dataset_invalid`, `invalid_config`, `node_failure`.
   */
  code: z.string().min(1),
  message: z.string(),
  /** Whether submitting the same job again may succeed. */
  retryable: z.boolean(),
  category: ErrorCategorySchema,
  /** The step the job failed at, null before training started. */
  step: z.int().min(0).nullable(),
});
export type JobError = z.infer<typeof JobErrorSchema>;

/**
 * A run's GPU time so far (seconds times GPUs), at most 1e9 (about 31
 * GPU-years): a larger value is a contract error, never a bill. The database
 * bounds it further by wall time (private.usage_bound).
 */
export const MAX_GPU_SECONDS = 1e9;
export const GpuSecondsSchema = z.number().min(0).max(MAX_GPU_SECONDS);

export const JobSchema = z.object({
  id: z.string().min(1),
  idempotency_key: z.string().nullable(),
  status: JobStatusSchema,
  created_at: z.iso.datetime({ offset: true }),
  started_at: z.iso.datetime({ offset: true }).nullable(),
  finished_at: z.iso.datetime({ offset: true }).nullable(),
  config: GpuTrainingConfigSchema,
  callback_url: z.string().nullable(),
  upload_urls_callback_url: z.string().nullable(),
  metadata: z.record(z.string(), z.string()),
  /** Training examples (the dataset's, less a validation split), null until read. */
  examples: z.int().min(0).nullable(),
  /** Evaluation examples (split off or in the validation file), null until read or without validation data. */
  validation_examples: z.int().min(0).nullable().optional(),
  /** Tokens in the loss per epoch under the submit's `dataset_spec` masking rule; null without one or until read. */
  trainable_tokens: z.int().min(0).nullable().optional(),
  progress: ProgressSchema,
  /** Points with `step > metrics_since_step` (all of them by default), ascending. */
  metrics: z.array(MetricPointSchema),
  checkpoints: z.array(CheckpointSchema),
  /** Final files, uploaded before the job reports `succeeded`. */
  artifacts: z.array(ArtifactSchema),
  error: JobErrorSchema.nullable(),
  gpu_type: z.string(),
  gpu_count: z.int().min(1),
  /** GPU time consumed so far (seconds times GPUs); what the cluster bills. */
  gpu_seconds: GpuSecondsSchema,
  /** Set when the configuration has `early_stopping_patience`. */
  early_stopping: EarlyStoppingSchema.nullable().optional(),
  /** The checkpoint the job continued from, null when it started at step 0. */
  resume_from: ResumeFromSchema.nullable().optional(),
});
export type Job = z.infer<typeof JobSchema>;

/** `GET /v1/jobs?idempotency_key=` answer: zero or one job. */
export const JobListSchema = z.object({ data: z.array(JobSchema) });
export type JobList = z.infer<typeof JobListSchema>;

/** The body of every error the cluster answers with. */
export const ClusterErrorBodySchema = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    retryable: z.boolean(),
    details: z.unknown().optional(),
  }),
});
export type ClusterErrorBody = z.infer<typeof ClusterErrorBodySchema>;
