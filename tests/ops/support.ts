/**
 * Fixtures for the ops tests, on the shared test stack: a superuser pool (the
 * DBA), jobs in a given state (through the monitoring fixtures, which keep
 * the dispatcher away), kept away from the live poller so a test's backdated
 * columns stay as it set them, and the ops.runbook_log entries of a target.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import type { LocalUser } from "../../stack/jwt.ts";
import { testStack } from "../helpers/stack.ts";
import { LLAMA, makeUser, readyDatasetRow, runningJob } from "../monitoring/support/fixtures.ts";

export { makeUser };

export function dbaPool(): pg.Pool {
  return new pg.Pool({ connectionString: testStack().DB_URL, max: 4 });
}

export function newUser(pool: pg.Pool): Promise<LocalUser> {
  return makeUser(pool, testStack().JWT_SECRET, "ops");
}

/** A short random tag for names this test owns (queues, cron jobs, error codes). */
export function tag(): string {
  return randomBytes(4).toString("hex");
}

/**
 * A running job on a made-up cluster job, which the live poller leaves alone
 * for a day (its next poll and any cluster stop are pushed out).
 */
export async function quietRunningJob(pool: pg.Pool, opts: { user?: LocalUser; status?: "running" | "dispatching" } = {}) {
  const r = await runningJob(pool, testStack().JWT_SECRET, opts);
  await pool.query("update private.job_monitor set next_poll_at = now() + interval '1 day' where job_id = $1", [r.jobId]);
  return r;
}

/** A job admitted as pending (server only): no dispatch message, so nothing dispatches it. */
export async function pendingJob(pool: pg.Pool, user?: LocalUser): Promise<{ jobId: string; user: LocalUser }> {
  const owner = user ?? (await newUser(pool));
  const datasetId = await readyDatasetRow(pool, owner);
  const { rows } = await pool.query<{ id: string }>(
    "insert into public.training_jobs (user_id, dataset_id, base_model_id, name, status) values ($1, $2, $3, 'ops test', 'pending') returning id",
    [owner.id, datasetId, LLAMA],
  );
  return { jobId: rows[0]!.id, user: owner };
}

/** A job moved to queued with its dispatch message removed in the same transaction. */
export async function queuedJobWithoutMessage(pool: pg.Pool): Promise<string> {
  const { jobId } = await pendingJob(pool);
  const c = await pool.connect();
  try {
    await c.query("begin");
    await c.query("update public.training_jobs set status = 'queued' where id = $1", [jobId]);
    await c.query("delete from pgmq.q_training_dispatch where message ->> 'job_id' = $1", [jobId]);
    await c.query("commit");
  } finally {
    c.release();
  }
  return jobId;
}

export type LogEntry = { action: string; target: string; reason: string | null; details: Record<string, unknown>; actor: string };

export async function runbookLog(pool: pg.Pool, target: string): Promise<LogEntry[]> {
  return (await pool.query<LogEntry>(
    "select action, target, reason, details, actor from ops.runbook_log where target = $1 order by id", [target])).rows;
}

export async function jobRow(pool: pg.Pool, jobId: string) {
  return (await pool.query<{ status: string; error: Record<string, unknown> | null; external_job_id: string | null }>(
    "select status, error, external_job_id from public.training_jobs where id = $1", [jobId])).rows[0]!;
}
