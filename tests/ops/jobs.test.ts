/**
 * ops.stuck_jobs, ops.failures_by_code, ops.usage_by_user_month and the job
 * runbooks ops.force_fail_job() / ops.force_cancel_job(), on jobs put in the
 * state each one is about (backdated where time matters).
 */
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sqlState } from "../helpers/db.ts";
import { waitFor } from "../helpers/wait.ts";
import { dbaPool, jobRow, newUser, pendingJob, queuedJobWithoutMessage, quietRunningJob, runbookLog, tag } from "./support.ts";

describe("ops jobs", () => {
  let db: pg.Pool;
  beforeAll(() => {
    db = dbaPool();
  });
  afterAll(async () => {
    await db.end();
  });

  const problems = async (jobId: string): Promise<string[]> =>
    (await db.query<{ problem: string }>("select problem from ops.stuck_jobs where job_id = $1 order by problem", [jobId])).rows.map((r) => r.problem);
  const set = (sql: string, jobId: string) => db.query(sql, [jobId]);

  it("stuck_jobs names each kind of stuck job and leaves healthy ones out", async () => {
    const healthy = await quietRunningJob(db);
    const silent = await quietRunningJob(db);
    await set("update private.job_monitor set last_report_at = now() - interval '1 hour', poll_failures = 7 where job_id = $1", silent.jobId);
    const stalled = await quietRunningJob(db);
    await set("update private.job_monitor set cluster_status = 'running', last_progress_at = now() - interval '20 minutes' where job_id = $1", stalled.jobId);
    const undelivered = await quietRunningJob(db);
    await set("update private.job_monitor set cluster_succeeded_at = now() - interval '10 minutes' where job_id = $1", undelivered.jobId);
    const overdue = await quietRunningJob(db);
    await set("update public.training_jobs set started_at = now() - interval '3 hours', estimated_finish_at = now() - interval '2 hours' where id = $1", overdue.jobId);
    const nearLimit = await quietRunningJob(db);
    await set("update public.training_jobs set started_at = now() - interval '45 hours' where id = $1", nearLimit.jobId);
    const pending = await pendingJob(db);
    await set("update public.training_jobs set status_changed_at = now() - interval '2 hours' where id = $1", pending.jobId);
    const queued = await queuedJobWithoutMessage(db);
    await set("update public.training_jobs set status_changed_at = now() - interval '1 hour' where id = $1", queued);
    const dispatching = await quietRunningJob(db, { status: "dispatching" });
    await set("update public.training_jobs set status_changed_at = now() - interval '10 minutes' where id = $1", dispatching.jobId);
    const cancelling = await quietRunningJob(db);
    await set("update public.training_jobs set status = 'cancelling' where id = $1", cancelling.jobId);
    await set("update private.cluster_stops set next_attempt_at = now() + interval '1 day', attempts = 3, last_error = '{\"message\": \"cluster said 503\"}' where job_id = $1", cancelling.jobId);
    await set("update public.training_jobs set status_changed_at = now() - interval '30 minutes' where id = $1", cancelling.jobId);

    expect(await problems(healthy.jobId)).toEqual([]);
    expect(await problems(silent.jobId)).toEqual(["cluster_silent"]);
    expect(await problems(stalled.jobId)).toEqual(["no_progress"]);
    expect(await problems(undelivered.jobId)).toEqual(["delivery_pending"]);
    expect(await problems(overdue.jobId)).toEqual(["overdue"]);
    expect(await problems(nearLimit.jobId)).toEqual(["near_time_limit"]);
    expect(await problems(pending.jobId)).toEqual(["pending_too_long"]);
    expect(await problems(queued)).toEqual(["queued_too_long"]);
    expect(await problems(dispatching.jobId)).toEqual(["dispatch_stuck"]);
    expect(await problems(cancelling.jobId)).toEqual(["cancel_unconfirmed"]);

    const row = (await db.query("select * from ops.stuck_jobs where job_id = $1", [cancelling.jobId])).rows[0];
    expect(row.detail).toContain("cluster stop attempts: 3 (cluster said 503)");
    expect(row.action).toContain("ops.force_cancel_job");
    expect(row.in_status_for.minutes).toBeGreaterThanOrEqual(29);
  });

  it("failures_by_code counts failed jobs, retried runs and rejected datasets per code over time", async () => {
    const code = `LT9${tag()}`;
    const user = await newUser(db);
    for (const finished of ["now()", "now() - interval '2 days'"]) {
      const { jobId } = await quietRunningJob(db, { user });
      await db.query("update public.training_jobs set status = 'failed', error = $2 where id = $1",
        [jobId, { code, kind: "system", message: `boom ${finished}` }]);
      await db.query(`update public.training_jobs set finished_at = ${finished} where id = $1`, [jobId]);
    }
    const { jobId: retried } = await quietRunningJob(db, { user });
    await db.query("insert into public.job_events (job_id, level, type, message, data) values ($1, 'warning', 'training.retry_scheduled', 'retrying', $2)",
      [retried, { error: { code, kind: "system", message: "node lost" } }]);
    const { rows: [d] } = await db.query<{ id: string }>(
      "insert into public.datasets (user_id, name, file_name) values ($1, 'ops', 'a.jsonl') returning id", [user.id]);
    await db.query("update public.datasets set status = 'validating' where id = $1", [d!.id]);
    await db.query("update public.datasets set status = 'error', error = $2 where id = $1", [d!.id, { code, kind: "user", message: "bad file" }]);

    const { rows } = await db.query("select source, kind, total, last_24h, last_7d, latest_message, latest_subject_id from ops.failures_by_code where code = $1 order by source", [code]);
    expect(rows).toEqual([
      { source: "dataset", kind: "user", total: "1", last_24h: "1", last_7d: "1", latest_message: "bad file", latest_subject_id: d!.id },
      { source: "job", kind: "system", total: "2", last_24h: "1", last_7d: "2", latest_message: "boom now()", latest_subject_id: expect.any(String) },
      { source: "retried_run", kind: "system", total: "1", last_24h: "1", last_7d: "1", latest_message: "node lost", latest_subject_id: retried },
    ]);
  });

  it("usage_by_user_month sums GPU hours and money per user and UTC month", async () => {
    const { jobId, user } = await quietRunningJob(db);
    const insert = (kind: string, gpuSeconds: number, amount: number, at: string) => db.query(
      `insert into public.cost_records (job_id, kind, gpu_seconds, amount, created_at) values ($1, $2, $3, $4, ${at})`,
      [jobId, kind, gpuSeconds, amount]);
    await insert("usage", 3600, 1.89, "now()");
    await insert("usage", 1800, 0.945, "now()");
    await insert("refund", 0, -0.5, "now()");
    await insert("usage", 7200, 3.78, "date_trunc('month', now() at time zone 'UTC') at time zone 'UTC' - interval '1 day'");

    const { rows } = await db.query(
      "select email, month::text, gpu_hours, usage_amount, refunds, charged, jobs from ops.usage_by_user_month where user_id = $1 order by month desc", [user.id]);
    const month = (await db.query("select date_trunc('month', now() at time zone 'UTC')::date::text as m")).rows[0].m;
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatchObject({ email: user.email, month, gpu_hours: "1.500", usage_amount: "2.8350", refunds: "-0.5000", charged: "2.3350", jobs: "1" });
    expect(rows[1]).toMatchObject({ gpu_hours: "2.000", charged: "3.7800" });
  });

  it("force_fail_job fails a running job with LT501, tells the owner, and the poller cancels its cluster job", async () => {
    const { jobId, externalJobId } = await quietRunningJob(db);
    const job = (await db.query("select * from ops.force_fail_job($1, 'cluster lost the node, OPS-42')", [jobId])).rows[0];
    expect(job).toMatchObject({ status: "failed", error: { code: "LT501", kind: "system", message: "Stopped by an operator: cluster lost the node, OPS-42" } });
    const events = (await db.query("select type, level::text from public.job_events where job_id = $1 and type like 'ops.%'", [jobId])).rows;
    expect(events).toEqual([{ type: "ops.force_failed", level: "error" }]);
    // The stop goes to the poller (woken now): the made-up cluster job is unknown there, which ends the stop.
    const stop = await waitFor(async () => {
      const r = (await db.query("select reason, outcome, done_at from private.cluster_stops where external_job_id = $1", [externalJobId])).rows[0];
      return r?.done_at ? r : false;
    }, { timeoutMs: 90_000, what: "the poller to act on the stop" });
    expect(stop).toMatchObject({ reason: "orphaned", outcome: "not_found" });
    expect(await runbookLog(db, jobId)).toEqual([expect.objectContaining({
      action: "force_fail_job", reason: "cluster lost the node, OPS-42", details: expect.objectContaining({ from: "running" }),
    })]);
  }, 180_000);

  it("force_fail_job and force_cancel_job refuse finished or unknown jobs and a missing reason", async () => {
    const { jobId } = await pendingJob(db);
    expect(await sqlState(db.query("select ops.force_fail_job($1, null)", [jobId]))).toBe("22023");
    expect(await sqlState(db.query("select ops.force_fail_job($1, 'x')", [jobId]))).toBe("22023");
    expect(await sqlState(db.query("select ops.force_fail_job(gen_random_uuid(), 'no such job')"))).toBe("LT510");
    await db.query("select ops.force_fail_job($1, 'first time')", [jobId]);
    expect(await sqlState(db.query("select ops.force_fail_job($1, 'second time')", [jobId]))).toBe("LT511");
    expect(await sqlState(db.query("select ops.force_cancel_job($1, 'second time')", [jobId]))).toBe("LT511");
    expect((await runbookLog(db, jobId)).map((e) => e.action)).toEqual(["force_fail_job"]);
  });

  it("force_cancel_job cancels a pending job at once", async () => {
    const { jobId } = await pendingJob(db);
    expect((await db.query("select status from ops.force_cancel_job($1, 'user asked by phone')", [jobId])).rows[0].status).toBe("cancelled");
    const events = (await db.query("select type from public.job_events where job_id = $1 and type like 'ops.%'", [jobId])).rows;
    expect(events).toEqual([{ type: "ops.force_cancelled" }]);
  });

  it("force_cancel_job moves a running job to cancelling with a cluster stop; immediate also marks it cancelled", async () => {
    const slow = await quietRunningJob(db);
    // The poller is not woken for real here: keep its stop pending so the state can be inspected.
    const c = await db.connect();
    try {
      await c.query("begin");
      const status = (await c.query("select status from ops.force_cancel_job($1, 'owner unreachable')", [slow.jobId])).rows[0].status;
      expect(status).toBe("cancelling");
      const stop = (await c.query("select reason, done_at from private.cluster_stops where job_id = $1", [slow.jobId])).rows;
      expect(stop).toEqual([{ reason: "cancel", done_at: null }]);
    } finally {
      await c.query("rollback");
      c.release();
    }

    const fast = await quietRunningJob(db);
    const job = (await db.query("select * from ops.force_cancel_job($1, 'cluster is gone', p_immediate => true)", [fast.jobId])).rows[0];
    expect(job.status).toBe("cancelled");
    const stops = (await db.query("select reason from private.cluster_stops where job_id = $1", [fast.jobId])).rows;
    expect(stops).toEqual([{ reason: "cancel" }]);
    expect(await runbookLog(db, fast.jobId)).toEqual([expect.objectContaining({
      action: "force_cancel_job", details: expect.objectContaining({ from: "running", to: "cancelled", immediate: true }),
    })]);
    expect((await jobRow(db, fast.jobId)).status).toBe("cancelled");
  });
});
