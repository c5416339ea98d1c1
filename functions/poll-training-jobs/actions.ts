/**
 * What the poller does with one claimed row (private.poll_claim):
 *
 * - poll: GET the cluster job (metric points after the last stored step)
 *   and apply it; a failed GET is recorded (backoff, silence warning, lost
 *   run after a grace period).
 * - stop: cancel the cluster job; the cluster's answer confirms an owner's
 *   cancel. "Already finished" (409) applies the final state instead;
 *   "not found" (404) ends the stop (and confirms a cancel).
 * - timeout: mark the job timed_out; its stop is claimed next round.
 * - find: a job cancelled during dispatch: look its cluster job up by
 *   idempotency key; stop it if it exists, else confirm the cancel.
 * - model_card: write the README.md of a succeeded job.
 */
import type { Queryable } from "../_shared/db.ts";
import { isGpuClusterError } from "../_shared/gpu/errors.ts";
import type { Job } from "../_shared/gpu/types.ts";
import { type ApplyOutcome, applyPolledJob } from "../_shared/job-updates.ts";
import type { ModelCardWriter } from "../_shared/model-card-delivery.ts";

/** A row of private.poll_claim(). */
export type ClaimedRow = {
  action: "poll" | "stop" | "timeout" | "find" | "model_card";
  job_id: string;
  external_job_id: string | null;
  metrics_since_step: number | null;
  reason: string | null;
  cluster_key: string | null;
};

/** The GPU cluster calls the poller makes. */
export type PollCluster = {
  getJob(jobId: string, opts?: { metricsSinceStep?: number }): Promise<Job>;
  cancelJob(jobId: string): Promise<Job>;
  findJobByIdempotencyKey(key: string): Promise<Job | null>;
};

export type ActionDeps = { db: Queryable; gpu: PollCluster; writeModelCard: ModelCardWriter };

/** What one action did, for the worker's report. */
export type ActionResult = { action: ClaimedRow["action"]; job_id: string; result: string; outcome?: ApplyOutcome };

/** `{ kind, message, status?, code? }` for the database's failure records. */
export function errorInfo(err: unknown): { kind: string; message: string; status?: number; code?: string } {
  if (isGpuClusterError(err)) {
    return {
      kind: err.upstreamStatus === 404 ? "not_found" : err.kind,
      message: err.message,
      ...(err.upstreamStatus === undefined ? {} : { status: err.upstreamStatus }),
      ...(err.upstreamCode === undefined ? {} : { code: err.upstreamCode }),
    };
  }
  return { kind: "internal", message: err instanceof Error ? err.message : String(err) };
}

async function poll(deps: ActionDeps, row: ClaimedRow): Promise<ActionResult> {
  let job: Job;
  try {
    job = await deps.gpu.getJob(row.external_job_id!, { metricsSinceStep: row.metrics_since_step ?? 0 });
  } catch (err) {
    const info = errorInfo(err);
    const { rows } = await deps.db.query<{ r: string }>("select private.poll_failed($1, $2::jsonb) as r", [
      row.job_id, JSON.stringify(info),
    ]);
    return { action: "poll", job_id: row.job_id, result: `failed:${info.kind}:${rows[0]?.r}` };
  }
  const outcome = await applyPolledJob(deps.db, job);
  if (outcome.model_card_pending) await deps.writeModelCard(row.job_id).catch(() => {});
  return { action: "poll", job_id: row.job_id, result: outcome.outcome, outcome };
}

async function stop(deps: ActionDeps, row: ClaimedRow): Promise<ActionResult> {
  const ext = row.external_job_id!;
  const record = (outcome: string | null, error?: unknown) =>
    deps.db.query("select private.cluster_stop_result($1, $2, $3::jsonb)", [
      ext, outcome, error === undefined ? null : JSON.stringify(errorInfo(error)),
    ]);
  let job: Job;
  try {
    job = await deps.gpu.cancelJob(ext);
    await record("cancelled");
  } catch (err) {
    const info = errorInfo(err);
    if (info.kind === "not_found") {
      await record("not_found", err);
      return { action: "stop", job_id: row.job_id, result: "not_found" };
    }
    if (info.code !== "job_not_cancellable") {
      await record(null, err);
      return { action: "stop", job_id: row.job_id, result: `failed:${info.kind}` };
    }
    // The cluster job finished before the stop reached it: apply how it ended.
    await record("already_finished", err);
    try {
      job = await deps.gpu.getJob(ext);
    } catch {
      return { action: "stop", job_id: row.job_id, result: "already_finished" };
    }
  }
  const outcome = await applyPolledJob(deps.db, job);
  if (outcome.model_card_pending) await deps.writeModelCard(row.job_id).catch(() => {});
  return { action: "stop", job_id: row.job_id, result: job.status, outcome };
}

async function find(deps: ActionDeps, row: ClaimedRow): Promise<ActionResult> {
  let found: Job | null = null;
  try {
    if (row.cluster_key) found = await deps.gpu.findJobByIdempotencyKey(row.cluster_key);
  } catch (err) {
    await deps.db.query("select private.poll_failed($1, $2::jsonb)", [row.job_id, JSON.stringify(errorInfo(err))]);
    return { action: "find", job_id: row.job_id, result: "failed" };
  }
  const { rows } = await deps.db.query<{ r: string }>("select private.find_result($1, $2) as r", [row.job_id, found?.id ?? null]);
  return { action: "find", job_id: row.job_id, result: rows[0]?.r ?? "unknown" };
}

/** Carry out one claimed row; never throws for cluster failures (they are recorded). */
export async function runAction(deps: ActionDeps, row: ClaimedRow): Promise<ActionResult> {
  switch (row.action) {
    case "poll":
      return await poll(deps, row);
    case "stop":
      return await stop(deps, row);
    case "find":
      return await find(deps, row);
    case "timeout": {
      const { rows } = await deps.db.query<{ r: unknown }>("select private.time_out_job($1) as r", [row.job_id]);
      await deps.db.query("update private.job_monitor set lease_until = null, next_poll_at = now() where job_id = $1", [row.job_id]);
      return { action: "timeout", job_id: row.job_id, result: rows[0]?.r ? "timed_out" : "not_due" };
    }
    case "model_card": {
      const card = await deps.writeModelCard(row.job_id);
      return { action: "model_card", job_id: row.job_id, result: card.storagePath };
    }
  }
}
