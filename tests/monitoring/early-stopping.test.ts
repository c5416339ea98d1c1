/**
 * Early stopping made visible to the job's owner: the cluster's
 * `Job.early_stopping` lands in `training_jobs.early_stopping` through the one
 * update path (private.apply_cluster_update), a job that stops early gets one
 * `training.stopped_early` event, and its success notification and model card
 * say so. Real runs on the GPU simulator (which implements early stopping) in
 * this file's own world, driven by polling only and by webhooks only; then the
 * SQL path by hand: clients cannot write the column, and stale or older
 * reports never regress it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyPolledJob, applyWebhookEvent } from "../../functions/_shared/job-updates.ts";
import { renderModelCard } from "../../functions/_shared/model-card.ts";
import type { EarlyStopping } from "../../functions/_shared/gpu/types.ts";
import type { LocalUser } from "../../stack/jwt.ts";
import { readSafetensors } from "../gpu/support/safetensors.ts";
import { waitFor } from "../helpers/wait.ts";
import { artifact, checkpoint, event, nodeFailure, snapshotJob } from "./support/events.ts";
import { events, job, makeUser, runningJob } from "./support/fixtures.ts";
import { clusterJob, createJob, uploadedDataset, waitForStatus } from "./support/pipeline.ts";
import { startWorld, type World } from "./support/world.ts";

/** 120 examples less a 10 % split, 3 epochs of batch 4: 81 steps; with these evaluations the simulator stops at step 70. */
const EARLY_STOPPING = {
  epochs: 3, batch_size: 4, gradient_accumulation_steps: 1, validation: { split_fraction: 0.1 },
  eval_every_steps: 5, checkpoint_every_steps: 5, early_stopping_patience: 2,
};

describe("early stopping", () => {
  let w: World;
  let user: LocalUser;
  let datasetId: string;
  beforeAll(async () => {
    w = await startWorld({ purpose: "mon-es", timeScale: 15 });
    await w.db.query("update private.job_settings set value = 1 where name = 'poll_interval_seconds'");
    await w.db.query("update private.job_settings set value = 20 where name = 'poll_worker_budget_seconds'");
    ({ user, datasetId } = await uploadedDataset(w));
    await w.db.query("insert into private.user_quotas (user_id, max_active_jobs) values ($1, 20)", [user.id]);
  }, 180_000);
  afterAll(async () => {
    await w?.stop();
  });

  const earlyStoppingOf = async (jobId: string): Promise<EarlyStopping | null> =>
    (await w.db.query("select early_stopping from public.training_jobs where id = $1", [jobId])).rows[0]!.early_stopping;

  async function modelCard(jobId: string): Promise<string> {
    const path = await waitFor(async () =>
      (await w.db.query<{ storage_path: string }>(
        "select storage_path from public.model_artifacts where job_id = $1 and kind = 'model_card'", [jobId])).rows[0]?.storage_path,
    { timeoutMs: 20_000, what: "the model card" });
    const { data, error } = await w.serviceClient().storage.from("lora-models").download(path);
    if (error) throw error;
    return await data.text();
  }

  /** What a job that stopped early shows its owner, whichever way the cluster reported. */
  async function expectStoppedEarly(jobId: string) {
    const row = await job(w.db, jobId);
    expect(row.status).toBe("succeeded");
    const cluster = clusterJob(w, row.external_job_id!);
    expect(cluster.early_stopping?.stopped_early).toBe(true);
    expect(cluster.progress.step).toBeLessThan(cluster.progress.total_steps!);
    expect(row).toMatchObject({ current_step: cluster.progress.step, total_steps: cluster.progress.total_steps });
    // The column holds exactly what the cluster reported, and the owner reads it under RLS.
    expect(await earlyStoppingOf(jobId)).toEqual(cluster.early_stopping);
    const own = await w.userClient(user.token).from("training_jobs").select("early_stopping").eq("id", jobId);
    expect(own).toMatchObject({ error: null, data: [{ early_stopping: cluster.early_stopping }] });
    const es = cluster.early_stopping!;

    // One event, saying where it stopped and what was best.
    const stopped = (await events(w.db, jobId)).filter((e) => e.type === "training.stopped_early");
    expect(stopped).toHaveLength(1);
    expect(stopped[0]!.level).toBe("info");
    expect(stopped[0]!.message).toContain(`stopped early at step ${row.current_step} of ${row.total_steps}`);
    expect(stopped[0]!.message).toContain(`at step ${es.best_step}`);
    expect(stopped[0]!.message).toContain(`best checkpoint ${es.best_checkpoint}`);
    expect(stopped[0]!.data).toMatchObject({ ...es, step: row.current_step, total_steps: row.total_steps });

    // The checkpoint the cluster calls best is our is_best one, and the event links it.
    const best = (await w.db.query<{ id: string; name: string }>(
      "select id, metrics ->> 'name' as name from public.checkpoints where job_id = $1 and is_best", [jobId])).rows;
    expect(best).toEqual([{ id: stopped[0]!.data.best_checkpoint_id, name: es.best_checkpoint }]);

    // The adapter delivered is that checkpoint's (load_best_model_at_end), not the last step's.
    const bestStep = cluster.checkpoints.find((k) => k.name === es.best_checkpoint)!.step;
    expect(bestStep).toBeLessThan(row.current_step!);
    const { data: file, error } = await w.userClient(user.token).storage.from("lora-models")
      .download(`${user.id}/${jobId}/adapter_model.safetensors`);
    expect(error).toBeNull();
    expect(readSafetensors(new Uint8Array(await file!.arrayBuffer())).metadata).toEqual({ format: "pt", step: String(bestStep) });

    // The success notification says it stopped early and carries the outcome.
    const notes = (await w.db.query<{ payload: { message: string; early_stopping: unknown; best_checkpoint: { name: string } } }>(
      "select payload from public.notifications where job_id = $1 and kind = 'job.succeeded'", [jobId])).rows;
    expect(notes).toHaveLength(1);
    expect(notes[0]!.payload.message).toContain(`stopped early at step ${row.current_step} of ${row.total_steps}`);
    expect(notes[0]!.payload.early_stopping).toMatchObject({ stopped_early: true, best_step: es.best_step, best_checkpoint: es.best_checkpoint });
    expect(notes[0]!.payload.best_checkpoint.name).toBe(es.best_checkpoint);

    const card = await modelCard(jobId);
    expect(card).toContain(`Early stopping (patience ${es.patience}): stopped at step ${row.current_step} of ${row.total_steps}`);
    expect(card).toContain(`Best checkpoint: ${es.best_checkpoint}`);
  }

  it("a job that stops early, reported by polling only, shows the outcome to its owner", async () => {
    w.blockWebhooks(true);
    try {
      const jobId = await createJob(w, user, datasetId, EARLY_STOPPING);
      expect(await waitForStatus(w, jobId, ["succeeded", "failed"], { poll: true })).toBe("succeeded");
      expect(await w.db.query("select count(*)::int as n from private.webhook_receipts where job_id = $1 and kind = 'event'", [jobId]))
        .toMatchObject({ rows: [{ n: 0 }] });
      await expectStoppedEarly(jobId);
    } finally {
      w.blockWebhooks(false);
    }
  });

  it("a job that stops early, reported by webhooks only, shows the same outcome", async () => {
    await w.db.query("update private.job_settings set value = 3600 where name = 'poll_interval_seconds'");
    try {
      const jobId = await createJob(w, user, datasetId, { ...EARLY_STOPPING, seed: 7 });
      expect(await waitForStatus(w, jobId, ["succeeded", "failed"])).toBe("succeeded");
      expect((await job(w.db, jobId)).last_polled_at).toBeNull();
      await expectStoppedEarly(jobId);
    } finally {
      await w.db.query("update private.job_settings set value = 1 where name = 'poll_interval_seconds'");
    }
  });

  it("a job without early stopping leaves the column null and says nothing about it", async () => {
    const jobId = await createJob(w, user, datasetId, { epochs: 1, batch_size: 4 });
    expect(await waitForStatus(w, jobId, ["succeeded", "failed"], { poll: true })).toBe("succeeded");
    expect(clusterJob(w, (await job(w.db, jobId)).external_job_id!).early_stopping).toBeNull();
    expect(await earlyStoppingOf(jobId)).toBeNull();
    expect((await events(w.db, jobId)).map((e) => e.type)).not.toContain("training.stopped_early");
    const note = (await w.db.query("select payload from public.notifications where job_id = $1 and kind = 'job.succeeded'", [jobId])).rows[0]!;
    expect(note.payload.message).toMatch(/^Training finished/);
    expect(note.payload).not.toHaveProperty("early_stopping");
    expect(await modelCard(jobId)).not.toContain("Early stopping");
  });

  it("clients cannot write early_stopping, only read their own", async () => {
    const j = await runningJob(w.db, w.jwtSecret, { user });
    const forged = { patience: 1, stopped_early: true, best_step: 1, best_eval_loss: 0.1, best_checkpoint: "checkpoint-1" };
    const client = w.userClient(user.token);
    const update = await client.from("training_jobs").update({ early_stopping: forged }).eq("id", j.jobId).select();
    expect(update).toMatchObject({ status: 403, error: { code: "42501" } });
    const insert = await client.from("training_jobs")
      .insert({ dataset_id: datasetId, base_model_id: "llama-3.1-8b-instruct", early_stopping: forged }).select();
    expect(insert).toMatchObject({ status: 403, error: { code: "42501" } });
    expect(await earlyStoppingOf(j.jobId)).toBeNull();
    // Another user does not see the job at all.
    const stranger = await makeUser(w.db, w.jwtSecret);
    const theirs = await w.userClient(stranger.token).from("training_jobs").select("early_stopping").eq("id", j.jobId);
    expect(theirs).toMatchObject({ error: null, data: [] });
  });

  it("older snapshots and stale events never regress it; the event is written once", async () => {
    const j = await runningJob(w.db, w.jwtSecret, { user });
    const es = (over: Partial<EarlyStopping>): EarlyStopping =>
      ({ patience: 2, stopped_early: false, best_step: 30, best_eval_loss: 0.9, best_checkpoint: "checkpoint-30", ...over });
    const ckpts = [checkpoint(30, 0.9), checkpoint(40, 0.95)];
    expect(await applyPolledJob(w.db, snapshotJob(j.externalJobId, { step: 40, checkpoints: ckpts, early_stopping: es({}) })))
      .toMatchObject({ outcome: "applied" });
    expect(await earlyStoppingOf(j.jobId)).toEqual(es({}));
    // A snapshot taken before (step 20) but answered after: progress and early stopping stay.
    await applyPolledJob(w.db, snapshotJob(j.externalJobId, { step: 20, early_stopping: es({ best_step: 20, best_eval_loss: 1.2, best_checkpoint: null }) }));
    expect(await earlyStoppingOf(j.jobId)).toEqual(es({}));
    expect((await job(w.db, j.jobId)).current_step).toBe(40);

    // The success event (stopped early at 50 of 100), delivered twice with other ids, and an older one after it.
    const final = es({ stopped_early: true });
    const succeeded = (sequence: number, early_stopping: EarlyStopping) => event("job.succeeded", j.externalJobId,
      { sequence, step: 50, total: 100 }, { artifacts: [artifact("adapter_model.safetensors", 10)], final_metrics: null, early_stopping });
    expect(await applyWebhookEvent(w.db, { webhookId: `es_${j.jobId}_1`, event: succeeded(9, final) })).toMatchObject({ outcome: "applied" });
    expect(await applyWebhookEvent(w.db, { webhookId: `es_${j.jobId}_2`, event: succeeded(9, es({ stopped_early: false })) }))
      .toMatchObject({ outcome: "stale" });
    expect(await applyWebhookEvent(w.db, { webhookId: `es_${j.jobId}_3`, event: succeeded(8, es({ best_step: 10 })) }))
      .toMatchObject({ outcome: "stale" });
    // A poll repeating the success (the artifacts are not delivered yet: still running) keeps it and writes no second event.
    await applyPolledJob(w.db, snapshotJob(j.externalJobId, { status: "succeeded", step: 50, checkpoints: ckpts, early_stopping: final,
      artifacts: [artifact("adapter_model.safetensors", 10)] }));
    expect(await earlyStoppingOf(j.jobId)).toEqual(final);
    const stopped = (await events(w.db, j.jobId)).filter((e) => e.type === "training.stopped_early");
    expect(stopped.map((e) => e.message)).toEqual([
      "Training stopped early at step 50 of 100: eval loss did not improve for 2 evaluations in a row. Best eval loss 0.9 at step 30; best checkpoint checkpoint-30",
    ]);
    const best = (await w.db.query("select id from public.checkpoints where job_id = $1 and is_best and step = 30", [j.jobId])).rows;
    expect(best).toEqual([{ id: stopped[0]!.data.best_checkpoint_id }]);
  });

  it("an automatic retry's run starts afresh: its first report clears the previous run's", async () => {
    const j = await runningJob(w.db, w.jwtSecret, { user });
    const first: EarlyStopping = { patience: 2, stopped_early: false, best_step: 30, best_eval_loss: 0.9, best_checkpoint: null };
    await applyPolledJob(w.db, snapshotJob(j.externalJobId, { step: 40, early_stopping: first }));
    expect(await earlyStoppingOf(j.jobId)).toEqual(first);
    // The run fails with a retryable error and the job is dispatched again on a new cluster job,
    // in one transaction that also removes the dispatch message, so no dispatcher submits it for real.
    const c = await w.db.connect();
    const retryExt = `fake_retry_${j.jobId}`;
    try {
      await c.query("begin");
      expect(await applyWebhookEvent(c, { webhookId: `es_fail_${j.jobId}`, event: event("job.failed", j.externalJobId, { sequence: 1, step: 40 }, { error: nodeFailure(40) }) }))
        .toMatchObject({ status: "queued" });
      await c.query("delete from pgmq.q_training_dispatch where message ->> 'job_id' = $1", [j.jobId]);
      await c.query("update public.training_jobs set status = 'dispatching' where id = $1", [j.jobId]);
      await c.query("update public.training_jobs set status = 'running', external_job_id = $2 where id = $1", [j.jobId, retryExt]);
      await c.query("commit");
    } catch (err) {
      await c.query("rollback");
      throw err;
    } finally {
      c.release();
    }
    expect(await earlyStoppingOf(j.jobId)).toEqual(first);
    await applyWebhookEvent(w.db, { webhookId: `es_started_${j.jobId}`, event: event("job.started", retryExt, { sequence: 1, total: 100 }, { examples: 1000, total_steps: 100 }) });
    expect(await earlyStoppingOf(j.jobId)).toBeNull();
  });

  it("renderModelCard() says whether early stopping triggered", () => {
    const base = {
      job: { id: "j1", user_id: "u1", total_steps: 100, current_step: 100 },
      base_model: { id: "llama", hf_repo: "meta-llama/Llama-3.1-8B-Instruct" },
    };
    const off = renderModelCard({ ...base, early_stopping: { patience: 3, stopped_early: false, best_step: 90, best_eval_loss: 0.5, best_checkpoint: null } });
    expect(off).toContain("- Early stopping (patience 3): did not trigger; best eval loss 0.5000 at step 90\n");
    const on = renderModelCard({ ...base, job: { ...base.job, current_step: 60 },
      early_stopping: { patience: 1, stopped_early: true, best_step: 50, best_eval_loss: 0.4, best_checkpoint: "checkpoint-50" } });
    expect(on).toContain("- Early stopping (patience 1): stopped at step 60 of 100; best eval loss 0.4000 at step 50, best checkpoint checkpoint-50. The adapter is the best checkpoint's (checkpoint-50), not the last step's");
    expect(renderModelCard(base)).not.toContain("Early stopping");
  });
});
