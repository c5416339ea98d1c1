/**
 * The dispatch worker's side of the database: one call per state transition,
 * each a single statement running one SQL function of
 * supabase/migrations/20261126130700_dispatch_state.sql, so it commits
 * atomically (the message is deleted in the transaction that records its
 * outcome). Web APIs + zod only; `db` is a pg Pool or Client.
 */
import { z } from "zod";
import type { Queryable } from "../_shared/db.ts";
import {
  type DatasetSpec,
  DatasetSpecSchema,
  GpuTrainingConfigSchema,
  ResumeFromSchema,
  SubmitJobRequestSchema,
  type SubmitJobRequest,
} from "../_shared/gpu/types.ts";

/** A job event the worker appends: `job_events` columns. */
export type DispatchEvent = {
  level: "debug" | "info" | "warning" | "error";
  type: string;
  message: string;
  data?: Record<string, unknown>;
};

/** What `job.error` holds when dispatch fails a job. */
export type JobFailure = { code: string; message: string; kind: "user" | "system"; details?: unknown };

const ClaimedSchema = z.object({
  action: z.enum(["submit", "recover"]),
  msg_id: z.number().int(),
  read_ct: z.number().int(),
  job_id: z.uuid(),
  run: z.number().int().min(1),
  dispatch_attempt: z.number().int().min(1),
  max_attempts: z.number().int().min(1),
  cluster_idempotency_key: z.string().min(1),
  request: SubmitJobRequestSchema.nullable(),
  dataset_bucket: z.string().min(1),
  dataset_path: z.string().min(1),
  /** The job's validation dataset file (same bucket), signed and sent as `config.validation.dataset_url`. */
  validation_dataset_path: z.string().min(1).nullish(),
  dataset_url_ttl_seconds: z.number().int().positive(),
  cluster_config: GpuTrainingConfigSchema,
  /** The checkpoint this run continues from (a retry, or a job created from a checkpoint); null: step 0. */
  resume_from: ResumeFromSchema.nullish(),
});
const SettledSchema = z.object({
  action: z.enum(["busy", "done", "not_admitted", "gone", "discarded", "poisoned"]),
  msg_id: z.number().int(),
  job_id: z.string().optional(),
  status: z.string().optional(),
  read_ct: z.number().int().optional(),
  reason: z.string().optional(),
});

/** A job the worker must submit (or recover: look it up at the cluster first). */
export type Claimed = z.infer<typeof ClaimedSchema>;
/** A message the database settled by itself. */
export type Settled = z.infer<typeof SettledSchema>;
export type Claim = Claimed | Settled;
export const ClaimSchema = z.union([ClaimedSchema, SettledSchema]);

/** Whether the worker has to dispatch the job of this claim. */
export function isClaimed(claim: Claim): claim is Claimed {
  return claim.action === "submit" || claim.action === "recover";
}

/** Where a message came from, for the record functions. */
export type MessageRef = { queue: string; msgId: number; jobId: string };

/** The outcome the database reports for a record call. */
export type RecordOutcome = { action: string; [key: string]: unknown };

async function one<T>(db: Queryable, sql: string, params: unknown[]): Promise<T> {
  const { rows } = await db.query<{ r: T }>(sql, params);
  return rows[0]!.r;
}

/** The database calls of the dispatch worker. */
export function dispatchStore(db: Queryable) {
  return {
    /** Read and claim the next message of `queue`; null when the queue is empty. */
    async next(queue: string): Promise<Claim | null> {
      const raw = await one<unknown>(db, "select private.dispatch_next($1) as r", [queue]);
      return raw === null ? null : ClaimSchema.parse(raw);
    },

    /**
     * How the cluster must read the job's data (`dataset_spec`): the line format,
     * chat template and masking rule validation counted with, and the lines it
     * rejected in a tolerated file. Null when the dataset has no format.
     */
    async datasetSpec(jobId: string): Promise<DatasetSpec | null> {
      const raw = await one<unknown>(db, "select private.dispatch_dataset_spec($1) as r", [jobId]);
      return DatasetSpecSchema.nullable().parse(raw ?? null);
    },

    /** Store the body about to be sent; false when the job is no longer dispatching (send nothing). */
    async saveRequest(jobId: string, request: SubmitJobRequest, datasetUrlExpiresAt: Date): Promise<boolean> {
      const saved = await one<boolean | null>(db, "select private.dispatch_save_request($1, $2, $3) as r", [
        jobId, JSON.stringify(request), datasetUrlExpiresAt.toISOString(),
      ]);
      return saved === true;
    },

    async recordSubmitted(
      ref: MessageRef, externalJobId: string, details: Record<string, unknown>, events: DispatchEvent[],
    ): Promise<RecordOutcome> {
      return await one(db, "select private.dispatch_record_submitted($1, $2, $3, $4, $5, $6) as r", [
        ref.queue, ref.msgId, ref.jobId, externalJobId, JSON.stringify(details), JSON.stringify(events),
      ]);
    },

    async recordRetry(
      ref: MessageRef, error: Record<string, unknown>, retryAfterSeconds: number | null, events: DispatchEvent[],
    ): Promise<RecordOutcome> {
      return await one(db, "select private.dispatch_record_retry($1, $2, $3, $4, $5, $6) as r", [
        ref.queue, ref.msgId, ref.jobId, JSON.stringify(error), retryAfterSeconds, JSON.stringify(events),
      ]);
    },

    async recordFailure(ref: MessageRef, failure: JobFailure, events: DispatchEvent[]): Promise<RecordOutcome> {
      return await one(db, "select private.dispatch_record_failure($1, $2, $3, $4, $5) as r", [
        ref.queue, ref.msgId, ref.jobId, JSON.stringify(failure), JSON.stringify(events),
      ]);
    },

    /** Drop a message whose job needs nothing more from this worker. */
    async release(ref: MessageRef): Promise<void> {
      await db.query("select pgmq.delete(queue_name => $1, msg_id => $2::bigint)", [ref.queue, ref.msgId]);
    },
  };
}

export type DispatchStore = ReturnType<typeof dispatchStore>;
