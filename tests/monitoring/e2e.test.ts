/**
 * The whole pipeline on an embedded stack with the GPU simulator, in this
 * file's own world (tests/monitoring/support/world.ts): a user uploads a
 * dataset, validation makes it ready, the user creates a job, the
 * dispatcher submits it, and the cluster trains it while the poller (woken
 * as pg_cron does) and the webhooks report; metrics, checkpoints and costs
 * arrive; the cluster asks for upload URLs and uploads the adapter; the
 * artifacts are registered, the model card written, and the owner downloads
 * the very bytes the cluster uploaded. The same run is then driven by
 * webhooks only and by polling only. Deleting the job and the dataset
 * removes their files.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../helpers/wait.ts";
import { events, job, makeUser } from "./support/fixtures.ts";
import { clusterJob, createJob, pollTick, sha256, uploadedDataset, waitForStatus } from "./support/pipeline.ts";
import { startWorld, type World } from "./support/world.ts";

describe("end to end on the embedded stack with the GPU simulator", () => {
  let w: World;
  beforeAll(async () => {
    w = await startWorld({ purpose: "mon-e2e", timeScale: 15 });
    await w.db.query("update private.job_settings set value = 1 where name = 'poll_interval_seconds'");
    await w.db.query("update private.job_settings set value = 20 where name = 'poll_worker_budget_seconds'");
  }, 180_000);
  afterAll(async () => {
    await w?.stop();
  });

  const count = async (sql: string, params: unknown[]) => (await w.db.query<{ n: number }>(sql, params)).rows[0]!.n;

  async function expectDelivered(jobId: string, ext: string) {
    const cluster = clusterJob(w, ext);
    expect(cluster.status).toBe("succeeded");
    const row = await job(w.db, jobId);
    expect(row).toMatchObject({ status: "succeeded", progress_pct: "100.00", current_step: cluster.progress.step, total_steps: cluster.progress.total_steps });
    expect(Number(row.actual_gpu_seconds)).toBeCloseTo(cluster.gpu_seconds, 3);
    // Every metric point and checkpoint the cluster recorded, each once.
    const steps = (await w.db.query<{ step: number }>("select step from public.metrics_points where job_id = $1 order by step", [jobId])).rows.map((r) => r.step);
    expect(steps).toEqual(cluster.metrics.map((m) => m.step));
    const ckpts = (await w.db.query<{ step: number; is_best: boolean; eval_loss: number }>(
      "select step, is_best, eval_loss from public.checkpoints where job_id = $1 order by step", [jobId])).rows;
    expect(ckpts.map((c) => c.step)).toEqual(cluster.checkpoints.map((c) => c.step));
    const minEval = Math.min(...cluster.checkpoints.map((c) => c.eval_loss ?? Infinity));
    expect(ckpts.filter((c) => c.is_best).map((c) => c.eval_loss)).toEqual([minEval]);
    // Usage billed equals what the cluster bills.
    expect(await count("select round(sum(gpu_seconds), 3)::float8 as n from public.cost_records where job_id = $1 and kind = 'usage'", [jobId]))
      .toBeCloseTo(cluster.gpu_seconds, 3);
    // Artifacts registered with the cluster's sizes and checksums, and the model card beside them.
    await waitFor(async () => (await count("select count(*)::int as n from public.model_artifacts where job_id = $1 and kind = 'model_card'", [jobId])) === 1,
      { timeoutMs: 20_000, what: "the model card" });
    const arts = (await w.db.query<{ kind: string; storage_path: string; size_bytes: string; sha256: string }>(
      "select kind, storage_path, size_bytes, sha256 from public.model_artifacts where job_id = $1 order by storage_path", [jobId])).rows;
    const owner = (await w.db.query<{ user_id: string }>("select user_id from public.training_jobs where id = $1", [jobId])).rows[0]!.user_id;
    for (const a of cluster.artifacts) {
      expect(arts).toContainEqual(expect.objectContaining({
        storage_path: `${owner}/${jobId}/${a.path}`, size_bytes: String(a.size_bytes), sha256: a.sha256,
      }));
    }
    expect(arts.map((a) => a.kind).sort()).toEqual(["adapter_config", "adapter_weights", "model_card"]);
    const notes = (await w.db.query("select kind from public.notifications where job_id = $1 order by created_at", [jobId])).rows.map((r) => r.kind);
    expect(notes).toEqual(["job.first_metrics", "job.succeeded"]);
    return arts;
  }

  it("upload, validate, create, dispatch, poll and webhooks, metrics, checkpoints, completion, artifacts, signed download", async () => {
    const { user, datasetId } = await uploadedDataset(w);
    const jobId = await createJob(w, user, datasetId);
    await waitForStatus(w, jobId, ["running", "succeeded", "failed"], { timeoutMs: 30_000 });
    expect(await pollTick(w)).toBeGreaterThanOrEqual(0);
    // Live progress while it trains, as a Realtime subscriber would see the row change.
    const seen = await waitFor(async () => {
      const r = await job(w.db, jobId);
      return r.current_step !== null && r.current_step > 0 && r.status === "running" ? r : false;
    }, { timeoutMs: 30_000, what: "progress" });
    expect(Number(seen.progress_pct)).toBeGreaterThan(0);
    expect(await waitForStatus(w, jobId, ["succeeded", "failed"], { poll: true })).toBe("succeeded");
    const ext = (await job(w.db, jobId)).external_job_id!;
    const arts = await expectDelivered(jobId, ext);
    expect((await job(w.db, jobId)).last_polled_at).not.toBeNull();

    const types = (await events(w.db, jobId)).map((e) => e.type);
    for (const t of ["job.created", "dispatch.submitted", "training.started", "training.first_metrics", "training.checkpoint_saved",
      "training.completed", "delivery.upload_requested", "delivery.completed", "delivery.model_card_written"]) {
      expect(types, t).toContain(t);
    }

    // The owner lists the artifacts with signed URLs through list-artifacts and downloads the uploaded bytes.
    const res = await fetch(`${w.apiUrl}/functions/v1/list-artifacts`, {
      method: "POST", headers: { authorization: `Bearer ${user.token}`, "content-type": "application/json" },
      body: JSON.stringify({ job_id: jobId }),
    });
    expect(res.status).toBe(200);
    const listed = ((await res.json()) as { data: { expires_at: string; artifacts: Array<{ path: string; kind: string; sha256: string; signed_url: string }> } }).data;
    expect(new Date(listed.expires_at).getTime() - Date.now()).toBeGreaterThan(3500_000);
    expect(listed.artifacts).toHaveLength(arts.length);
    for (const a of listed.artifacts) {
      const body = new Uint8Array(await (await fetch(a.signed_url)).arrayBuffer());
      expect(sha256(body), a.path).toBe(a.sha256);
    }
    const card = await (await fetch(listed.artifacts.find((a) => a.kind === "model_card")!.signed_url)).text();
    expect(card).toContain("base_model: \"meta-llama/Llama-3.1-8B-Instruct\"");
    expect(card).toMatch(/Best checkpoint: checkpoint-\d+/);
    // supabase-js createSignedUrl under Storage RLS works for the owner, not for another user.
    const weights = listed.artifacts.find((a) => a.kind === "adapter_weights")!;
    const own = await w.userClient(user.token).storage.from("lora-models").createSignedUrl(weights.path, 3600);
    expect(own.error).toBeNull();
    const stranger = await makeUser(w.db, w.jwtSecret);
    const theirs = await w.userClient(stranger.token).storage.from("lora-models").createSignedUrl(weights.path, 3600);
    expect(theirs.error).not.toBeNull();
    const foreign = await fetch(`${w.apiUrl}/functions/v1/list-artifacts`, {
      method: "POST", headers: { authorization: `Bearer ${stranger.token}`, "content-type": "application/json" },
      body: JSON.stringify({ job_id: jobId }),
    });
    expect(foreign.status).toBe(404);
    // The loss curve for charts, as the owner: supabase-js rpc() through PostgREST.
    const curve = await w.userClient(user.token).rpc("job_loss_curve", { job_id: jobId, max_points: 50 });
    expect(curve.error).toBeNull();
    const points = (curve.data as unknown[]).length;
    expect(points).toBeGreaterThan(0);
    expect(points).toBeLessThanOrEqual(50);
    // The owner's notifications, read and marked read through supabase-js.
    const client = w.userClient(user.token);
    const notes = await client.from("notifications").select("kind, is_read").eq("job_id", jobId).order("created_at");
    expect(notes).toMatchObject({ error: null, data: [{ kind: "job.first_metrics", is_read: false }, { kind: "job.succeeded", is_read: false }] });
    const read = await client.from("notifications").update({ is_read: true }).eq("job_id", jobId).select("read_at");
    expect(read.error).toBeNull();
    expect((read.data as Array<{ read_at: string | null }>).map((n) => n.read_at !== null)).toEqual([true, true]);

    // The owner deleting the job (a soft delete) removes its files (through the Storage API), and their registry rows.
    const deleted = await client.from("training_jobs").update({ deleted_at: new Date().toISOString() }).eq("id", jobId).select("id");
    expect(deleted).toMatchObject({ error: null, data: [{ id: jobId }] });
    await waitFor(async () => (await count(
      "select count(*)::int as n from storage.objects where bucket_id = 'lora-models' and name like $1", [`%/${jobId}/%`])) === 0,
    { timeoutMs: 30_000, what: "the job's files to be removed" });
    expect(await count("select count(*)::int as n from public.model_artifacts where job_id = $1", [jobId])).toBe(0);
    // Deleting the dataset removes its file once no active job uses it.
    const gone = await client.from("datasets").update({ deleted_at: new Date().toISOString() }).eq("id", datasetId).select("id");
    expect(gone).toMatchObject({ error: null, data: [{ id: datasetId }] });
    await waitFor(async () => (await count(
      "select count(*)::int as n from storage.objects where bucket_id = 'lora-datasets' and name like $1", [`%/${datasetId}/%`])) === 0,
    { timeoutMs: 30_000, what: "the dataset's file to be removed" });
  });

  it("the same run driven by webhooks only", async () => {
    await w.db.query("update private.job_settings set value = 3600 where name = 'poll_interval_seconds'");
    try {
      const { user, datasetId } = await uploadedDataset(w);
      const jobId = await createJob(w, user, datasetId);
      expect(await waitForStatus(w, jobId, ["succeeded", "failed"])).toBe("succeeded");
      const ext = (await job(w.db, jobId)).external_job_id!;
      await expectDelivered(jobId, ext);
      expect((await job(w.db, jobId)).last_polled_at).toBeNull();
      expect(await count("select count(*)::int as n from private.webhook_receipts where job_id = $1 and kind = 'event'", [jobId]))
        .toBeGreaterThanOrEqual(4);
    } finally {
      await w.db.query("update private.job_settings set value = 1 where name = 'poll_interval_seconds'");
    }
  });

  it("the same run driven by polling only", async () => {
    w.blockWebhooks(true);
    try {
      const blockedBefore = w.outbound.blockedWebhooks;
      const { user, datasetId } = await uploadedDataset(w);
      const jobId = await createJob(w, user, datasetId);
      expect(await waitForStatus(w, jobId, ["succeeded", "failed"], { poll: true })).toBe("succeeded");
      const ext = (await job(w.db, jobId)).external_job_id!;
      await expectDelivered(jobId, ext);
      expect(w.outbound.blockedWebhooks).toBeGreaterThan(blockedBefore);
      expect(await count("select count(*)::int as n from private.webhook_receipts where job_id = $1 and kind = 'event'", [jobId])).toBe(0);
      expect((await job(w.db, jobId)).last_polled_at).not.toBeNull();
    } finally {
      w.blockWebhooks(false);
    }
  });
});

