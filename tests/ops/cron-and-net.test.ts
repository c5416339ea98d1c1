/**
 * ops.cron_job_health, ops.failed_http_requests and the pruning runbooks
 * (cron history, pg_net responses, metrics) on the real pg_cron and pg_net
 * tables: cron jobs of the test's own with their run history, requests
 * pg_net really sent, and a finished job with a long metrics series.
 */
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sqlState } from "../helpers/db.ts";
import { testStack } from "../helpers/stack.ts";
import { waitFor } from "../helpers/wait.ts";
import { dbaPool, quietRunningJob, runbookLog, tag } from "./support.ts";

const NEVER = "0 0 31 2 *"; // February 31st: pg_cron never runs it, so the test's history is all there is.

describe("ops cron and pg_net", () => {
  let db: pg.Pool;
  const cronJobs: string[] = [];
  beforeAll(() => {
    db = dbaPool();
  });
  afterAll(async () => {
    for (const name of cronJobs) await db.query("select cron.unschedule($1)", [name]).catch(() => {});
    await db.end();
  });

  async function schedule(schedule: string): Promise<{ name: string; id: string }> {
    const name = `ops-test-${tag()}`;
    cronJobs.push(name);
    const id = (await db.query<{ id: string }>("select cron.schedule($1, $2, 'select 1') as id", [name, schedule])).rows[0]!.id;
    return { name, id };
  }

  /** One row of run history, as pg_cron writes it. */
  async function run(jobId: string, status: string, startedAgo: string, opts: { ended?: boolean; message?: string } = {}) {
    await db.query(
      `insert into cron.job_run_details (jobid, job_pid, database, username, command, status, return_message, start_time, end_time)
       values ($1, 0, current_database(), current_user, 'select 1', $2, $3, now() - $4::interval, ${opts.ended === false ? "null" : "now() - $4::interval + interval '1 second'"})`,
      [jobId, status, opts.message ?? (status === "succeeded" ? "1 row" : null), startedAgo]);
  }

  const health = async (name: string) => (await db.query("select * from ops.cron_job_health where jobname = $1", [name])).rows[0];

  it("cron_job_health tells failing, hung, never-run, inactive and healthy jobs apart", async () => {
    const failing = await schedule(NEVER);
    await run(failing.id, "succeeded", "2 hours");
    await run(failing.id, "failed", "1 minute", { message: "ERROR: division by zero" });
    const hung = await schedule(NEVER);
    await run(hung.id, "running", "20 minutes", { ended: false });
    const never = await schedule(NEVER);
    const inactive = await schedule(NEVER);
    await db.query("update cron.job set active = false where jobid = $1", [inactive.id]);
    const ok = await schedule(NEVER);
    await run(ok.id, "succeeded", "5 minutes");

    const f = await health(failing.name);
    expect(f).toMatchObject({ health: "failing", runs_24h: "2", failed_24h: "1", last_status: "failed", last_failure_message: "ERROR: division by zero" });
    expect(f.last_success_at).not.toBeNull();
    expect((await health(hung.name)).health).toBe("hung");
    expect((await health(never.name)).health).toBe("never_run");
    expect((await health(inactive.name)).health).toBe("inactive");
    expect(await health(ok.name)).toMatchObject({ health: "ok", expected_every_seconds: null, last_message: "1 row" });
  });

  it("cron_job_health calls a per-minute job late after three missed minutes", async () => {
    // Stay clear of a minute boundary, when pg_cron would really run the job and become its last run.
    await waitFor(() => new Date().getSeconds() < 45, { timeoutMs: 20_000, intervalMs: 500, what: "the first 45 s of a minute" });
    const late = await schedule("* * * * *");
    await run(late.id, "succeeded", "10 minutes");
    expect(await health(late.name)).toMatchObject({ health: "late", expected_every_seconds: 60 });
    await db.query("select cron.unschedule($1)", [late.name]);
  });

  it("the project's own cron jobs are listed, with the nightly history prune", async () => {
    const names = (await db.query<{ jobname: string }>("select jobname from ops.cron_job_health")).rows.map((r) => r.jobname);
    expect(names).toEqual(expect.arrayContaining(["validate-datasets", "dispatch-training-jobs", "poll-training-jobs", "ops-prune-cron-history"]));
  });

  it("prune_cron_history deletes runs that ended before the window and keeps the rest", async () => {
    const job = await schedule(NEVER);
    await run(job.id, "succeeded", "10 days");
    await run(job.id, "failed", "8 days");
    await run(job.id, "succeeded", "1 day");
    expect(await sqlState(db.query("select ops.prune_cron_history(interval '5 minutes')"))).toBe("22023");
    const deleted = Number((await db.query("select ops.prune_cron_history(interval '7 days') as n")).rows[0].n);
    expect(deleted).toBeGreaterThanOrEqual(2);
    const left = (await db.query("select status from cron.job_run_details where jobid = $1", [job.id])).rows;
    expect(left).toEqual([{ status: "succeeded" }]);
    const log = await runbookLog(db, "cron.job_run_details");
    expect(log.at(-1)).toMatchObject({ action: "prune_cron_history", details: { keep: "7 days", deleted } });
  });

  it("failed_http_requests lists pg_net requests that could not connect or got an error status, not successful ones", async () => {
    const api = testStack().API_URL;
    const send = async (url: string) => (await db.query<{ id: string }>(
      "select net.http_get(url => $1, headers => jsonb_build_object('Authorization', 'Bearer ' || $2::text)) as id", [url, testStack().ANON_KEY])).rows[0]!.id;
    const refused = await send("http://127.0.0.1:1/ops-test");
    const missing = await send(`${api}/functions/v1/ops-test-${tag()}`);
    const fine = await send(`${api}/functions/v1/health`);
    await waitFor(async () => (await db.query("select count(*)::int as n from net._http_response where id = any($1)", [[refused, missing, fine]])).rows[0].n === 3,
      { timeoutMs: 60_000, what: "pg_net to answer the three requests" });

    const rows = (await db.query("select id::text, failure, status_code, error_msg from ops.failed_http_requests where id = any($1) order by id", [[refused, missing, fine]])).rows;
    expect(rows).toEqual([
      { id: refused, failure: "network", status_code: null, error_msg: expect.stringMatching(/connect/i) },
      { id: missing, failure: "client_error", status_code: 404, error_msg: null },
    ]);
  }, 180_000);

  it("prune_http_responses deletes responses older than the window", async () => {
    const old = (await db.query<{ id: string }>("select net.http_get(url => 'http://127.0.0.1:1/ops-old') as id")).rows[0]!.id;
    await waitFor(async () => (await db.query("select 1 from net._http_response where id = $1", [old])).rowCount === 1, { timeoutMs: 60_000 });
    await db.query("update net._http_response set created = now() - interval '2 hours' where id = $1", [old]);
    const recent = (await db.query<{ id: string }>("select net.http_get(url => 'http://127.0.0.1:1/ops-new') as id")).rows[0]!.id;
    await waitFor(async () => (await db.query("select 1 from net._http_response where id = $1", [recent])).rowCount === 1, { timeoutMs: 60_000 });

    expect(Number((await db.query("select ops.prune_http_responses(interval '1 hour') as n")).rows[0].n)).toBeGreaterThanOrEqual(1);
    const left = (await db.query("select id::text from net._http_response where id = any($1)", [[old, recent]])).rows.map((r) => r.id);
    expect(left).toEqual([recent]);
  }, 180_000);

  it("prune_metrics thins old finished jobs to their loss curve, so the chart is unchanged, and leaves recent jobs alone", async () => {
    const curve = async (jobId: string) => (await db.query("select * from public.job_loss_curve($1, 60)", [jobId])).rows;
    const count = async (jobId: string) => Number((await db.query("select count(*) as n from public.metrics_points where job_id = $1", [jobId])).rows[0].n);
    const finishedJob = async (finishedAgo: string) => {
      const { jobId } = await quietRunningJob(db);
      await db.query(
        `insert into public.metrics_points (job_id, step, epoch, train_loss, eval_loss, learning_rate, tokens_per_second)
         select $1, s, s / 1000.0, 2.5 * exp(-s / 400.0) + 0.3 + 0.05 * sin(s), case when s % 50 = 0 then 2.6 * exp(-s / 400.0) + 0.35 end, 2e-4, 4000
           from generate_series(1, 2000) s`, [jobId]);
      await db.query("update public.training_jobs set status = 'succeeded' where id = $1", [jobId]);
      await db.query(`update public.training_jobs set finished_at = now() - interval '${finishedAgo}' where id = $1`, [jobId]);
      return jobId;
    };
    const old = await finishedJob("100 days");
    const recent = await finishedJob("10 days");
    const before = await curve(old);

    expect(await sqlState(db.query("select * from ops.prune_metrics(interval '90 days', 5)"))).toBe("22023");
    const result = (await db.query("select * from ops.prune_metrics(interval '90 days', 60)")).rows[0];
    expect(result.jobs).toBeGreaterThanOrEqual(1);
    expect(await count(old)).toBe(before.length);
    expect(await curve(old)).toEqual(before);
    expect(await count(recent)).toBe(2000);
    expect((await runbookLog(db, "public.metrics_points")).at(-1)).toMatchObject({ action: "prune_metrics" });
  });
});
