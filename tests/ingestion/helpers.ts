/**
 * Shared pieces of the ingestion tests: datasets and uploads as a client
 * makes them, waiting for a verdict, the engine's one-pass answer to compare
 * with, and a harness that runs the validate-dataset handler in-process on a
 * queue of its own (so the stack's deployed worker never sees its messages)
 * with an in-memory file whose reads can be made to fail or hang.
 */
import { randomUUID } from "node:crypto";
import pg from "pg";
import { validateBytes } from "../../functions/_shared/dataset/dedupe.ts";
import type { EngineOptions } from "../../functions/_shared/dataset/engine.ts";
import { loadTokenCounter } from "../../functions/_shared/dataset/tokenizer-loader.ts";
import type { TokenCounter } from "../../functions/_shared/dataset/tokens.ts";
import { TOKENIZER_FAMILIES, type TokenizerFamily, type ValidationResult } from "../../types/dataset.ts";
import { createHandler } from "../../functions/validate-dataset/handler.ts";
import type { ObjectReader } from "../../functions/validate-dataset/object-reader.ts";
import { createPgStore, type ValidationStore } from "../../functions/validate-dataset/store.ts";
import type { WorkerDeps, WorkerReport } from "../../functions/validate-dataset/worker.ts";
import type { LocalUser } from "../../stack/jwt.ts";
import { testStack } from "../helpers/stack.ts";
import { supabaseClient } from "../helpers/supabase.ts";
import { waitFor } from "../helpers/wait.ts";

type Queryable = Pick<pg.ClientBase, "query">;

export type DatasetRow = {
  id: string;
  status: string;
  storage_path: string;
  size_bytes: string | null;
  mime_type: string | null;
  format: string | null;
  progress_pct: string;
  stats: ValidationResult["stats"] | null;
  report: ValidationResult["report"] | null;
  error: { code: string; message: string; kind: string; line?: number; hint?: string } | null;
};

export type RunRow = {
  generation: number;
  seq: number;
  options: EngineOptions;
  msg_id: string | null;
  failed_attempts: number;
  invocations: number;
  last_error: string | null;
  outcome: string | null;
  lease_token: string | null;
};

/** A dataset row awaiting upload, committed so Storage (another connection) sees it. */
export async function newDataset(
  db: Queryable, user: { id: string }, opts: { fileName?: string; maxInvalidFraction?: number } = {},
): Promise<{ id: string; path: string }> {
  const { rows } = await db.query(
    `insert into public.datasets (user_id, name, file_name, max_invalid_fraction)
     values ($1, 'ingestion test', $2, $3) returning id, storage_path`,
    [user.id, opts.fileName ?? "train.jsonl", opts.maxInvalidFraction ?? 0],
  );
  return { id: rows[0].id as string, path: rows[0].storage_path as string };
}

/** Upload as the owner with supabase-js, as a frontend does. */
export async function upload(user: LocalUser, path: string, bytes: Uint8Array, opts: { upsert?: boolean } = {}) {
  return await supabaseClient(testStack().ANON_KEY, user.token).storage.from("lora-datasets")
    .upload(path, bytes, { contentType: "application/jsonl", upsert: opts.upsert ?? false });
}

export async function datasetRow(db: pg.ClientBase, id: string): Promise<DatasetRow> {
  return (await db.query("select * from public.datasets where id = $1", [id])).rows[0] as DatasetRow;
}

export async function runRow(db: Queryable, id: string): Promise<RunRow | undefined> {
  return (await db.query("select * from private.dataset_validation_runs where dataset_id = $1", [id])).rows[0] as RunRow | undefined;
}

/** Wait until the dataset leaves validating (and uploading), and return it. */
export async function waitForVerdict(db: pg.ClientBase, id: string, timeoutMs = 180_000): Promise<DatasetRow> {
  return await waitFor(async () => {
    const row = await datasetRow(db, id);
    return row.status === "ready" || row.status === "error" ? row : undefined;
  }, { timeoutMs, intervalMs: 100, what: `a verdict on dataset ${id}` });
}

let counters: Promise<Partial<Record<TokenizerFamily, TokenCounter>>> | undefined;

/** Every family's token counter (loaded once per test file). */
export function allCounters(): Promise<Partial<Record<TokenizerFamily, TokenCounter>>> {
  counters ??= (async () => {
    const entries = await Promise.all(TOKENIZER_FAMILIES.map(async (f) => [f, await loadTokenCounter(f)] as const));
    return Object.fromEntries(entries);
  })();
  return counters;
}

/** The engine's result for the whole file in one chunk: what the pipeline must reproduce. */
export async function onePass(bytes: Uint8Array, options: EngineOptions): Promise<ValidationResult> {
  return validateBytes(bytes, { options, counters: await allCounters() });
}

/** A file held in memory, served like Storage; `fault(n)` may throw or stall read number n (1-based). */
export function memoryReader(bytes: Uint8Array, fault?: (n: number) => Promise<void> | void): ObjectReader & { reads: number } {
  const reader = {
    reads: 0,
    size: async () => bytes.length,
    read: async (_path: string, offset: number, length: number) => {
      reader.reads++;
      await fault?.(reader.reads);
      return { bytes: bytes.slice(offset, offset + length), total: bytes.length };
    },
  };
  return reader;
}

/** A promise to stall on, and the function that ends the stall. */
export function gate(): { wait: Promise<void>; open: () => void } {
  let open = () => {};
  const wait = new Promise<void>((ok) => (open = ok));
  return { wait, open };
}

/** The in-process worker on a private queue. Call `close()` in afterAll. */
export class Harness {
  readonly queue = `dv_test_${randomUUID().replace(/-/g, "").slice(0, 16)}`;
  readonly pool = new pg.Pool({ connectionString: testStack().DB_URL, max: 6 });
  readonly serviceRoleKey = `test-key-${randomUUID()}`;

  async open(): Promise<this> {
    await this.pool.query("select pgmq.create(queue_name => $1)", [this.queue]);
    return this;
  }

  async close(): Promise<void> {
    await this.pool.query("select pgmq.drop_queue(queue_name => $1)", [this.queue]);
    await this.pool.end();
  }

  /** A dataset in validating with a run and one message on this harness's queue (no Storage object). */
  async prepare(user: { id: string }, bytes: Uint8Array, opts: { maxInvalidFraction?: number } = {}): Promise<string> {
    const { id } = await newDataset(this.pool, user, opts);
    await this.pool.query(
      "update public.datasets set status = 'validating', size_bytes = $2, mime_type = 'application/jsonl' where id = $1",
      [id, bytes.length],
    );
    await this.pool.query("select private.enqueue_dataset_validation($1, $2)", [id, this.queue]);
    return id;
  }

  store(opts: { visibilityTimeoutSeconds?: number } = {}): ValidationStore {
    return createPgStore(this.pool, { queue: this.queue, ...opts });
  }

  /** One invocation of the handler, as pg_net makes it. */
  async invoke(deps: Omit<WorkerDeps, "store" | "loadCounter"> & { store?: ValidationStore }): Promise<WorkerReport> {
    const handler = createHandler({ loadCounter: loadTokenCounter, store: this.store(), ...deps, serviceRoleKey: this.serviceRoleKey });
    const res = await handler(new Request("http://localhost/validate-dataset", {
      method: "POST", headers: { authorization: `Bearer ${this.serviceRoleKey}` }, body: "{}",
    }));
    const body = (await res.json()) as { data?: WorkerReport; error?: unknown };
    if (res.status !== 200 || !body.data) throw new Error(`handler answered ${res.status}: ${JSON.stringify(body)}`);
    return body.data;
  }

  /** Invoke until the dataset has a verdict (at most `max` invocations); returns every report. */
  async drain(db: pg.ClientBase, id: string, deps: Parameters<Harness["invoke"]>[0], max = 500): Promise<WorkerReport[]> {
    const reports: WorkerReport[] = [];
    for (let i = 0; i < max; i++) {
      reports.push(await this.invoke(deps));
      const { status } = await datasetRow(db, id);
      if (status !== "validating") return reports;
    }
    throw new Error(`dataset ${id} still validating after ${max} invocations`);
  }

  /** Make the run's message visible now, as if its visibility timeout had passed. */
  async expire(id: string): Promise<void> {
    const run = await runRow(this.pool, id);
    await this.pool.query("select pgmq.set_vt(queue_name => $1, msg_id => $2::bigint, vt => 0)", [this.queue, run!.msg_id]);
  }
}
