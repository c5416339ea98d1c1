/**
 * The simulator's model of a LoRA training run: how many steps, how fast,
 * and what the loss and learning-rate curves look like. Pure functions of
 * the configuration, the dataset's size and the seed, so a run is
 * reproducible point for point whatever the simulator's time scale.
 *
 * - steps = ceil(examples * epochs / (batch_size * gradient_accumulation_steps))
 * - throughput: the caller's `expected_tokens_per_second`, else GPU peak
 *   FLOP/s * 40 % utilisation / (4 * parameters) per GPU (LoRA: forward
 *   plus activation gradients, no weight gradients for the frozen base)
 * - train loss(t) = floor + (initial - floor) * exp(-k t) + noise, t = step / steps
 * - eval loss a little above train, with an overfitting uptick late in
 *   multi-epoch runs
 * - learning rate: linear warmup, then linear / cosine decay or constant
 */
import type { GpuTrainingConfig, MetricPoint } from "../../functions/_shared/gpu/types.ts";
import { hashGaussian, hashUniform, mulberry32 } from "./random.ts";

/** Peak dense BF16 FLOP/s and memory of the GPUs the simulated cluster offers. */
export const SUPPORTED_GPUS: Readonly<Record<string, { flops: number; memoryGb: number }>> = {
  "A100-80GB": { flops: 312e12, memoryGb: 80 },
  "H100-80GB": { flops: 989e12, memoryGb: 80 },
  "L40S-48GB": { flops: 362e12, memoryGb: 48 },
};
export const DEFAULT_GPU = "A100-80GB";
const UTILISATION = 0.4;

/** What the simulator learned from the dataset. */
export type DatasetStats = { examples: number; avgTokensPerExample: number };

/** Everything needed to produce the run, derived once when the job starts. */
export type TrainingPlan = {
  examples: number;
  totalSteps: number;
  tokensPerStep: number;
  tokensPerSecond: number;
  secondsPerStep: number;
  loggingSteps: number;
  evalEverySteps: number;
  curve: { initial: number; floor: number; k: number; evalGap: number; overfit: number };
};

/** Tokens per second the run achieves on its GPUs. */
export function throughput(config: GpuTrainingConfig): number {
  if (config.expected_tokens_per_second !== undefined) return config.expected_tokens_per_second;
  const gpu = SUPPORTED_GPUS[config.gpu_type ?? DEFAULT_GPU] ?? SUPPORTED_GPUS[DEFAULT_GPU]!;
  return (gpu.flops * UTILISATION * (config.gpu_count ?? 1)) / (4 * config.parameter_count);
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
  return {
    examples: stats.examples,
    totalSteps,
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
}

/** Learning rate at `step` (1-based): linear warmup, then the configured schedule to 0. */
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

/** Whether `step` gets a metric point (logging steps, evaluation steps, checkpoints, the last step). */
export function isMetricStep(plan: TrainingPlan, config: GpuTrainingConfig, step: number): boolean {
  return (
    step % plan.loggingSteps === 0 ||
    step % plan.evalEverySteps === 0 ||
    step % config.checkpoint_every_steps === 0 ||
    step === plan.totalSteps
  );
}

/** The metric point at `step`; evaluation steps, checkpoints and the last step carry an eval loss. */
export function metricPointAt(plan: TrainingPlan, config: GpuTrainingConfig, step: number): MetricPoint {
  const isEval =
    step % plan.evalEverySteps === 0 || step % config.checkpoint_every_steps === 0 || step === plan.totalSteps;
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
