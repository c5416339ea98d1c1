/**
 * The simulated cluster's job table: internal state per job, the idempotency
 * index, and the public view the API returns.
 */
import type {
  Artifact,
  Checkpoint,
  EarlyStopping,
  Job,
  JobError,
  JobStatus,
  MetricPoint,
  Progress,
  SubmitJobRequestSchema,
} from "../../functions/_shared/gpu/types.ts";
import type { z } from "zod";
import { randomId } from "./random.ts";
import { bestEvaluation, DEFAULT_GPU, type TrainingPlan } from "./training.ts";

type ParsedSubmit = z.output<typeof SubmitJobRequestSchema>;

/** Where a job is in its life inside the simulator (finer than its public status). */
export type SimPhase = "queued" | "downloading" | "training" | "uploading" | "done";

/** A job as the simulator holds it. */
export type SimJob = {
  id: string;
  idempotencyKey: string | null;
  /** Canonical JSON of the submitted body, to detect key reuse with another body. */
  fingerprint: string;
  request: ParsedSubmit;
  status: JobStatus;
  phase: SimPhase;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  plan: TrainingPlan | null;
  /** Loss tokens per epoch under the submit's `dataset_spec` (null without one, or until read). */
  trainableTokens: number | null;
  /** The step the run started from: 0, or the step of the checkpoint it resumed. */
  startStep: number;
  step: number;
  /** Simulated seconds spent queued and training. */
  queuedSeconds: number;
  trainingSeconds: number;
  gpuSeconds: number;
  metrics: MetricPoint[];
  checkpoints: Checkpoint[];
  artifacts: Artifact[];
  error: JobError | null;
  /** Last webhook sequence number used. */
  sequence: number;
  /** Metric points not yet sent in a `job.progress` event, and when the last one was sent. */
  unsentMetrics: MetricPoint[];
  lastProgressAt: number;
  /**
   * The best checkpoint and evaluation of the runs this one continues (up to
   * its resume step), restored from the checkpoint's trainer state as
   * Hugging Face does, so a resumed run's best is the best of the model's
   * whole history.
   */
  inheritedBest: { checkpoint: Checkpoint | null; evaluation: { step: number; evalLoss: number } | null };
};

/** JSON with object keys sorted, so equal bodies compare equal whatever the key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/** All jobs the simulated cluster knows, by id and by idempotency key. */
export class JobStore {
  readonly #byId = new Map<string, SimJob>();
  readonly #byKey = new Map<string, SimJob>();

  create(request: ParsedSubmit, idempotencyKey: string | null): SimJob {
    const job: SimJob = {
      id: randomId("job"),
      idempotencyKey,
      fingerprint: canonicalJson(request),
      request,
      status: "queued",
      phase: "queued",
      createdAt: new Date(),
      startedAt: null,
      finishedAt: null,
      plan: null,
      trainableTokens: null,
      startStep: 0,
      step: 0,
      queuedSeconds: 0,
      trainingSeconds: 0,
      gpuSeconds: 0,
      metrics: [],
      checkpoints: [],
      artifacts: [],
      error: null,
      sequence: 0,
      unsentMetrics: [],
      lastProgressAt: 0,
      inheritedBest: { checkpoint: null, evaluation: null },
    };
    this.#byId.set(job.id, job);
    if (idempotencyKey !== null) this.#byKey.set(idempotencyKey, job);
    return job;
  }

  get(id: string): SimJob | undefined {
    return this.#byId.get(id);
  }

  byKey(key: string): SimJob | undefined {
    return this.#byKey.get(key);
  }

  all(): SimJob[] {
    return [...this.#byId.values()];
  }

  /** Forget every job, as a cluster restarted without its state would (see `GpuSimulator.restart`). */
  clear(): void {
    this.#byId.clear();
    this.#byKey.clear();
  }

  /** Jobs not yet in a terminal status. */
  active(): SimJob[] {
    return this.all().filter((j) => j.phase !== "done");
  }
}

/** The job's public `progress` (a run that stopped early and succeeded is complete: fraction 1). */
export function jobProgress(job: SimJob): Progress {
  const total = job.plan?.totalSteps ?? null;
  const remaining = job.plan && job.status === "running" ? (job.plan.totalSteps - job.step) * job.plan.secondsPerStep : null;
  return {
    step: job.step,
    total_steps: total,
    epoch: job.metrics.at(-1)?.epoch ?? 0,
    fraction: job.status === "succeeded" ? 1 : total ? Math.min(1, job.step / total) : 0,
    eta_seconds: remaining === null ? null : Math.round(remaining),
  };
}

/** The job's `early_stopping` state, or null when its configuration does not ask for early stopping. */
export function earlyStoppingOf(job: SimJob): EarlyStopping | null {
  const patience = job.request.config.early_stopping_patience;
  if (patience === undefined || patience === null) return null;
  const { checkpoint: bestCheckpoint, evaluation: best } = bestSoFar(job, Infinity);
  const stopStep = job.plan?.stopStep ?? null;
  return {
    patience,
    stopped_early: stopStep !== null && job.step >= stopStep,
    best_step: best?.step ?? null,
    best_eval_loss: best?.evalLoss ?? null,
    best_checkpoint: bestCheckpoint?.name ?? null,
  };
}

/**
 * The lowest eval loss (ties: the earliest step) among a job's checkpoints
 * and evaluations up to `upToStep`, including what it inherited from the
 * runs it continues.
 */
export function bestSoFar(job: SimJob, upToStep: number): SimJob["inheritedBest"] {
  const better = <T extends { step: number }>(a: T | null, b: T | null, loss: (x: T) => number): T | null =>
    a === null ? b : b === null ? a : loss(b) < loss(a) || (loss(b) === loss(a) && b.step < a.step) ? b : a;
  let checkpoint = job.inheritedBest.checkpoint && job.inheritedBest.checkpoint.step <= upToStep ? job.inheritedBest.checkpoint : null;
  for (const c of job.checkpoints) {
    if (c.eval_loss !== null && c.step <= upToStep) checkpoint = better(checkpoint, c, (x) => x.eval_loss!);
  }
  const inherited = job.inheritedBest.evaluation;
  const own = bestEvaluation(job.metrics.filter((m) => m.step <= upToStep));
  const evaluation = better(inherited && inherited.step <= upToStep ? inherited : null, own, (x) => x.evalLoss);
  return { checkpoint, evaluation };
}

/** GPU seconds as reported (millisecond precision). */
export function reportedGpuSeconds(job: SimJob): number {
  return Math.round(job.gpuSeconds * 1000) / 1000;
}

/** The public `Job` resource; `metricsSinceStep` keeps only later points. */
export function toJobView(job: SimJob, opts: { metricsSinceStep?: number } = {}): Job {
  const since = opts.metricsSinceStep ?? 0;
  const config = job.request.config;
  return structuredClone({
    id: job.id,
    idempotency_key: job.idempotencyKey,
    status: job.status,
    created_at: job.createdAt.toISOString(),
    started_at: job.startedAt?.toISOString() ?? null,
    finished_at: job.finishedAt?.toISOString() ?? null,
    config,
    callback_url: job.request.callback_url ?? null,
    upload_urls_callback_url: job.request.upload_urls_callback_url ?? null,
    metadata: job.request.metadata ?? {},
    examples: job.plan?.examples ?? null,
    validation_examples: job.plan?.validationExamples ?? null,
    trainable_tokens: job.trainableTokens,
    progress: jobProgress(job),
    metrics: job.metrics.filter((m) => m.step > since),
    checkpoints: job.checkpoints,
    artifacts: job.artifacts,
    error: job.error,
    gpu_type: config.gpu_type ?? DEFAULT_GPU,
    gpu_count: config.gpu_count ?? 1,
    gpu_seconds: reportedGpuSeconds(job),
    early_stopping: earlyStoppingOf(job),
    resume_from: job.request.resume_from ?? null,
  });
}
