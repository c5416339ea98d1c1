/**
 * Drives simulated jobs through their lives on a timer tick:
 *
 *   queued --(queue delay; GET the dataset and any validation file, count
 *            their lines, hold out a validation split)--> running
 *   running --(steps at the planned speed from step 0, or from the step of
 *             the checkpoint in `resume_from`; metrics, checkpoints, progress
 *             events; to the last step or until early stopping)--> uploading
 *             artifacts --> succeeded
 *   any non-terminal --> failed (dataset, checkpoint to resume gone, weights
 *                        too big for the GPUs, injected step failure, upload)
 *                        | cancelled
 *
 * Simulated time advances `timeScale` times faster than real time, so with
 * timeScale 600 an hour of training passes in 6 seconds.
 */
import type { GpuWebhookEvent, GpuWebhookEventType, JobError, UploadFile } from "../../functions/_shared/gpu/types.ts";
import { buildAdapterFiles } from "./adapter.ts";
import { readTrainingData } from "./datasets.ts";
import type { FaultInjector } from "./faults.ts";
import { bestSoFar, earlyStoppingOf, type JobStore, jobProgress, reportedGpuSeconds, type SimJob, toJobView } from "./store.ts";
import { DEFAULT_GPU, isMetricStep, memoryPerGpu, metricPointAt, planTraining } from "./training.ts";
import { putArtifact, type RequestUploadUrls } from "./uploads.ts";
import type { WebhookSender } from "./webhook-sender.ts";

export type EngineOptions = {
  store: JobStore;
  faults: FaultInjector;
  webhooks: WebhookSender;
  /** Simulated seconds per real second. */
  timeScale: number;
  /** Real milliseconds between ticks. */
  tickMs: number;
  /** Simulated seconds a job waits in the queue before it starts. */
  queueDelaySeconds: number;
  /** Simulated seconds between `job.progress` events. */
  progressIntervalSeconds: number;
  requestUploadUrls: RequestUploadUrls;
  fetch: typeof fetch;
  log: (message: string) => void;
};

type BaseKeys = "job_id" | "sequence" | "status" | "progress" | "gpu_seconds";
type EventExtra<T extends GpuWebhookEventType> = Omit<Extract<GpuWebhookEvent, { type: T }>["data"], BaseKeys>;

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as BufferSource));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The simulated cluster's scheduler and trainer. */
export class TrainingEngine {
  readonly #o: EngineOptions;
  #timer: ReturnType<typeof setInterval> | undefined;
  #last = 0;
  #closed = false;

  constructor(opts: EngineOptions) {
    this.#o = opts;
  }

  start(): void {
    this.#last = performance.now();
    this.#timer = setInterval(() => this.tick(), this.#o.tickMs);
  }

  stop(): void {
    this.#closed = true;
    clearInterval(this.#timer);
  }

  /** Advance every active job by the real time since the last tick, scaled. */
  tick(): void {
    const now = performance.now();
    const dt = ((now - this.#last) / 1000) * this.#o.timeScale;
    this.#last = now;
    for (const job of this.#o.store.active()) this.#advance(job, dt);
  }

  /** Cancel a job that has not finished; returns false if it already had. */
  cancel(job: SimJob): boolean {
    if (job.phase === "done") return false;
    this.#flushProgress(job);
    job.status = "cancelled";
    job.phase = "done";
    job.finishedAt = new Date();
    this.#o.log(`${job.id} cancelled at step ${job.step}`);
    this.#emit(job, "job.cancelled", {}, true);
    return true;
  }

  #advance(job: SimJob, dt: number): void {
    if (job.phase === "queued") {
      job.queuedSeconds += dt;
      if (job.queuedSeconds >= this.#o.queueDelaySeconds) {
        job.phase = "downloading";
        void this.#download(job).catch((err) => this.#internalError(job, err));
      }
    } else if (job.phase === "training") {
      this.#train(job, dt);
    }
  }

  async #download(job: SimJob): Promise<void> {
    const config = job.request.config;
    const userError = (error: { code: string; message: string }) =>
      this.#fail(job, { ...error, retryable: false, category: "user", step: null });
    if (this.#o.faults.current.datasetUnreachable) {
      return userError({ code: "dataset_unreachable", message: "Dataset URL answered 403 (injected fault)" });
    }
    const data = await readTrainingData(this.#o.fetch, job.request.dataset_url, config, job.request.dataset_spec);
    if (job.phase !== "downloading") return;
    if ("code" in data) return userError(data);
    const { train, validationExamples } = data;
    job.trainableTokens = data.trainableTokens;
    const chars = train.reduce((n, l) => n + l.length, 0);
    job.plan = planTraining(config, {
      examples: train.length,
      avgTokensPerExample: Math.max(1, Math.ceil(chars / train.length / 4)),
      validationExamples,
    });
    const resume = job.request.resume_from;
    if (resume) {
      const source = this.#o.store.get(resume.job_id);
      if (!source?.checkpoints.some((c) => c.name === resume.checkpoint && c.step === resume.step)) {
        return this.#fail(job, {
          code: "checkpoint_unavailable",
          message: `Checkpoint "${resume.checkpoint}" (step ${resume.step}) of job "${resume.job_id}" is not stored on the cluster`,
          retryable: false,
          category: "system",
          step: null,
        });
      }
      if (resume.step >= (job.plan.stopStep ?? job.plan.totalSteps)) {
        return userError({
          code: "invalid_config",
          message: `Checkpoint step ${resume.step} is not before the run's last step ${job.plan.totalSteps}: nothing left to train (raise epochs to continue)`,
        });
      }
      job.startStep = job.step = resume.step;
      job.inheritedBest = bestSoFar(source, resume.step);
    }
    job.status = "running";
    job.phase = "training";
    job.startedAt = new Date();
    this.#o.log(`${job.id} started: ${train.length} examples, ${job.plan.totalSteps} steps${resume ? `, resuming at step ${resume.step}` : ""}`);
    this.#emit(job, "job.started", {
      examples: train.length,
      total_steps: job.plan.totalSteps,
      ...(validationExamples === null ? {} : { validation_examples: validationExamples }),
    });
    const memory = memoryPerGpu(config);
    if (memory.neededGb > memory.availableGb) {
      const weights = config.quantization === "4bit" ? "4-bit" : "bf16";
      this.#fail(job, {
        code: "oom",
        message: `CUDA out of memory loading the model: ${weights} weights need about ${Math.ceil(memory.neededGb)} GB per GPU, a ${config.gpu_type ?? DEFAULT_GPU} has ${memory.availableGb} GB; use quantization "4bit" or more GPUs`,
        retryable: false,
        category: "user",
        step: 0,
      });
    }
  }

  #train(job: SimJob, dt: number): void {
    const plan = job.plan!;
    const config = job.request.config;
    const lastStep = plan.stopStep ?? plan.totalSteps;
    job.trainingSeconds += dt;
    const target = Math.min(lastStep, job.startStep + Math.floor(job.trainingSeconds / plan.secondsPerStep));
    // Billed time: what this run's steps used (a tick may overshoot the end of the run).
    const bill = (seconds: number) => {
      job.gpuSeconds = Math.min(seconds, (lastStep - job.startStep) * plan.secondsPerStep) * (config.gpu_count ?? 1);
    };
    bill(job.trainingSeconds);
    const failure = this.#o.faults.current.failAtStep;
    for (let step = job.step + 1; step <= target; step++) {
      // A run fails when it reaches the step; one resumed after it does not.
      if (failure && step === failure.step) {
        bill((step - job.startStep) * plan.secondsPerStep);
        return this.#fail(job, {
          code: failure.code ?? "oom",
          message: failure.message ?? `CUDA out of memory at step ${step}`,
          retryable: failure.retryable ?? true,
          category: failure.category ?? "system",
          step,
        });
      }
      job.step = step;
      if (!isMetricStep(plan, config, step)) continue;
      const point = metricPointAt(plan, config, step);
      job.metrics.push(point);
      job.unsentMetrics.push(point);
      if (step % config.checkpoint_every_steps === 0) {
        const checkpoint = {
          name: `checkpoint-${step}`,
          step,
          epoch: point.epoch,
          train_loss: point.train_loss,
          eval_loss: point.eval_loss,
          created_at: new Date().toISOString(),
        };
        job.checkpoints.push(checkpoint);
        this.#emit(job, "job.checkpoint", { checkpoint });
      }
    }
    if (job.trainingSeconds - job.lastProgressAt >= this.#o.progressIntervalSeconds) this.#flushProgress(job);
    if (job.step >= lastStep) {
      this.#flushProgress(job);
      if (plan.stopStep !== null) this.#o.log(`${job.id} stopped early at step ${job.step} of ${plan.totalSteps}`);
      job.phase = "uploading";
      void this.#upload(job).catch((err) => this.#internalError(job, err));
    }
  }

  async #upload(job: SimJob): Promise<void> {
    // Early stopping loads the best checkpoint at the end (Hugging Face's load_best_model_at_end, which
    // EarlyStoppingCallback requires): the adapter delivered is the best checkpoint's, not the last step's.
    const best = earlyStoppingOf(job) ? bestSoFar(job, Infinity).checkpoint : null;
    const files = buildAdapterFiles(job.request.config, { step: best?.step ?? job.step });
    const meta: UploadFile[] = await Promise.all(
      files.map(async (f) => ({
        path: f.path,
        content_type: f.contentType,
        size_bytes: f.bytes.length,
        sha256: await sha256Hex(f.bytes),
      })),
    );
    try {
      const targets = await this.#withRetries(() => this.#o.requestUploadUrls(toJobView(job), meta));
      for (const file of files) {
        const target = targets.find((t) => t.path === file.path);
        if (!target) throw new Error(`No upload URL for "${file.path}"`);
        await this.#withRetries(() => putArtifact(target, file, { fetch: this.#o.fetch }));
      }
    } catch (err) {
      if (job.phase !== "uploading") return;
      return this.#fail(job, {
        code: "artifact_upload_failed",
        message: `Could not upload artifacts: ${(err as Error).message}`,
        retryable: true,
        category: "system",
        step: job.step,
      });
    }
    if (job.phase !== "uploading") return;
    job.artifacts = meta;
    job.status = "succeeded";
    job.phase = "done";
    job.finishedAt = new Date();
    this.#o.log(`${job.id} succeeded after ${job.step} steps`);
    const earlyStopping = earlyStoppingOf(job);
    this.#emit(job, "job.succeeded", {
      artifacts: meta,
      final_metrics: job.metrics.at(-1) ?? null,
      ...(earlyStopping ? { early_stopping: earlyStopping } : {}),
    }, true);
  }

  async #withRetries<T>(fn: () => Promise<T>): Promise<T> {
    const delays = [200, 1000];
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        const delay = delays[attempt];
        if (delay === undefined || this.#closed) throw err;
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  #fail(job: SimJob, error: JobError): void {
    if (job.phase === "done") return;
    this.#flushProgress(job);
    job.error = error;
    job.status = "failed";
    job.phase = "done";
    job.finishedAt = new Date();
    this.#o.log(`${job.id} failed: ${error.code}: ${error.message}`);
    this.#emit(job, "job.failed", { error }, true);
  }

  #internalError(job: SimJob, err: unknown): void {
    this.#fail(job, { code: "internal_error", message: String(err), retryable: true, category: "system", step: job.step });
  }

  #flushProgress(job: SimJob): void {
    if (job.unsentMetrics.length === 0) return;
    const metrics = job.unsentMetrics;
    job.unsentMetrics = [];
    job.lastProgressAt = job.trainingSeconds;
    this.#emit(job, "job.progress", { metrics });
  }

  #emit<T extends GpuWebhookEventType>(job: SimJob, type: T, extra: EventExtra<T>, final = false): void {
    // A job forgotten by a restart (its download or upload may still be in flight) says nothing more.
    if (this.#o.store.get(job.id) !== job) return;
    job.sequence += 1;
    const url = job.request.callback_url;
    if (!url || this.#closed) return;
    const data = {
      job_id: job.id,
      sequence: job.sequence,
      status: job.status,
      progress: jobProgress(job),
      gpu_seconds: reportedGpuSeconds(job),
      ...extra,
    };
    const event = { type, timestamp: new Date().toISOString(), data } as GpuWebhookEvent;
    this.#o.webhooks.send(url, structuredClone(event), { final });
  }
}
