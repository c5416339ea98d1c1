/**
 * Fixtures for the training-job tests: ready datasets with exact statistics
 * (as the validation worker writes them), their files in Storage, jobs
 * created as a client (supabase-js through PostgREST) or as the server, the GPU cluster simulator's admin
 * API (faults scoped to one job's idempotency key, cluster-side job counts),
 * and driving the dispatch worker the way pg_cron does, with a deadline.
 */
import type pg from "pg";
import { DatasetStatsSchema, TOKENIZER_FAMILIES, type DatasetStats } from "../../types/dataset.ts";
import type { GpuSimulatorFaults } from "../../gpu-cluster/simulator/index.ts";
import type { Job } from "../../functions/_shared/gpu/types.ts";
import type { LocalUser } from "../../stack/jwt.ts";
import { testStack } from "../helpers/stack.ts";
import { supabaseClient } from "../helpers/supabase.ts";
import { waitFor } from "../helpers/wait.ts";

export const LLAMA = "llama-3.1-8b-instruct";

export type TokenShape = { examples: number; totalTokens: number; maxTokens: number };

/** Dataset statistics as the validation engine reports them, for every seeded model's tokenizer. */
export async function statsFor(db: pg.ClientBase, shape: TokenShape): Promise<DatasetStats> {
  const models = (await db.query<{ id: string; tokenizer: string; context_length: number }>(
    "select id, tokenizer, context_length from public.base_models",
  )).rows;
  const { examples: n, totalTokens, maxTokens } = shape;
  const mean = n === 0 ? 0 : totalTokens / n;
  const dist = { count: n, sum: totalTokens, mean, min: Math.min(maxTokens, Math.floor(mean)), p5: Math.floor(mean / 2), p50: Math.floor(mean), p95: maxTokens, max: maxTokens };
  const tokens = Object.fromEntries(TOKENIZER_FAMILIES.map((f) => [f, {
    total: dist, trainable: dist, totalTokens, trainableTokens: Math.floor(totalTokens / 2),
  }]));
  const stats = {
    format: "chat",
    lines: { total: n, blank: 0, valid: n, invalid: 0 },
    examples: n,
    duplicates: 0,
    messagesPerExample: null,
    roleCounts: { user: n, assistant: n },
    tokens,
    models: Object.fromEntries(models.map((m) => [m.id, {
      family: m.tokenizer, contextLength: m.context_length, examplesOverContext: 0,
      billableTokensPerEpoch: totalTokens,
    }])),
    recommendedEpochs: null,
  };
  return DatasetStatsSchema.parse(stats);
}

/** JSON Lines with `n` small chat examples. */
export function jsonl(n: number): string {
  return Array.from({ length: n }, (_, i) =>
    JSON.stringify({ messages: [{ role: "user", content: `Question ${i}?` }, { role: "assistant", content: `Answer ${i}.` }] }),
  ).join("\n") + "\n";
}

/**
 * A dataset of `user` created as the client does, its file uploaded to Storage (unless
 * `upload: false`), then moved to ready with `shape`'s statistics as the validation worker would.
 */
export async function readyDataset(
  db: pg.ClientBase, user: LocalUser, shape: TokenShape = { examples: 1000, totalTokens: 512_000, maxTokens: 1500 },
  opts: { upload?: boolean } = {},
): Promise<{ id: string; path: string }> {
  const { data, error: insertError } = await supabaseClient(testStack().ANON_KEY, user.token)
    .from("datasets").insert({ name: "job test", file_name: "train.jsonl" }).select("id, storage_path").single();
  if (insertError) throw insertError;
  const { id, storage_path: path } = data;
  if (path === null) throw new Error(`dataset ${id} has no storage_path`);
  if (opts.upload ?? true) {
    const { error } = await supabaseClient(testStack().SERVICE_ROLE_KEY).storage.from("lora-datasets")
      .upload(path, jsonl(Math.min(shape.examples, 50)), { contentType: "application/octet-stream" });
    if (error) throw error;
  }
  // The upload started a real validation run; whatever it has done so far, end in ready with these
  // statistics (the validation worker leaves a dataset that is no longer validating alone).
  for (let i = 0; i < 5; i++) {
    const { rows: [d] } = await db.query<{ status: string }>("select status from public.datasets where id = $1", [id]);
    if (d!.status === "ready") break;
    await db.query("update public.datasets set status = $2 where id = $1 and status = $3", [
      id, d!.status === "validating" ? "ready" : "validating", d!.status,
    ]);
  }
  await db.query("update public.datasets set stats = $2 where id = $1 and status = 'ready'", [id, JSON.stringify(await statsFor(db, shape))]);
  return { id, path };
}

export type JobRow = {
  id: string; status: string; config: Record<string, unknown>; error: { code: string; message: string; kind: string } | null;
  external_job_id: string | null; dispatch_attempts: number; estimated_cost: string | null; estimated_gpu_seconds: string | null;
  total_steps: number | null; estimated_finish_at: Date | null; created_at: Date;
};

export async function jobRow(db: pg.ClientBase, id: string): Promise<JobRow> {
  return (await db.query<JobRow>("select * from public.training_jobs where id = $1", [id])).rows[0]!;
}

/** Insert a job as `user` with supabase-js through PostgREST; the row as the database holds it. */
export async function insertJobAsUser(
  db: pg.ClientBase, user: LocalUser, values: Record<string, unknown>,
): Promise<JobRow> {
  const { data, error } = await supabaseClient(testStack().ANON_KEY, user.token)
    .from("training_jobs").insert(values as never).select("id").single();
  if (error) throw Object.assign(new Error(error.message), error);
  return await jobRow(db, data.id);
}

/** The events of a job, oldest first. */
export async function jobEvents(db: pg.ClientBase, id: string): Promise<Array<{ level: string; type: string; message: string; data: Record<string, unknown> }>> {
  return (await db.query("select level::text, type, message, data from public.job_events where job_id = $1 order by id", [id])).rows;
}

async function simulator(path: string, init: RequestInit = {}): Promise<unknown> {
  const s = testStack();
  const res = await fetch(`${s.GPU_CLUSTER_URL}${path}`, {
    ...init, headers: { authorization: `Bearer ${s.GPU_CLUSTER_API_KEY}`, "content-type": "application/json" },
  });
  if (!res.ok) throw new Error(`simulator ${path}: ${res.status} ${await res.text()}`);
  return await res.json();
}

/** Inject faults for the requests about one idempotency key only (other tests share the simulator). */
export async function setClusterFaults(idempotencyKey: string, faults: GpuSimulatorFaults): Promise<void> {
  await simulator("/_sim/faults", { method: "POST", body: JSON.stringify({ idempotency_key: idempotencyKey, faults }) });
}

/** Every cluster-side job created for a training job, whatever key it came with. */
export async function clusterJobsFor(jobId: string): Promise<Job[]> {
  return ((await simulator(`/_sim/jobs?metadata.training_job_id=${encodeURIComponent(jobId)}`)) as { data: Job[] }).data;
}

/** The cluster idempotency key of a job's next run. */
export async function clusterKey(db: pg.ClientBase, jobId: string, run = 1): Promise<string> {
  return (await db.query<{ k: string }>("select private.cluster_idempotency_key($1, $2) as k", [jobId, run])).rows[0]!.k;
}

/** Call the dispatch worker through the gateway with the service-role key, as pg_net and pg_cron do. */
export async function pokeDispatcher(key = testStack().SERVICE_ROLE_KEY): Promise<Response> {
  return await fetch(`${testStack().API_URL}/functions/v1/dispatch-training-job`, {
    method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, body: "{}",
  });
}

/**
 * Statuses a job can be in once the cluster accepted it: the stack's simulator reports back
 * through webhooks and polling, so a short run may already have finished when we look.
 */
export const DISPATCHED = ["running", "succeeded"];

/** Wake the worker (like pg_cron, only faster) until the job is in one of `statuses`. */
export async function driveDispatch(
  db: pg.ClientBase, jobId: string, statuses: string[] = [...DISPATCHED, "failed", "cancelling", "cancelled", "timed_out"],
  timeoutMs = 45_000,
): Promise<JobRow> {
  return await waitFor(async () => {
    const job = await jobRow(db, jobId);
    if (statuses.includes(job.status)) return job;
    const res = await pokeDispatcher();
    await res.arrayBuffer();
    return false;
  }, { timeoutMs, intervalMs: 200, what: `job ${jobId} to reach ${statuses.join("/")}` });
}
