/**
 * Model delivery on the shared stack: the cluster's signed request for
 * upload URLs (gpu-upload-urls), uploads through those URLs registered by
 * the storage.objects trigger, list-artifacts' door, and removal of a
 * deleted dataset's file only once no active job trains on it.
 */
import { createHash, randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateWebhookSecret } from "../../functions/_shared/webhooks.ts";
import { testStack } from "../helpers/stack.ts";
import { supabaseClient } from "../helpers/supabase.ts";
import { waitFor } from "../helpers/wait.ts";
import { makeUser, readyDatasetRow, runningJob, signedPost, snapshot } from "./support/fixtures.ts";

const sha = (b: Uint8Array | string) => createHash("sha256").update(b).digest("hex");

describe("artifact delivery", () => {
  let db: pg.Pool;
  let url: string;
  beforeAll(() => {
    db = new pg.Pool({ connectionString: testStack().DB_URL, max: 3 });
    url = `${testStack().API_URL}/functions/v1/gpu-upload-urls`;
  });
  afterAll(async () => {
    await db.end();
  });
  const secret = () => testStack().GPU_WEBHOOK_SECRET;
  const running = () => runningJob(db, testStack().JWT_SECRET);
  const file = (path: string, bytes: string) => ({ path, content_type: "application/octet-stream", size_bytes: Buffer.byteLength(bytes), sha256: sha(bytes) });
  const ask = (jobId: string, files: unknown[], opts: { id?: string; secret?: string } = {}) =>
    signedPost(url, opts.secret ?? secret(), JSON.stringify({ job_id: jobId, files }), opts.id ? { id: opts.id } : {});

  it("hands out one signed upload URL per file, under the job's folder, and registers each upload with size and checksum", async () => {
    const j = await running();
    const bytes = { "adapter_config.json": '{"r": 16}', "adapter_model.safetensors": "weights!", "checkpoint-10/adapter_model.safetensors": "ckpt" };
    const res = await ask(j.externalJobId, Object.entries(bytes).map(([p, b]) => file(p, b)));
    expect(res.status).toBe(200);
    const { uploads } = (await res.json()) as { uploads: Array<{ path: string; signed_url: string; expires_at: string }> };
    expect(uploads.map((u) => u.path)).toEqual(Object.keys(bytes));
    for (const u of uploads) {
      expect(u.signed_url).toContain(`/object/upload/sign/lora-models/${j.user.id}/${j.jobId}/${u.path}`);
      expect(new Date(u.expires_at).getTime()).toBeGreaterThan(Date.now());
      // As the cluster does: PUT the bytes, upsert allowed.
      const put = await fetch(u.signed_url, {
        method: "PUT", headers: { "content-type": "application/octet-stream", "x-upsert": "true" }, body: bytes[u.path as keyof typeof bytes],
      });
      expect(put.status).toBe(200);
    }
    const arts = await db.query("select kind, storage_path, size_bytes::int as size, sha256 from public.model_artifacts where job_id = $1 order by storage_path", [j.jobId]);
    expect(arts.rows).toEqual(Object.entries(bytes).map(([p, b]) => ({
      kind: p.startsWith("checkpoint") ? "checkpoint" : p === "adapter_config.json" ? "adapter_config" : "adapter_weights",
      storage_path: `${j.user.id}/${j.jobId}/${p}`, size: Buffer.byteLength(b), sha256: sha(b),
    })).sort((a, b) => a.storage_path.localeCompare(b.storage_path)));
    // Once verify-artifacts has checked the stored bytes, the owner downloads exactly them with supabase-js under Storage RLS.
    await waitFor(async () => (await db.query(
      "select count(*)::int as n from public.model_artifacts where job_id = $1 and verification = 'verified'", [j.jobId])).rows[0].n === 3,
    { timeoutMs: 60_000, what: "verify-artifacts to check the three files" });
    const { data, error } = await supabaseClient(testStack().ANON_KEY, j.user.token).storage.from("lora-models")
      .download(`${j.user.id}/${j.jobId}/adapter_model.safetensors`);
    expect(error).toBeNull();
    expect(await data!.text()).toBe("weights!");
  });

  const refusals: Array<[string, (ext: string) => Promise<Response>, number, string]> = [
    ["a bad signature", (ext) => ask(ext, [file("adapter_config.json", "{}")], { secret: generateWebhookSecret() }), 401, "LT430"],
    ["a path that climbs out of the job's folder", (ext) => ask(ext, [file("../../other/adapter_config.json", "{}")]), 400, "LT435"],
    ["an absolute path", (ext) => ask(ext, [file("/etc/adapter_config.json", "{}")]), 400, "LT435"],
    ["a file of no artifact kind", (ext) => ask(ext, [file("adapter_config.json", "{}"), file("run.sh", "rm -rf /")]), 422, "LT441"],
    ["an unknown cluster job", () => ask(`nope_${randomUUID()}`, [file("adapter_config.json", "{}")]), 404, "LT433"],
  ];
  it.each(refusals)("refuses %s, issuing nothing", async (_name, send, status, code) => {
    const j = await running();
    const before = await snapshot(db, j.jobId);
    const res = await send(j.externalJobId);
    expect(res.status).toBe(status);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe(code);
    expect(await snapshot(db, j.jobId)).toEqual(before);
    expect((await db.query("select count(*)::int as n from private.artifact_uploads where job_id = $1", [j.jobId])).rows[0].n).toBe(0);
  });

  it("refuses a reused request id and a job that is no longer running", async () => {
    const j = await running();
    const id = `upl_${randomUUID()}`;
    expect((await ask(j.externalJobId, [file("adapter_config.json", "{}")], { id })).status).toBe(200);
    const again = await ask(j.externalJobId, [file("adapter_config.json", "{}")], { id });
    expect(again.status).toBe(409);
    expect(((await again.json()) as { error: { code: string } }).error.code).toBe("LT431");
    await db.query("update public.training_jobs set status = 'failed', error = '{\"code\":\"LT405\",\"message\":\"m\",\"kind\":\"system\"}' where id = $1", [j.jobId]);
    const late = await ask(j.externalJobId, [file("adapter_config.json", "{}")]);
    expect(late.status).toBe(409);
    expect(((await late.json()) as { error: { code: string } }).error.code).toBe("LT440");
  });

  it("list-artifacts answers signed-in users only, and only about their jobs", async () => {
    const j = await running();
    const call = (token: string, body: unknown) => fetch(`${testStack().API_URL}/functions/v1/list-artifacts`, {
      method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify(body),
    });
    expect((await call(testStack().ANON_KEY, { job_id: j.jobId })).status).toBe(403);
    expect((await call(j.user.token, { job: "x" })).status).toBe(400);
    const own = await call(j.user.token, { job_id: j.jobId });
    expect(own.status).toBe(200);
    expect(await own.json()).toMatchObject({ success: true, data: { job_id: j.jobId, artifacts: [] } });
    const other = await makeUser(db, testStack().JWT_SECRET);
    expect((await call(other.token, { job_id: j.jobId })).status).toBe(404);
  });

  it("a deleted dataset's file stays while a job trains on it and is removed through the Storage API afterwards", async () => {
    const user = await makeUser(db, testStack().JWT_SECRET);
    let path = "";
    const id = await readyDatasetRow(db, user, 10, async (p) => {
      path = p;
      const { error } = await supabaseClient(testStack().SERVICE_ROLE_KEY).storage.from("lora-datasets")
        .upload(p, '{"prompt": "a", "completion": "b"}\n', { contentType: "application/octet-stream" });
      if (error) throw error;
    });
    const ds = { id, path };
    const j = await runningJob(db, testStack().JWT_SECRET, { user, datasetId: ds.id });
    const objects = async () => (await db.query("select count(*)::int as n from storage.objects where bucket_id = 'lora-datasets' and name = $1", [ds.path])).rows[0].n;
    await db.query("update public.datasets set deleted_at = now() where id = $1", [ds.id]);
    await waitFor(async () => (await db.query(
      "select 1 from pgmq.q_storage_cleanup where message ->> 'dataset_id' = $1 and vt > now() + interval '200 seconds'", [ds.id])).rowCount === 1,
    { timeoutMs: 20_000, what: "the cleanup to be deferred" });
    expect(await objects()).toBe(1);
    // The job ends; the deferred message comes due and the worker runs.
    await db.query("update public.training_jobs set status = 'failed', error = '{\"code\":\"LT405\",\"message\":\"m\",\"kind\":\"system\"}' where id = $1", [j.jobId]);
    await db.query("select pgmq.set_vt(queue_name => 'storage_cleanup', msg_id => q.msg_id, vt => 0) from pgmq.q_storage_cleanup q where q.message ->> 'dataset_id' = $1", [ds.id]);
    const res = await fetch(`${testStack().API_URL}/functions/v1/storage-cleanup`, {
      method: "POST", headers: { authorization: `Bearer ${testStack().SERVICE_ROLE_KEY}`, "content-type": "application/json" }, body: "{}",
    });
    expect(res.status).toBe(200);
    await waitFor(async () => (await objects()) === 0, { timeoutMs: 20_000, what: "the dataset file to be removed" });
  });
});
