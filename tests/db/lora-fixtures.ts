/**
 * Fixtures for the LoRA domain-schema tests: a complete "world" (two users,
 * datasets in several states, a job with one row in every child table, a
 * notification and one object in each bucket), created inside a transaction
 * that is always rolled back, so no test sees another's rows and no worker
 * ever picks them up. Statements run as a client role the way PostgREST runs
 * them (`set local role` + `request.jwt.claims`).
 */
import { randomUUID } from "node:crypto";
import type pg from "pg";
import { claimsFor, newUser } from "../helpers/db.ts";
import type { LocalUser } from "../../stack/jwt.ts";

export const MODEL = "llama-3.1-8b-instruct";

/** Who runs a statement: no token, the other user, the owner, the service key. */
export type Who = "anon" | "other" | "owner" | "service_role";
export const WHO: Who[] = ["anon", "other", "owner", "service_role"];

export type World = {
  owner: LocalUser;
  other: LocalUser;
  /** Enabled and disabled catalog entries that no job references. */
  model: { enabled: string; disabled: string };
  /** ready (used by job); uploading with an object (D2); uploading without one (D3). */
  dataset: { ready: string; uploading: string; empty: string };
  datasetPath: { uploading: string; empty: string };
  otherDataset: string;
  job: string;
  event: string;
  metric: string;
  checkpoint: string;
  artifact: string;
  cost: string;
  notification: string;
  modelObject: string;
};

/** Run `fn` in a transaction that is always rolled back. */
export async function rolledBack<T>(db: pg.ClientBase, fn: () => Promise<T>): Promise<T> {
  await db.query("begin");
  try {
    return await fn();
  } finally {
    await db.query("rollback");
  }
}

/** Switch the current transaction to run as `who` (as PostgREST would for that token). */
export async function actAs(db: pg.ClientBase, who: Who, w?: Pick<World, "owner" | "other">): Promise<void> {
  const role = who === "owner" || who === "other" ? "authenticated" : who;
  const user = who === "owner" ? w?.owner : who === "other" ? w?.other : undefined;
  await db.query("select set_config('role', $1, true), set_config('request.jwt.claims', $2, true)", [
    role, JSON.stringify(claimsFor(role, user)),
  ]);
}

/** Back to the connection's own (superuser) role inside the transaction. */
export async function actAsAdmin(db: pg.ClientBase): Promise<void> {
  await db.query("reset role; select set_config('request.jwt.claims', '', true)");
}

export type Attempt = { rowCount: number; rows: Record<string, unknown>[]; code?: string };

/** Run one statement inside a savepoint; report its row count or SQLSTATE instead of aborting the transaction. */
export async function attempt(db: pg.ClientBase, sql: string, params: unknown[] = []): Promise<Attempt> {
  await db.query("savepoint attempt");
  try {
    const r = await db.query(sql, params);
    await db.query("release savepoint attempt");
    return { rowCount: r.rowCount ?? 0, rows: r.rows };
  } catch (err) {
    await db.query("rollback to savepoint attempt");
    return { rowCount: 0, rows: [], code: (err as { code?: string }).code ?? "unknown" };
  }
}

async function one<T = string>(db: pg.ClientBase, sql: string, params: unknown[]): Promise<T> {
  const r = await db.query(sql, params);
  const v = r.rows[0] ? Object.values(r.rows[0])[0] : undefined;
  if (v === undefined) throw new Error(`fixture query returned nothing: ${sql}`);
  return v as T;
}

/** Insert a dataset as the server would and move it to `status` through allowed transitions. */
export async function seedDataset(
  db: pg.ClientBase, userId: string, status: "uploading" | "validating" | "ready" | "error", fileName = "train.jsonl",
): Promise<string> {
  const id = await one(db, "insert into public.datasets (user_id, name, file_name) values ($1, 'fixture', $2) returning id", [
    userId, fileName,
  ]);
  const path: Record<string, string[]> = {
    uploading: [], validating: ["validating"], ready: ["validating", "ready"], error: ["validating", "error"],
  };
  for (const s of path[status] ?? []) await db.query("update public.datasets set status = $2 where id = $1", [id, s]);
  return id;
}

/** Insert a job on a ready dataset of `userId`, as the server would. */
export async function seedJob(db: pg.ClientBase, userId: string, datasetId: string, extra: Record<string, unknown> = {}): Promise<string> {
  const cols = ["user_id", "dataset_id", "base_model_id", ...Object.keys(extra)];
  const vals = [userId, datasetId, MODEL, ...Object.values(extra)];
  return await one(
    db,
    `insert into public.training_jobs (${cols.join(", ")}) values (${cols.map((_, i) => `$${i + 1}`).join(", ")}) returning id`,
    vals,
  );
}

/** Copy a seeded catalog entry under a fresh id. */
export async function seedModel(db: pg.ClientBase, enabled: boolean): Promise<string> {
  const id = `test-${randomUUID().slice(0, 8)}`;
  await db.query(
    `insert into public.base_models (id, display_name, family, hf_repo, parameter_count, context_length, tokenizer,
       lora_target_modules, default_target_modules, max_lora_rank, hyperparameters, gpu_type, gpu_count,
       price_per_gpu_hour, throughput_tokens_per_second, enabled)
     select $1, display_name, family, hf_repo, parameter_count, context_length, tokenizer, lora_target_modules,
       default_target_modules, max_lora_rank, hyperparameters, gpu_type, gpu_count, price_per_gpu_hour,
       throughput_tokens_per_second, $3
     from public.base_models where id = $2`,
    [id, MODEL, enabled],
  );
  return id;
}

/** Create the whole world as the connection's own role; call inside `rolledBack`. */
export async function seedWorld(db: pg.ClientBase): Promise<World> {
  const owner = await newUser(db, "owner");
  const other = await newUser(db, "other");
  const model = { enabled: await seedModel(db, true), disabled: await seedModel(db, false) };
  const ready = await seedDataset(db, owner.id, "ready");
  const uploading = await seedDataset(db, owner.id, "uploading");
  const empty = await seedDataset(db, owner.id, "uploading");
  const otherDataset = await seedDataset(db, other.id, "ready");
  const pathOf = (id: string) => one(db, "select storage_path from public.datasets where id = $1", [id]);
  const datasetPath = { uploading: await pathOf(uploading), empty: await pathOf(empty) };
  const job = await seedJob(db, owner.id, ready);
  const event = await one(db, "insert into public.job_events (job_id, type, message) values ($1, 'test.fixture', 'fixture') returning id::text", [job]);
  const metric = await one(db, "insert into public.metrics_points (job_id, step, train_loss) values ($1, 10, 1.5) returning id::text", [job]);
  const checkpoint = await one(
    db, `insert into public.checkpoints (job_id, step, storage_path, metrics, external_job_id)
         values ($1, 10, $2, '{"name": "checkpoint-10"}', 'job_fixture') returning id`,
    [job, `${owner.id}/${job}/checkpoints/step-10/`],
  );
  const modelObject = `${owner.id}/${job}/adapter_model.safetensors`;
  const artifact = await one(
    db, "insert into public.model_artifacts (job_id, kind, storage_path, size_bytes) values ($1, 'adapter_weights', $2, 1024) returning id",
    [job, modelObject],
  );
  const cost = await one(db, "insert into public.cost_records (job_id, kind, gpu_seconds, amount) values ($1, 'usage', 60, 0.0315) returning id", [job]);
  const notification = await one(
    db, "insert into public.notifications (user_id, kind, job_id) values ($1, 'job.test', $2) returning id", [owner.id, job],
  );
  await db.query(
    `insert into storage.objects (bucket_id, name, owner_id, metadata) values
       ('lora-datasets', $1, $3, '{"size": 10, "mimetype": "application/octet-stream"}'),
       ('lora-models', $2, null, '{"size": 1024, "mimetype": "application/octet-stream"}')`,
    [datasetPath.uploading, modelObject, owner.id],
  );
  // The model file is a delivered artifact: its bytes were verified (verify-artifacts does that for real uploads).
  await db.query("update public.model_artifacts set verification = 'verified', verified_at = now() where storage_path = $1", [modelObject]);
  // Whatever a Storage trigger did with the upload, reopen the dataset's upload window
  // so that "awaiting upload" cells start from that state.
  await db.query("update public.datasets set status = 'error' where id = $1 and status = 'validating'", [uploading]);
  await db.query("update public.datasets set status = 'uploading' where id = $1 and status = 'error'", [uploading]);
  return {
    owner, other, model, dataset: { ready, uploading, empty }, datasetPath, otherDataset, job, event, metric,
    checkpoint, artifact, cost, notification, modelObject,
  };
}
