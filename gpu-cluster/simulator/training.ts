/**
 * The simulator's model of a LoRA training run: how many steps, how fast,
 * and what the loss and learning-rate curves look like. Pure functions of
 * the configuration, the dataset's size and the seed, so a run is
 * reproducible point for point whatever the simulator's time scale.
 *
 * - steps = ceil(training examples * epochs / (batch_size * gradient_accumulation_steps)),
 *   training examples = the dataset's less a validation split
 * - throughput: the caller's `expected_tokens_per_second`, else GPU peak
 *   FLOP/s * 40 % utilisation / (4 * parameters) per GPU (LoRA: forward
 *   plus activation gradients, no weight gradients for the frozen base),
 *   times 0.8 for 4-bit QLoRA (dequantising the base weights costs time)
 * - memory: base weights (bf16 2 bytes per parameter, NF4 about 0.52) plus
 *   20 %, sharded over the GPUs; more than a GPU holds is an out-of-memory
 * - train loss(t) = floor + (initial - floor) * exp(-k t) + noise, t = step / steps
 * - eval loss a little above train, with an overfitting uptick late in
 *   multi-epoch runs; early stopping watches it
 * - learning rate: linear warmup, then linear / cosine decay, constant, or
 *   cosine with hard restarts
 */
import type { GpuTrainingConfig, MetricPoint } from "../../functions/_shared/gpu/types.ts";
import { hashGaussian, hashUniform, mulberry32 } from "./random.ts";

/** Peak dense BF16 FLOP/s and memory of the GPUs the simulated cluster offers. */
export const SUPPORTED_GPUS: Readonly<Record<string, { flops: number; memoryGb: number }>> = {
  "A100-80GB": { flops: 312e12, memoryGb: 80 },
  "H100-80GB": { flops: 989e12, memoryGb: 80 },
  "L40S-48GB": { flops: 362e12, memoryGb: 48 },
  "L4-24GB": { flops: 121e12, memoryGb: 24 },
};
export const DEFAULT_GPU = "A100-80GB";
const UTILISATION = 0.4;
/** Throughput of 4-bit QLoRA relative to bf16 LoRA on the same GPUs. */
export const QLORA_THROUGHPUT_FACTOR = 0.8;
/** Bytes of GPU memory per base-model parameter: bf16, or NF4 with double quantization (about 4.13 bits). */
const BYTES_PER_PARAMETER = { none: 2, "4bit": 0.52 } as const;
/** Adapter weights and optimizer state, activations (gradient checkpointing) and the CUDA context, over the weights. */
const MEMORY_OVERHEAD = 1.2;

/** What the simulator learned from the dataset (and the validation file or split, if any). */
export type DatasetStats = { examples: number; avgTokensPerExample: number; validationExamples?: number | null };

/** Everything needed to produce the run, derived once when the job starts. */
export type TrainingPlan = {
  /** Training examples. */
  examples: number;
  /** Evaluation examples; null without validation data. */
  validationExamples: number | null;
  totalSteps: number;
  /** The evaluation at which early stopping ends the run, null when it runs all `totalSteps`. */
  stopStep: number | null;
  tokensPerStep: number;
  tokensPerSecond: number;
  secondsPerStep: number;
  loggingSteps: number;
  evalEverySteps: number;
  curve: { initial: number; floor: number; k: number; evalGap: number; overfit: number };
};

function gpuOf(config: GpuTrainingConfig): { flops: number; memoryGb: number } {
  return SUPPORTED_GPUS[config.gpu_type ?? DEFAULT_GPU] ?? SUPPORTED_GPUS[DEFAULT_GPU]!;
}

/** Tokens per second the run achieves on its GPUs (the caller's estimate, when given, is taken as is). */
export function throughput(config: GpuTrainingConfig): number {
  if (config.expected_tokens_per_second !== undefined) return config.expected_tokens_per_second;
  const factor = config.quantization === "4bit" ? QLORA_THROUGHPUT_FACTOR : 1;
  return (gpuOf(config).flops * UTILISATION * (config.gpu_count ?? 1) * factor) / (4 * config.parameter_count);
}

/** GPU memory the run needs on each GPU, and what one GPU has, in GB. */
export function memoryPerGpu(config: GpuTrainingConfig): { neededGb: number; availableGb: number } {
  const bytes = config.parameter_count * BYTES_PER_PARAMETER[config.quantization ?? "none"] * MEMORY_OVERHEAD;
  return { neededGb: bytes / (config.gpu_count ?? 1) / 1e9, availableGb: gpuOf(config).memoryGb };
}

/** Size the run and draw its curve parameters from the seed. */
export function planTraining(config: GpuTrainingConfig, stats: DatasetStats): TrainingPlan {
  const examplesPerStep = config.batch_size * config.gradient_accumulation_steps;
  const totalSteps = Math.max(1, Math.ceil((stats.examples * config.epochs) / examplesPerStep));
  const tokensPerStep = examplesPerStep * Math.min(config.max_seq_length, stats.avgTokensPerExample);
  const tokensPerSecond = throughput(config);
  const rng = mulberry32(config.seed);
  const billions = config.parameter_count / 1e9;
  // Bigger models start and end lower; a higher learning rate converges faster.
  const initial = 2.0 + 0.8 * rng() - 0.1 * Math.log10(Math.max(billions, 0.1));
  const floor = Math.max(0.25, 0.55 + 0.4 * rng() - 0.08 * Math.log10(Math.max(billions, 0.1)));
  const lrFactor = Math.sqrt(Math.min(2, Math.max(0.5, config.learning_rate / 2e-4)));
  const plan: TrainingPlan = {
    examples: stats.examples,
    validationExamples: stats.validationExamples ?? null,
    totalSteps,
    stopStep: null,
    tokensPerStep,
    tokensPerSecond,
    secondsPerStep: tokensPerStep / tokensPerSecond,
    loggingSteps: config.logging_steps ?? Math.max(1, Math.ceil(totalSteps / 500)),
    evalEverySteps: config.eval_every_steps ?? Math.max(1, Math.ceil(totalSteps / 20)),
    curve: {
      initial,
      floor: Math.min(floor, initial * 0.6),
      k: (3.5 + 2 * rng()) * lrFactor,
      evalGap: 0.03 + 0.07 * rng(),
      overfit: config.epochs > 1 ? (0.2 + 0.4 * rng()) * Math.min(config.epochs - 1, 4) : 0,
    },
  };
  plan.stopStep = earlyStopStep(plan, config);
  return plan;
}

/** The lowest eval loss among metric points (the first of equals), or null when none has one. */
export function bestEvaluation(points: readonly MetricPoint[]): { step: number; evalLoss: number } | null {
  let best: { step: number; evalLoss: number } | null = null;
  for (const p of points) {
    if (p.eval_loss !== null && (best === null || p.eval_loss < best.evalLoss)) best = { step: p.step, evalLoss: p.eval_loss };
  }
  return best;
}

/**
 * Where early stopping ends the run: walking the evaluations in order, a
 * counter is reset by every new best eval loss and incremented otherwise;
 * training stops after the evaluation at which it reaches the patience
 * (Hugging Face's EarlyStoppingCallback, threshold 0). Null when early
 * stopping is off or never triggers before the last step.
 */
export function earlyStopStep(plan: TrainingPlan, config: GpuTrainingConfig): number | null {
  const patience = config.early_stopping_patience;
  if (patience === undefined || patience === null) return null;
  let best = Infinity;
  let counter = 0;
  for (let step = 1; step < plan.totalSteps; step++) {
    if (!isEvalStep(plan, config, step)) continue;
    const loss = metricPointAt(plan, config, step).eval_loss!;
    if (loss < best) {
      best = loss;
      counter = 0;
    } else {
      counter += 1;
    }
    if (counter >= patience) return step;
  }
  return null;
}

/**
 * Learning rate at `step` (1-based): linear warmup, then the configured
 * schedule to 0 (Hugging Face's formulas; `cosine_with_restarts` is
 * `get_cosine_with_hard_restarts_schedule_with_warmup`).
 */
export function learningRateAt(config: GpuTrainingConfig, step: number, totalSteps: number): number {
  const lr = config.learning_rate;
  const warmup = Math.min(config.warmup_steps, totalSteps);
  if (step <= warmup) return (lr * step) / Math.max(1, warmup);
  const p = Math.min(1, (step - warmup) / Math.max(1, totalSteps - warmup));
  switch (config.lr_scheduler) {
    case "constant":
      return lr;
    case "linear":
      return lr * (1 - p);
    case "cosine":
      return lr * 0.5 * (1 + Math.cos(Math.PI * p));
    case "cosine_with_restarts": {
      if (p >= 1) return 0;
      const cycles = config.lr_scheduler_num_cycles ?? 1;
      return lr * Math.max(0, 0.5 * (1 + Math.cos(Math.PI * ((cycles * p) % 1))));
    }
  }
}

function smoothTrainLoss(plan: TrainingPlan, step: number): number {
  const { initial, floor, k } = plan.curve;
  return floor + (initial - floor) * Math.exp((-k * step) / plan.totalSteps);
}

const STREAM_TRAIN = 1;
const STREAM_EVAL = 2;
const STREAM_SPEED = 3;

/** Noisy training loss at `step`, reproducible for a seed. */
export function trainLossAt(plan: TrainingPlan, seed: number, step: number): number {
  const smooth = smoothTrainLoss(plan, step);
  return Math.max(0.01, smooth * (1 + 0.04 * hashGaussian(seed, STREAM_TRAIN, step)));
}

/** Evaluation loss at `step`: above train, rising again late in multi-epoch runs. */
export function evalLossAt(plan: TrainingPlan, seed: number, step: number): number {
  const t = step / plan.totalSteps;
  const uptick = plan.curve.overfit * Math.max(0, t - 0.6) ** 2;
  const smooth = smoothTrainLoss(plan, step) + plan.curve.evalGap + uptick;
  return Math.max(0.01, smooth * (1 + 0.01 * hashGaussian(seed, STREAM_EVAL, step)));
}

/** Whether the model is evaluated at `step` (evaluation steps, checkpoints and the last step). */
export function isEvalStep(plan: TrainingPlan, config: GpuTrainingConfig, step: number): boolean {
  return step % plan.evalEverySteps === 0 || step % config.checkpoint_every_steps === 0 || step === plan.totalSteps;
}

/** Whether `step` gets a metric point (logging steps and evaluations). */
export function isMetricStep(plan: TrainingPlan, config: GpuTrainingConfig, step: number): boolean {
  return step % plan.loggingSteps === 0 || isEvalStep(plan, config, step);
}

/** The metric point at `step`; evaluations carry an eval loss. */
export function metricPointAt(plan: TrainingPlan, config: GpuTrainingConfig, step: number): MetricPoint {
  const isEval = isEvalStep(plan, config, step);
  const jitter = 1 + 0.03 * (2 * hashUniform(config.seed, STREAM_SPEED, step) - 1);
  return {
    step,
    epoch: round(Math.min(config.epochs, (step * config.batch_size * config.gradient_accumulation_steps) / plan.examples), 4),
    train_loss: round(trainLossAt(plan, config.seed, step), 5),
    eval_loss: isEval ? round(evalLossAt(plan, config.seed, step), 5) : null,
    learning_rate: learningRateAt(config, step, plan.totalSteps),
    tokens_per_second: round(plan.tokensPerSecond * jitter, 1),
    elapsed_seconds: round(step * plan.secondsPerStep, 3),
  };
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
