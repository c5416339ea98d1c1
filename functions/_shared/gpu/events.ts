/**
 * Payloads the GPU cluster sends to us: webhook events (Standard Webhooks
 * envelope `{ type, timestamp, data }`) and the request for signed artifact
 * upload URLs, with the answer we give. Both are signed with the webhook
 * secret (see `../webhooks.ts`).
 *
 * Delivery is at-least-once and unordered: the same `webhook-id` may arrive
 * twice and events may arrive out of order, so receivers dedupe on the id and
 * ignore an event whose `data.sequence` is not newer than what they have.
 */
import { z } from "zod";
import {
  ArtifactPathSchema,
  ArtifactSchema,
  CheckpointSchema,
  EarlyStoppingSchema,
  GpuSecondsSchema,
  JobErrorSchema,
  JobStatusSchema,
  MetricPointSchema,
  ProgressSchema,
} from "./job.ts";

/** Fields every event's `data` carries. */
const EventBase = {
  job_id: z.string().min(1),
  /** Per job, strictly increasing in the order the cluster emitted the events. */
  sequence: z.int().min(1),
  status: JobStatusSchema,
  progress: ProgressSchema,
  gpu_seconds: GpuSecondsSchema,
};

const envelope = <T extends string, D extends z.ZodRawShape>(type: T, data: D) =>
  z.object({
    type: z.literal(type),
    timestamp: z.iso.datetime({ offset: true }),
    data: z.object({ ...EventBase, ...data }),
  });

export const JobStartedEventSchema = envelope("job.started", {
  /** Training examples (less a validation split). */
  examples: z.int().min(0),
  total_steps: z.int().min(1),
  /** Evaluation examples, when the job has validation data. */
  validation_examples: z.int().min(0).optional(),
});
export const JobProgressEventSchema = envelope("job.progress", {
  /** Metric points produced since the previous `job.progress` event. */
  metrics: z.array(MetricPointSchema),
});
export const JobCheckpointEventSchema = envelope("job.checkpoint", { checkpoint: CheckpointSchema });
export const JobSucceededEventSchema = envelope("job.succeeded", {
  artifacts: z.array(ArtifactSchema).min(1),
  final_metrics: MetricPointSchema.nullable(),
  /** With `early_stopping_patience`: whether training stopped early, and the best evaluation and checkpoint. */
  early_stopping: EarlyStoppingSchema.optional(),
});
export const JobFailedEventSchema = envelope("job.failed", { error: JobErrorSchema });
export const JobCancelledEventSchema = envelope("job.cancelled", {});

/** Any event the cluster sends to `callback_url`. */
export const GpuWebhookEventSchema = z.discriminatedUnion("type", [
  JobStartedEventSchema,
  JobProgressEventSchema,
  JobCheckpointEventSchema,
  JobSucceededEventSchema,
  JobFailedEventSchema,
  JobCancelledEventSchema,
]);
export type GpuWebhookEvent = z.infer<typeof GpuWebhookEventSchema>;
export type GpuWebhookEventType = GpuWebhookEvent["type"];
export const GPU_WEBHOOK_EVENT_TYPES: readonly GpuWebhookEventType[] = GpuWebhookEventSchema.options.map(
  (o) => o.shape.type.value,
);

/** One file the cluster wants to upload. */
export const UploadFileSchema = z.object({
  path: ArtifactPathSchema,
  content_type: z.string().min(1),
  size_bytes: z.int().min(0),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});
export type UploadFile = z.infer<typeof UploadFileSchema>;

/** What the cluster POSTs to `upload_urls_callback_url`. */
export const UploadUrlsRequestSchema = z.object({
  job_id: z.string().min(1),
  files: z.array(UploadFileSchema).min(1).max(32),
});
export type UploadUrlsRequest = z.infer<typeof UploadUrlsRequestSchema>;

/** Our answer: one short-lived URL per file; the cluster `PUT`s the bytes there. */
export const UploadUrlsResponseSchema = z.object({
  uploads: z
    .array(
      z.object({
        path: ArtifactPathSchema,
        signed_url: z.url(),
        expires_at: z.iso.datetime({ offset: true }).optional(),
      }),
    )
    .min(1),
});
export type UploadUrlsResponse = z.infer<typeof UploadUrlsResponseSchema>;
