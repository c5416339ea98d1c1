/**
 * One path from what the GPU cluster says to our rows.
 *
 * The poller gets a `Job` snapshot (`GET /v1/jobs/{id}`), the webhook
 * receiver gets an event; both are normalised here into one
 * {@link ClusterUpdate} and applied by a single SQL call,
 * `private.apply_cluster_update()` (migration 20261126140400), which is
 * idempotent: applying an update twice, or an older one after a newer one,
 * changes nothing. Web APIs and a `Queryable` only (Deno and Node).
 */
import type { Queryable } from "./db.ts";
import type {
  Artifact,
  Checkpoint,
  EarlyStopping,
  GpuWebhookEvent,
  Job,
  JobError,
  JobStatus,
  MetricPoint,
  Progress,
} from "./gpu/types.ts";

/** What `private.apply_cluster_update()` reads. */
export type ClusterUpdate = {
  status: JobStatus;
  /** Webhook `data.sequence`; absent for poll snapshots (they are never stale by sequence). */
  sequence?: number;
  progress: Progress;
  gpu_seconds: number;
  examples?: number | null;
  metrics: MetricPoint[];
  checkpoints: Checkpoint[];
  artifacts?: Artifact[];
  final_metrics?: MetricPoint | null;
  error?: JobError | null;
  /** The cluster's early-stopping state (poll snapshots; `job.succeeded` events); absent or null: not reported. */
  early_stopping?: EarlyStopping | null;
};

/** What applying an update did. */
export type ApplyOutcome = {
  outcome: "applied" | "stale" | "inactive" | "unknown_job" | "job_mismatch" | "duplicate";
  job_id?: string;
  status_before?: string;
  status?: string;
  metrics_written?: number;
  checkpoints_written?: number;
  delivered?: boolean;
  /** The job just succeeded: its model card is to be written. */
  model_card_pending?: boolean;
};

/** A poll snapshot as an update. */
export function updateFromJob(job: Job): ClusterUpdate {
  return {
    status: job.status,
    progress: job.progress,
    gpu_seconds: job.gpu_seconds,
    examples: job.examples,
    metrics: job.metrics,
    checkpoints: job.checkpoints,
    artifacts: job.status === "succeeded" ? job.artifacts : undefined,
    error: job.error,
    early_stopping: job.early_stopping ?? null,
  };
}

/** A webhook event as an update: only what the event carries. */
export function updateFromEvent(event: GpuWebhookEvent): ClusterUpdate {
  const d = event.data;
  const base: ClusterUpdate = {
    status: d.status,
    sequence: d.sequence,
    progress: d.progress,
    gpu_seconds: d.gpu_seconds,
    metrics: [],
    checkpoints: [],
  };
  switch (event.type) {
    case "job.started":
      return { ...base, examples: event.data.examples, progress: { ...d.progress, total_steps: event.data.total_steps } };
    case "job.progress":
      return { ...base, metrics: event.data.metrics };
    case "job.checkpoint":
      return { ...base, checkpoints: [event.data.checkpoint] };
    case "job.succeeded":
      return {
        ...base,
        artifacts: event.data.artifacts,
        final_metrics: event.data.final_metrics,
        early_stopping: event.data.early_stopping ?? null,
      };
    case "job.failed":
      return { ...base, error: event.data.error };
    case "job.cancelled":
      return base;
  }
}

async function one<T>(db: Queryable, sql: string, params: unknown[]): Promise<T> {
  const { rows } = await db.query<{ r: T }>(sql, params);
  if (!rows[0]) throw new Error("Query returned no row");
  return rows[0].r;
}

/**
 * Apply a poll snapshot of cluster job `job.id`; also releases the job's
 * poll lease and schedules its next poll.
 */
export async function applyPolledJob(db: Queryable, job: Job): Promise<ApplyOutcome> {
  return await one<ApplyOutcome>(db, "select private.apply_cluster_update($1, $2::jsonb, null, true) as r", [
    job.id,
    JSON.stringify(updateFromJob(job)),
  ]);
}

/**
 * Apply a verified webhook event once per `webhookId` (a repeat is
 * `duplicate` and changes nothing). `expectedJobId`: the training job the
 * callback URL names; an event about another job's cluster job is
 * `job_mismatch` and changes nothing.
 */
export async function applyWebhookEvent(
  db: Queryable,
  msg: { webhookId: string; event: GpuWebhookEvent; expectedJobId?: string | null },
): Promise<ApplyOutcome> {
  return await one<ApplyOutcome>(db, "select private.apply_webhook_event($1, $2, $3, $4::jsonb, $5) as r", [
    msg.webhookId,
    msg.event.type,
    msg.event.data.job_id,
    JSON.stringify(updateFromEvent(msg.event)),
    msg.expectedJobId ?? null,
  ]);
}
