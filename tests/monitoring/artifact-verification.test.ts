/**
 * Artifacts are delivered only once their stored bytes are verified
 * (issue 16.2): verify-artifacts hashes what Storage holds and compares it
 * with what the cluster declared; a mismatch is never delivered; uploads are
 * refused once the job left the delivering states or after the upload
 * window. On the shared stack: the cluster's calls are signed requests to
 * gpu-upload-urls and PUTs to the URLs it answers; the owner uses supabase-js.
 */
import { createHash } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testStack } from "../helpers/stack.ts";
import { supabaseClient } from "../helpers/supabase.ts";
import { waitFor } from "../helpers/wait.ts";
import { event, point } from "./support/events.ts";
import { events, job, runningJob, signedPost } from "./support/fixtures.ts";

const sha = (b: string) => createHash("sha256").update(b).digest("hex");
type Upload = { path: string; signed_url: string; expires_at: string };

describe("artifact verification", () => {
  let db: pg.Pool;
  beforeAll(() => {
    db = new pg.Pool({ connectionString: testStack().DB_URL, max: 3 });
  });
  afterAll(async () => {
    await db.end();
  });
  const running = () => runningJob(db, testStack().JWT_SECRET);
  const ask = async (ext: string, files: Array<{ path: string; bytes: string; declaredSha?: string }>): Promise<Upload[]> => {
    const res = await signedPost(`${testStack().API_URL}/functions/v1/gpu-upload-urls`, testStack().GPU_WEBHOOK_SECRET, JSON.stringify({
      job_id: ext,
      files: files.map((f) => ({
        path: f.path, content_type: "application/octet-stream", size_bytes: Buffer.byteLength(f.bytes), sha256: f.declaredSha ?? sha(f.bytes),
      })),
    }));
    expect(res.status).toBe(200);
    return ((await res.json()) as { uploads: Upload[] }).uploads;
  };
  const put = (u: Upload, body: string) =>
    fetch(u.signed_url, { method: "PUT", headers: { "content-type": "application/octet-stream", "x-upsert": "true" }, body });
  const artifact = async (jobId: string, path: string) =>
    (await db.query<{ verification: string; sha256: string }>(
      "select verification, sha256 from public.model_artifacts where job_id = $1 and storage_path like '%/' || $2", [jobId, path],
    )).rows[0];
  const verified = async (jobId: string, path: string) => {
    await waitFor(async () => ((await artifact(jobId, path))?.verification ?? "pending") !== "pending",
      { timeoutMs: 60_000, what: `verify-artifacts to check ${path}` });
    return (await artifact(jobId, path))!;
  };
  const listed = async (token: string, jobId: string) => {
    const res = await fetch(`${testStack().API_URL}/functions/v1/list-artifacts`, {
      method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify({ job_id: jobId }),
    });
    expect(res.status).toBe(200);
    return ((await res.json()) as { data: { artifacts: Array<{ path: string }> } }).data.artifacts.map((a) => a.path);
  };

  it("bytes that do not match the declared SHA-256 are marked mismatch, never delivered, and say so in an event", async () => {
    const j = await running();
    const declared = "b".repeat(64);
    const [u] = await ask(j.externalJobId, [{ path: "adapter_model.safetensors", bytes: "HELLO", declaredSha: declared }]);
    expect((await put(u!, "HELLO")).status).toBe(200);
    expect(await verified(j.jobId, "adapter_model.safetensors")).toEqual({ verification: "mismatch", sha256: declared });

    const rejected = (await events(db, j.jobId)).filter((e) => e.type === "delivery.artifact_rejected");
    expect(rejected).toHaveLength(1);
    expect(rejected[0]!.data).toMatchObject({ code: "LT465", stored: { sha256: sha("HELLO"), size_bytes: 5 }, declared: { sha256: declared } });

    // The cluster reports success listing that file: the delivery does not complete.
    await signedPost(`${testStack().API_URL}/functions/v1/gpu-webhook`, testStack().GPU_WEBHOOK_SECRET, JSON.stringify(
      event("job.succeeded", j.externalJobId, { sequence: 5, step: 100, gpuSeconds: 10 }, {
        artifacts: [{ path: "adapter_model.safetensors", content_type: "application/octet-stream", size_bytes: 5, sha256: declared }],
        final_metrics: point(100),
      })));
    expect((await job(db, j.jobId)).status).toBe("running");

    // The owner gets no signed URL, no download and no listing.
    const owner = supabaseClient(testStack().ANON_KEY, j.user.token).storage.from("lora-models");
    const name = `${j.user.id}/${j.jobId}/adapter_model.safetensors`;
    expect((await owner.createSignedUrl(name, 60)).data).toBeNull();
    expect((await owner.download(name)).data).toBeNull();
    expect(await listed(j.user.token, j.jobId)).toEqual([]);
  });

  it("bytes that match are verified, then the delivery completes and the owner can download them", async () => {
    const j = await running();
    const uploads = await ask(j.externalJobId, [{ path: "adapter_config.json", bytes: '{"r": 8}' }, { path: "adapter_model.safetensors", bytes: "weights" }]);
    await signedPost(`${testStack().API_URL}/functions/v1/gpu-webhook`, testStack().GPU_WEBHOOK_SECRET, JSON.stringify(
      event("job.succeeded", j.externalJobId, { sequence: 5, step: 100, gpuSeconds: 10 }, {
        artifacts: [
          { path: "adapter_config.json", content_type: "application/octet-stream", size_bytes: 8, sha256: sha('{"r": 8}') },
          { path: "adapter_model.safetensors", content_type: "application/octet-stream", size_bytes: 7, sha256: sha("weights") },
        ],
        final_metrics: point(100),
      })));
    for (const u of uploads) expect((await put(u, u.path === "adapter_config.json" ? '{"r": 8}' : "weights")).status).toBe(200);
    expect(await verified(j.jobId, "adapter_model.safetensors")).toEqual({ verification: "verified", sha256: sha("weights") });
    await waitFor(async () => (await job(db, j.jobId)).status === "succeeded", { timeoutMs: 60_000, what: "the delivery to complete" });
    const owner = supabaseClient(testStack().ANON_KEY, j.user.token).storage.from("lora-models");
    const { data } = await owner.download(`${j.user.id}/${j.jobId}/adapter_model.safetensors`);
    expect(await data!.text()).toBe("weights");
    expect(await listed(j.user.token, j.jobId)).toEqual(expect.arrayContaining([
      `${j.user.id}/${j.jobId}/adapter_config.json`, `${j.user.id}/${j.jobId}/adapter_model.safetensors`,
    ]));
  });

  it("an upload URL stops working once the job failed, and registers nothing", async () => {
    const j = await running();
    const [u] = await ask(j.externalJobId, [{ path: "adapter_model.safetensors", bytes: "HELLO" }]);
    await db.query("update public.training_jobs set status = 'failed', error = '{\"code\":\"LT405\",\"message\":\"m\",\"kind\":\"system\"}' where id = $1", [j.jobId]);
    const res = await put(u!, "HELLO");
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(await artifact(j.jobId, "adapter_model.safetensors")).toBeUndefined();
    expect((await db.query("select count(*)::int as n from storage.objects where bucket_id = 'lora-models' and name like $1", [`${j.user.id}/${j.jobId}/%`])).rows[0].n).toBe(0);
  });

  it("upload URLs are valid for the upload window only, not Storage's two hours", async () => {
    const j = await running();
    const [u] = await ask(j.externalJobId, [{ path: "adapter_config.json", bytes: "{}" }]);
    const window = Number((await db.query("select value from private.job_settings where name = 'artifact_upload_window_seconds'")).rows[0].value);
    expect(window).toBe(900);
    const expiresIn = (new Date(u!.expires_at).getTime() - Date.now()) / 1000;
    expect(expiresIn).toBeGreaterThan(window - 120);
    expect(expiresIn).toBeLessThanOrEqual(window + 1);
    // The URL was issued longer ago than the window: its upload is refused.
    await db.query("update private.artifact_uploads set requested_at = now() - interval '16 minutes' where job_id = $1", [j.jobId]);
    expect((await put(u!, "{}")).status).toBeGreaterThanOrEqual(400);
    expect(await artifact(j.jobId, "adapter_config.json")).toBeUndefined();
  });
});
