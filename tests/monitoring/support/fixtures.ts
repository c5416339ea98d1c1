/**
 * Fixtures for the monitoring tests, usable against the shared test stack or
 * a test world (every helper takes the database and, where needed, the JWT
 * secret): users, ready datasets, jobs already running on a (real or made-up)
 * cluster job, signed callbacks, and snapshots of everything an update can
 * change, to assert that a refused request changed nothing.
 */
import { randomUUID } from "node:crypto";
import { request as httpRequest } from "node:http";
import type pg from "pg";
import { webhookHeaders } from "../../../functions/_shared/webhooks.ts";
import { mintApiKey, type LocalUser } from "../../../stack/jwt.ts";
import { signedInUser } from "../../helpers/db.ts";
import { type DatasetStats, DatasetStatsSchema } from "../../../types/dataset.ts";

export const LLAMA = "llama-3.1-8b-instruct";

export type Db = pg.Pool | pg.ClientBase;

/**
 * A user created through the Auth admin API of the stack `db` belongs to and
 * signed in. That stack's API URL is the one the database itself keeps in
 * Vault for pg_net (`project_url`); its keys are signed with `jwtSecret`.
 */
export async function makeUser(db: Db, jwtSecret: string, prefix = "mon"): Promise<LocalUser> {
  const { rows } = await db.query<{ name: string; decrypted_secret: string }>(
    "select name, decrypted_secret from vault.decrypted_secrets where name = 'project_url'",
  );
  const secret = (name: string) => {
    const row = rows.find((r) => r.name === name);
    if (!row) throw new Error(`Vault secret "${name}" is missing: is this database an embedded stack's?`);
    return row.decrypted_secret;
  };
  return await signedInUser(
    { API_URL: secret("project_url"), ANON_KEY: await mintApiKey(jwtSecret, "anon"), SERVICE_ROLE_KEY: await mintApiKey(jwtSecret, "service_role") },
    `${prefix}-${randomUUID().slice(0, 8)}@example.test`,
  );
}

/** Dataset statistics as the validation engine reports them, for the Llama 3 tokenizer (what these tests train). */
export function llamaStats(examples: number, tokensPerExample = 512): DatasetStats {
  const total = examples * tokensPerExample;
  const dist = { count: examples, sum: total, mean: tokensPerExample, min: tokensPerExample, p5: tokensPerExample,
    p50: tokensPerExample, p95: tokensPerExample, max: tokensPerExample };
  return DatasetStatsSchema.parse({
    format: "chat",
    lines: { total: examples, blank: 0, valid: examples, invalid: 0 },
    examples,
    duplicates: 0,
    messagesPerExample: null,
    roleCounts: { user: examples, assistant: examples },
    tokens: { llama3: { total: dist, trainable: dist, totalTokens: total, trainableTokens: Math.floor(total / 2) } },
    models: { [LLAMA]: { family: "llama3", contextLength: 131072, examplesOverContext: 0, billableTokensPerEpoch: total } },
    recommendedEpochs: null,
  });
}

/** A ready dataset of `user` (no file unless `upload` is given), with statistics as validation writes them. */
export async function readyDatasetRow(
  db: Db, user: LocalUser, examples = 1000, upload?: (path: string) => Promise<void>,
): Promise<string> {
  const { rows } = await db.query<{ id: string; storage_path: string }>(
    "insert into public.datasets (user_id, name, file_name) values ($1, 'monitoring test', 'train.jsonl') returning id, storage_path",
    [user.id],
  );
  const { id, storage_path: path } = rows[0]!;
  if (upload) await upload(path);
  // Whatever the upload trigger did meanwhile, end in ready with these statistics.
  await db.query("update public.datasets set status = 'validating' where id = $1 and status in ('uploading', 'error')", [id]);
  await db.query("update public.datasets set status = 'ready', stats = $2 where id = $1", [id, JSON.stringify(llamaStats(examples))]);
  return id;
}

export type RunningJob = { jobId: string; user: LocalUser; externalJobId: string; datasetId: string };

/**
 * A job of a new (or the given) user already in status running on cluster job
 * `externalJobId` (made up unless given): created, dispatched and recorded in
 * one transaction, its dispatch message removed, so no dispatcher touches it.
 */
export async function runningJob(
  pool: pg.Pool, jwtSecret: string,
  opts: { user?: LocalUser; externalJobId?: string; status?: "running" | "dispatching"; datasetId?: string } = {},
): Promise<RunningJob> {
  const user = opts.user ?? (await makeUser(pool, jwtSecret));
  const datasetId = opts.datasetId ?? (await readyDatasetRow(pool, user));
  const externalJobId = opts.externalJobId ?? `fake_${randomUUID()}`;
  const c = await pool.connect();
  try {
    await c.query("begin");
    const { rows } = await c.query<{ id: string }>(
      "insert into public.training_jobs (user_id, dataset_id, base_model_id, name) values ($1, $2, $3, 'monitoring test') returning id",
      [user.id, datasetId, LLAMA],
    );
    const jobId = rows[0]!.id;
    await c.query("delete from pgmq.q_training_dispatch where message ->> 'job_id' = $1", [jobId]);
    await c.query("update public.training_jobs set status = 'dispatching' where id = $1", [jobId]);
    if ((opts.status ?? "running") === "running") {
      await c.query("update public.training_jobs set status = 'running', external_job_id = $2 where id = $1", [jobId, externalJobId]);
    }
    await c.query("commit");
    return { jobId, user, externalJobId, datasetId };
  } catch (err) {
    await c.query("rollback").catch(() => {});
    throw err;
  } finally {
    c.release();
  }
}

/**
 * POST a body signed with Standard Webhooks (optionally with another id, timestamp or secret).
 * `fresh`: on a connection of its own, closed afterwards (a server that refuses a body unread
 * closes the connection, which a pooled fetch might otherwise reuse for the next request).
 */
export async function signedPost(
  url: string, secret: string | string[], body: string,
  opts: { id?: string; timestamp?: number; headers?: Record<string, string>; fresh?: boolean } = {},
): Promise<Response> {
  const headers = {
    "content-type": "application/json",
    ...(await webhookHeaders(secret, {
      id: opts.id ?? `msg_${randomUUID()}`,
      body,
      ...(opts.timestamp === undefined ? {} : { timestamp: opts.timestamp }),
    })),
    ...opts.headers,
  };
  if (!opts.fresh) return await fetch(url, { method: "POST", headers, body });
  return await new Promise<Response>((resolve, reject) => {
    const req = httpRequest(url, { method: "POST", headers: { ...headers, "content-length": String(Buffer.byteLength(body)) }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve(new Response(Buffer.concat(chunks), { status: res.statusCode ?? 0 })));
      res.on("error", reject);
    });
    // The server may answer and close before reading it all; that is the point.
    req.on("error", (err: NodeJS.ErrnoException) => (err.code === "EPIPE" || err.code === "ECONNRESET" ? undefined : reject(err)));
    req.end(body);
  });
}

/** Everything an update about a job may change, for "nothing changed" assertions. */
export async function snapshot(db: Db, jobId: string): Promise<Record<string, unknown>> {
  const { rows } = await db.query(
    `select to_jsonb(j) - 'last_polled_at' - 'updated_at' as job,
            (select count(*) from public.job_events e where e.job_id = j.id)::int as events,
            (select count(*) from public.metrics_points m where m.job_id = j.id)::int as metrics,
            (select count(*) from public.checkpoints k where k.job_id = j.id)::int as checkpoints,
            (select count(*) from public.cost_records r where r.job_id = j.id)::int as costs,
            (select count(*) from public.notifications n where n.job_id = j.id)::int as notifications,
            (select count(*) from public.model_artifacts a where a.job_id = j.id)::int as artifacts,
            (select count(*) from private.webhook_receipts w where w.job_id = j.id)::int as receipts
       from public.training_jobs j where j.id = $1`,
    [jobId],
  );
  return rows[0] as Record<string, unknown>;
}

/** A job's events, oldest first. */
export async function events(db: Db, jobId: string): Promise<Array<{ level: string; type: string; message: string; data: Record<string, unknown> }>> {
  return (await db.query("select level::text, type, message, data from public.job_events where job_id = $1 order by id", [jobId])).rows;
}

export type JobRow = {
  id: string; status: string; error: { code: string; message: string; kind: string; hint?: string } | null;
  external_job_id: string | null; current_step: number | null; total_steps: number | null; progress_pct: string;
  current_epoch: string | null; actual_gpu_seconds: string | null; actual_cost: string | null; attempt_count: number;
  estimated_finish_at: Date | null; last_polled_at: Date | null; started_at: Date | null; finished_at: Date | null;
};

export async function job(db: Db, jobId: string): Promise<JobRow> {
  return (await db.query<JobRow>("select * from public.training_jobs where id = $1", [jobId])).rows[0]!;
}
