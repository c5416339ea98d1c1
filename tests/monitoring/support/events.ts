/**
 * Building GPU cluster payloads by hand (valid against the contract's zod
 * schemas): metric points, checkpoints, webhook events and poll snapshots,
 * for tests that must control exactly what the cluster says and in which
 * order.
 */
import type {
  Artifact,
  Checkpoint,
  GpuWebhookEvent,
  Job,
  JobError,
  JobStatus,
  MetricPoint,
  Progress,
} from "../../../functions/_shared/gpu/types.ts";
import { GpuWebhookEventSchema, JobSchema } from "../../../functions/_shared/gpu/types.ts";

export function progress(step: number, total = 100, eta: number | null = 60): Progress {
  return { step, total_steps: total, epoch: (3 * step) / total, fraction: step / total, eta_seconds: eta };
}

export function point(step: number, over: Partial<MetricPoint> = {}): MetricPoint {
  return {
    step, epoch: step / 100, train_loss: 2 / Math.sqrt(step), eval_loss: step % 10 === 0 ? 2.1 / Math.sqrt(step) : null,
    learning_rate: 2e-4, tokens_per_second: 3900, elapsed_seconds: step * 2, ...over,
  };
}

export function points(from: number, to: number): MetricPoint[] {
  return Array.from({ length: to - from + 1 }, (_, i) => point(from + i));
}

export function checkpoint(step: number, evalLoss: number | null): Checkpoint {
  return { name: `checkpoint-${step}`, step, epoch: step / 100, train_loss: 1, eval_loss: evalLoss, created_at: new Date().toISOString() };
}

export function oom(step: number): JobError {
  return { code: "oom", message: `CUDA out of memory at step ${step}`, retryable: true, category: "system", step };
}

/** A failure a new run on another node fixes (out-of-memory failures are the user's: LT401 is never retried). */
export function nodeFailure(step: number): JobError {
  return { code: "node_failure", message: `GPU node lost at step ${step}`, retryable: true, category: "system", step };
}

type Base = { sequence: number; status?: JobStatus; step?: number; total?: number; gpuSeconds?: number };

/** A webhook event, validated against the contract. */
export function event(
  type: GpuWebhookEvent["type"], jobId: string, base: Base, extra: Record<string, unknown> = {},
): GpuWebhookEvent {
  const status: JobStatus = base.status
    ?? (type === "job.succeeded" ? "succeeded" : type === "job.failed" ? "failed" : type === "job.cancelled" ? "cancelled" : "running");
  return GpuWebhookEventSchema.parse({
    type,
    timestamp: new Date().toISOString(),
    data: {
      job_id: jobId, sequence: base.sequence, status, progress: progress(base.step ?? 0, base.total ?? 100),
      gpu_seconds: base.gpuSeconds ?? 0, ...extra,
    },
  });
}

/** A poll snapshot of a cluster job, validated against the contract. */
export function snapshotJob(id: string, over: Partial<Job> & { step?: number; total?: number } = {}): Job {
  const { step = 0, total = 100, ...rest } = over;
  return JobSchema.parse({
    id, idempotency_key: null, status: "running", created_at: new Date().toISOString(), started_at: new Date().toISOString(),
    finished_at: null,
    config: {
      base_model: "meta-llama/Llama-3.1-8B-Instruct", parameter_count: 8e9, r: 16, lora_alpha: 32, lora_dropout: 0.05,
      target_modules: ["q_proj"], use_rslora: false, use_dora: false, epochs: 3, batch_size: 8,
      gradient_accumulation_steps: 1, learning_rate: 2e-4, lr_scheduler: "linear", warmup_steps: 0, max_seq_length: 2048,
      seed: 42, checkpoint_every_steps: 10,
    },
    callback_url: null, upload_urls_callback_url: null, metadata: {}, examples: 1000, progress: progress(step, total),
    metrics: [], checkpoints: [], artifacts: [], error: null, gpu_type: "A100-80GB", gpu_count: 1, gpu_seconds: step * 2,
    ...rest,
  });
}

export function artifact(path: string, size: number, sha = "a".repeat(64)): Artifact {
  return { path, content_type: "application/octet-stream", size_bytes: size, sha256: sha };
}
