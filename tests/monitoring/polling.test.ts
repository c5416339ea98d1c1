/**
 * The poller (functions/poll-training-jobs) run in-process against its own
 * world's database (pg_cron's poll schedule removed, so only these runs
 * poll) with a stub cluster that controls every answer: single-flight under
 * overlapping ticks, work proportional to active jobs, timeouts, lost and
 * stalled runs, silence warnings, cancels during dispatch, worker slots and
 * the Edge Function's own door.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runPollCycle } from "../../functions/poll-training-jobs/cycle.ts";
import { waitFor } from "../helpers/wait.ts";
import { snapshotJob } from "./support/events.ts";
import { events, job, runningJob } from "./support/fixtures.ts";
import { cancelAs } from "./support/pipeline.ts";
import { type StubCluster, stubCluster } from "./support/stub-cluster.ts";
import { startWorld, type World } from "./support/world.ts";

describe("poll-training-jobs", () => {
  let w: World;
  beforeAll(async () => {
    w = await startWorld({ purpose: "mon-poll" });
  }, 180_000);
  afterAll(async () => {
    await w?.stop();
  });

  const cycle = (gpu: StubCluster, jobIds?: string[], extra: { slot?: number; budgetMs?: number } = {}) =>
    runPollCycle({ db: w.db, gpu, writeModelCard: async () => ({ storagePath: "", sizeBytes: 0 }) }, { ...(jobIds ? { jobIds } : {}), ...extra });
  const setting = (name: string, value: number) => w.db.query("update private.job_settings set value = $2 where name = $1", [name, value]);
  const running = () => runningJob(w.db, w.jwtSecret);
  /** The run ended and the job went back to queued for a new run (the world's dispatcher then picks it up at once). */
  const retried = async (jobId: string) =>
    (await events(w.db, jobId)).some((e) => e.type === "job.status_changed" && e.data.from === "running" && e.data.to === "queued")
    && (await events(w.db, jobId)).some((e) => e.type === "training.retry_scheduled");

  /**
   * Cancel as the owner with the database's worker wake-ups paused: the cancel RPC wakes the
   * world's own poller through pg_net, which would race the in-process cycle under test for the
   * job (and talk to another cluster than the stub). Only these runs poll, as this file intends.
   */
  const cancelWithoutWakeup = async (user: Parameters<typeof cancelAs>[1], jobId: string) => {
    await w.db.query("update vault.secrets set name = 'worker_wakeup_secret (paused)' where name = 'worker_wakeup_secret'");
    try {
      return await cancelAs(w, user, jobId);
    } finally {
      await w.db.query("update vault.secrets set name = 'worker_wakeup_secret' where name = 'worker_wakeup_secret (paused)'");
    }
  };

  it("two overlapping ticks poll every active job exactly once, never one job twice at once", async () => {
    const jobs = await Promise.all(Array.from({ length: 24 }, () => running()));
    const gpu = stubCluster();
    gpu.delayMs = 40;
    for (const j of jobs) gpu.jobs.set(j.externalJobId, snapshotJob(j.externalJobId, { step: 7 }));
    const ids = jobs.map((j) => j.jobId);
    await w.db.query("update private.job_settings set value = 5 where name = 'poll_batch_size'");
    try {
      const [a, b] = await Promise.all([cycle(gpu, ids), cycle(gpu, ids)]);
      expect(a.claimed + b.claimed).toBe(24);
      expect(a.claimed).toBeGreaterThan(0);
      expect(b.claimed).toBeGreaterThan(0);
    } finally {
      await setting("poll_batch_size", 50);
    }
    const gets = gpu.calls.filter((c) => c.op === "get").map((c) => c.id).sort();
    expect(gets).toEqual(jobs.map((j) => j.externalJobId).sort());
    expect(gpu.maxInFlightPerJob()).toBe(1);
    for (const j of jobs) expect((await job(w.db, j.jobId)).current_step).toBe(7);
    // Polled jobs are not due again before poll_interval_seconds.
    expect((await cycle(gpu, ids)).claimed).toBe(0);
  });

  it("claims scan only the monitored jobs, through the partial index", async () => {
    // The planner may prefer a scan on a tiny table; with scans discouraged the partial index must match the claim's predicate.
    const c = await w.db.connect();
    try {
      await c.query("begin");
      await c.query("set local enable_seqscan = off");
      const plan = await c.query("explain (format json) select * from private.job_monitor m where m.needs_poll and m.next_poll_at <= now() order by m.next_poll_at limit 50");
      expect(JSON.stringify(plan.rows[0])).toContain("job_monitor_due_idx");
      const stops = await c.query("explain (format json) select * from private.cluster_stops s where s.done_at is null and s.next_attempt_at <= now() order by s.next_attempt_at limit 50");
      expect(JSON.stringify(stops.rows[0])).toContain("cluster_stops_due_idx");
      await c.query("rollback");
    } finally {
      c.release();
    }
    const finished = await running();
    await w.db.query("update public.training_jobs set status = 'failed', error = '{\"code\":\"x\",\"message\":\"m\",\"kind\":\"user\"}' where id = $1", [finished.jobId]);
    const row = await w.db.query("select active, needs_poll from private.job_monitor where job_id = $1", [finished.jobId]);
    expect(row.rows[0]).toEqual({ active: false, needs_poll: false });
  });

  it("a job over MAX_TRAINING_DURATION_HOURS is marked timed_out and its cluster job cancelled", async () => {
    const j = await running();
    await w.db.query("update public.training_jobs set started_at = now() - interval '49 hours' where id = $1", [j.jobId]);
    const gpu = stubCluster();
    const report = await cycle(gpu, [j.jobId]);
    expect(report.results).toMatchObject({ "timeout:timed_out": 1, "stop:cancelled": 1 });
    const row = await job(w.db, j.jobId);
    expect(row.status).toBe("timed_out");
    expect(row.error).toMatchObject({ code: "LT410", kind: "system" });
    expect(gpu.calls).toContainEqual({ op: "cancel", id: j.externalJobId });
    const stop = await w.db.query("select reason, outcome, done_at is not null as done from private.cluster_stops where external_job_id = $1", [j.externalJobId]);
    expect(stop.rows[0]).toEqual({ reason: "timeout", outcome: "cancelled", done: true });
    const notes = await w.db.query("select kind from public.notifications where job_id = $1", [j.jobId]);
    expect(notes.rows).toEqual([{ kind: "job.timed_out" }]);
  });

  it("a cluster job that answers 404 past the grace period is a lost run: retried automatically", async () => {
    const j = await running();
    const gpu = stubCluster();
    gpu.missing.add(j.externalJobId);
    expect((await cycle(gpu, [j.jobId])).results).toMatchObject({ "poll:failed": 1 });
    expect((await job(w.db, j.jobId)).status).toBe("running"); // within the grace period
    await w.db.query("update private.job_monitor set not_found_since = now() - interval '10 minutes', next_poll_at = now() where job_id = $1", [j.jobId]);
    await cycle(gpu, [j.jobId]);
    expect(await retried(j.jobId)).toBe(true);
    const ev = await events(w.db, j.jobId);
    expect(ev.find((e) => e.type === "monitor.run_ended")!.data).toMatchObject({ error: { code: "LT411" }, stop_cluster_job: false });
    expect(ev.map((e) => e.type)).toContain("training.retry_scheduled");
  });

  it("a silent cluster gets a warning event, then the run is declared lost and its cluster job stopped", async () => {
    const j = await running();
    const gpu = stubCluster();
    gpu.failing.add(j.externalJobId);
    await w.db.query("update private.job_monitor set last_report_at = now() - interval '6 minutes' where job_id = $1", [j.jobId]);
    await cycle(gpu, [j.jobId]);
    expect((await events(w.db, j.jobId)).filter((e) => e.type === "monitor.cluster_silent")).toHaveLength(1);
    await w.db.query("update private.job_monitor set last_report_at = now() - interval '20 minutes', next_poll_at = now() where job_id = $1", [j.jobId]);
    await cycle(gpu, [j.jobId]);
    expect(await retried(j.jobId)).toBe(true);
    const stop = await w.db.query("select reason from private.cluster_stops where external_job_id = $1", [j.externalJobId]);
    expect(stop.rows).toEqual([{ reason: "lost" }]);
  });

  it("a run stuck at one step for monitor_stall_after_seconds is stopped and retried", async () => {
    const j = await running();
    const gpu = stubCluster();
    gpu.jobs.set(j.externalJobId, snapshotJob(j.externalJobId, { step: 3 }));
    await cycle(gpu, [j.jobId]);
    await w.db.query("update private.job_monitor set last_progress_at = now() - interval '1 hour', next_poll_at = now() where job_id = $1", [j.jobId]);
    await cycle(gpu, [j.jobId]);
    expect(await retried(j.jobId)).toBe(true);
    expect((await events(w.db, j.jobId)).find((e) => e.type === "monitor.run_ended")!.data).toMatchObject({ error: { code: "LT412" } });
    expect(gpu.calls).toContainEqual({ op: "cancel", id: j.externalJobId });
  });

  it("a cancel during dispatch waits while a submit may be in flight, then stops the cluster job found by key, or confirms", async () => {
    const gpu = stubCluster();
    for (const found of [false, true]) {
      const j = await runningJob(w.db, w.jwtSecret, { status: "dispatching" });
      const key = `lora-job-${j.jobId}-run-1`;
      // The dispatcher saved its request and holds the job's message while it submits.
      await w.db.query(
        "insert into private.training_job_dispatch (job_id, cluster_idempotency_key, submit_started_at, lease_until) values ($1, $2, now(), now() + interval '1 minute')",
        [j.jobId, key],
      );
      const msg = (await w.db.query("select pgmq.send(queue_name => 'training_dispatch', msg => $1::jsonb, delay => 60) as id",
        [JSON.stringify({ job_id: j.jobId })])).rows[0].id;
      if (found) gpu.jobs.set(j.externalJobId, snapshotJob(j.externalJobId, { idempotency_key: key, step: 2 }));
      await cancelWithoutWakeup(j.user, j.jobId);
      expect((await job(w.db, j.jobId)).status).toBe("cancelling");
      expect((await cycle(gpu, [j.jobId])).claimed).toBe(0); // a submit may still be on its way
      // The dispatcher finished with the message (its outcome is recorded with the delete).
      await w.db.query("select pgmq.delete(queue_name => 'training_dispatch', msg_id => $1)", [msg]);
      await cycle(gpu, [j.jobId]);
      const row = await job(w.db, j.jobId);
      expect(row.status).toBe("cancelled");
      expect(row.external_job_id).toBe(found ? j.externalJobId : null);
      expect(gpu.calls.some((c) => c.op === "cancel" && c.id === j.externalJobId)).toBe(found);
    }
  });

  it("a cancel during dispatch before any submit was saved is confirmed at once", async () => {
    const j = await runningJob(w.db, w.jwtSecret, { status: "dispatching" });
    await cancelWithoutWakeup(j.user, j.jobId);
    await cycle(stubCluster(), [j.jobId]);
    expect((await job(w.db, j.jobId)).status).toBe("cancelled");
    expect((await events(w.db, j.jobId)).map((e) => e.type)).toContain("cancel.nothing_to_stop");
  });

  it("one worker per slot: a second worker for a busy slot returns at once", async () => {
    const gpu = stubCluster();
    const none = ["00000000-0000-4000-8000-000000000000"];
    expect((await w.db.query("select private.poll_acquire_slot(3, 60) as ok")).rows[0].ok).toBe(true);
    expect((await cycle(gpu, none, { slot: 3, budgetMs: 500 })).skipped).toBe("slot_busy");
    await w.db.query("select private.poll_release_slot(3)");
    const ran = await cycle(gpu, none, { slot: 3, budgetMs: 500 });
    expect(ran.skipped).toBeUndefined();
    const slot = await w.db.query("select lease_until from private.poll_workers where slot = 3");
    expect(slot.rows[0].lease_until).toBeNull();
  });

  it("the Edge Function only answers the service role; pg_cron's tick wakes it through pg_net", async () => {
    const call = (key: string, body: unknown) => fetch(`${w.apiUrl}/functions/v1/poll-training-jobs`, {
      method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, body: JSON.stringify(body),
    });
    expect((await call(w.anonKey, { wait: true })).status).toBe(403);
    const ok = await call(w.serviceRoleKey, { wait: true, job_ids: ["00000000-0000-4000-8000-000000000000"] });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ success: true, data: { claimed: 0 } });
    await running();
    const before = (await w.db.query<{ runs: number }>("select coalesce(max(runs), 0)::int as runs from private.poll_workers where slot = 1")).rows[0]!.runs;
    const woken = (await w.db.query<{ n: number }>("select private.poll_tick() as n")).rows[0]!.n;
    expect(woken).toBeGreaterThanOrEqual(1);
    // The woken worker (pg_net -> gateway -> Deno) takes slot 1.
    const runs = async () => (await w.db.query<{ runs: number }>("select runs from private.poll_workers where slot = 1")).rows[0]?.runs ?? 0;
    await waitFor(async () => (await runs()) > before, { timeoutMs: 20_000, what: "the woken worker to take its slot" });
  });
});
