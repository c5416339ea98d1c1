/**
 * Driving the whole pipeline in a test world the way a frontend and the
 * platform do: a user uploads a dataset with supabase-js (validation runs in
 * the validate-dataset worker), creates a job with the create_training_job
 * RPC (dispatch runs in dispatch-training-job), and the GPU simulator trains
 * it and calls back. Also: waking the poller as pg_cron does, and reading
 * what the cluster holds for a job.
 */
import { createHash } from "node:crypto";
import type { Job } from "../../../functions/_shared/gpu/types.ts";
import type { LocalUser } from "../../../stack/jwt.ts";
import { waitFor } from "../../helpers/wait.ts";
import { LLAMA, makeUser } from "./fixtures.ts";
import type { World } from "./world.ts";

/** JSON Lines with `n` chat examples of about `chars` characters each. */
export function longJsonl(n: number, chars = 3000): string {
  const filler = "The quick brown fox jumps over the lazy dog. ".repeat(Math.ceil(chars / 45)).slice(0, chars);
  return Array.from({ length: n }, (_, i) =>
    JSON.stringify({ messages: [{ role: "user", content: `Question ${i}: ${filler}` }, { role: "assistant", content: `Answer ${i}.` }] }),
  ).join("\n") + "\n";
}

export function sha256(bytes: Uint8Array | string): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** A user with a dataset uploaded through supabase-js and validated by the worker (status ready). */
export async function uploadedDataset(w: World, opts: { examples?: number; user?: LocalUser } = {}): Promise<{ user: LocalUser; datasetId: string; path: string }> {
  const user = opts.user ?? (await makeUser(w.db, w.jwtSecret));
  const { data, error: insertError } = await w.userClient(user.token)
    .from("datasets").insert({ name: "e2e", file_name: "train.jsonl" }).select("id, storage_path").single();
  if (insertError) throw insertError;
  const { id, storage_path: path } = data as { id: string; storage_path: string };
  const { error } = await w.userClient(user.token).storage.from("lora-datasets")
    .upload(path, longJsonl(opts.examples ?? 120), { contentType: "application/octet-stream" });
  if (error) throw error;
  await waitFor(async () => {
    const r = await w.db.query<{ status: string; error: unknown }>("select status, error from public.datasets where id = $1", [id]);
    if (r.rows[0]!.status === "error") throw new Error(`Dataset failed validation: ${JSON.stringify(r.rows[0]!.error)}`);
    return r.rows[0]!.status === "ready";
  }, { timeoutMs: 90_000, intervalMs: 200, what: "the dataset to be validated" });
  return { user, datasetId: id, path };
}

/** Create a job as the user through the RPC a frontend calls: supabase-js rpc() through PostgREST. */
export async function createJob(w: World, user: LocalUser, datasetId: string, config: Record<string, unknown> = { epochs: 3, batch_size: 4 }): Promise<string> {
  const { data, error } = await w.userClient(user.token)
    .rpc("create_training_job", { dataset_id: datasetId, base_model_id: LLAMA, config, name: "e2e job" });
  if (error) throw Object.assign(new Error(error.message), error);
  return (data as { id: string }).id;
}

/**
 * Cancel as the user: supabase-js rpc('cancel_training_job') through PostgREST; the job's status,
 * or a rejection carrying PostgREST's `code` and the HTTP `status`.
 */
export async function cancelAs(w: World, user: LocalUser, jobId: string): Promise<string> {
  const { data, error, status } = await w.userClient(user.token).rpc("cancel_training_job", { job_id: jobId });
  if (error) throw Object.assign(new Error(error.message), error, { status });
  return (data as { status: string }).status;
}

/** What pg_cron runs: wake poll workers for the due work. */
export async function pollTick(w: World): Promise<number> {
  return (await w.db.query<{ n: number }>("select private.poll_tick() as n")).rows[0]!.n;
}

export async function jobStatus(w: World, jobId: string): Promise<{ status: string; external_job_id: string | null; error: unknown }> {
  return (await w.db.query("select status, external_job_id, error from public.training_jobs where id = $1", [jobId])).rows[0];
}

/** Wait until the job reaches one of `statuses`, waking the poller meanwhile when `poll` is set. */
export async function waitForStatus(w: World, jobId: string, statuses: string[], opts: { poll?: boolean; timeoutMs?: number } = {}): Promise<string> {
  let lastTick = 0;
  return await waitFor(async () => {
    if (opts.poll && Date.now() - lastTick > 2000) {
      lastTick = Date.now();
      await pollTick(w);
    }
    const s = await jobStatus(w, jobId);
    return statuses.includes(s.status) ? s.status : false;
  }, { timeoutMs: opts.timeoutMs ?? 90_000, intervalMs: 100, what: `job ${jobId} to reach ${statuses.join("/")}` });
}

/** The cluster's view of the job's current run. */
export function clusterJob(w: World, externalJobId: string): Job {
  const j = w.sim.jobs.get(externalJobId);
  if (!j) throw new Error(`The simulator has no job "${externalJobId}"`);
  return j;
}
