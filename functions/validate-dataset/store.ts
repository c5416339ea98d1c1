/**
 * The worker's side of the database: one call per step, each an atomic SQL
 * function of migration 20261126120200 (see its header for the protocol).
 * Every step after the claim presents the lease token; when the run was
 * taken over or voided by a re-upload the database answers LT286, surfaced
 * here as {@link LeaseLostError}.
 */
import type pg from "pg";
import { z } from "zod";
import type { Duplicate, EngineOptions, EngineState, HashEntry } from "../_shared/dataset/engine.ts";
import { AppError } from "../_shared/errors.ts";
import type { ValidationResult } from "../../types/dataset.ts";

/** The pool surface the store uses (queries, and a client for transactions). */
export type Db = Pick<pg.Pool, "query" | "connect">;

/** A run this invocation holds the lease on. */
export type Lease = { datasetId: string; generation: number; token: string };

export type ClaimedRun = Lease & {
  msgId: number;
  readCt: number;
  objectName: string;
  sizeBytes: number | null;
  /** Chunks saved so far in this generation. */
  seq: number;
  options: EngineOptions;
  /** The engine state after the last saved chunk; null before the first. */
  cursor: EngineState | null;
};

/** What the dataset row's `error` holds when validation fails. */
export type DatasetError = { code: string; message: string; kind: "user" | "system"; hint?: string; line?: number };

/** The run was taken over by another invocation or voided by a re-upload (LT286). */
export class LeaseLostError extends AppError {
  constructor(datasetId: string, cause?: unknown) {
    super(`The validation run of dataset "${datasetId}" is no longer leased by this worker`, { code: "LT286", status: 409, cause });
  }
}

const bigintish = z.union([z.number(), z.string()]).transform(Number).pipe(z.number().int().nonnegative());

const ClaimRow = z.object({
  dataset_id: z.guid(),
  generation: z.number().int().positive(),
  lease_token: z.guid(),
  msg_id: bigintish,
  read_ct: z.number().int(),
  object_name: z.string().min(1),
  size_bytes: bigintish.nullable(),
  seq: z.number().int().nonnegative(),
  options: z.record(z.string(), z.unknown()),
  cursor: z.record(z.string(), z.unknown()).nullable(),
});

const isLeaseLost = (err: unknown) => (err as { code?: unknown }).code === "LT286";

/** The worker's database steps. */
export interface ValidationStore {
  /** Lease the next run with work, or null when the queue has none. */
  claim(): Promise<ClaimedRun | null>;
  /**
   * Save chunk `seq + 1` in one transaction: claim its example hashes,
   * store its invalid lines (what a tolerated file is trained without),
   * let `next` fold the duplicates found into the engine state and
   * serialise it, store that cursor. Returns the new state.
   */
  saveChunk(
    lease: Lease,
    seq: number,
    chunk: {
      hashes: HashEntry[];
      skippedLines: number[];
      bytesDone: number;
      progressPct: number;
      next: (dups: Duplicate[]) => { state: EngineState; json: string };
    },
  ): Promise<EngineState>;
  /** Budget spent: release the run for the next invocation (and wake it). */
  continueRun(lease: Lease): Promise<void>;
  /** Store the verdict; returns the dataset's new status (null if it left validating meanwhile). */
  finish(lease: Lease, seq: number, result: ValidationResult, error: DatasetError | null): Promise<string | null>;
  /** Count a failed attempt; "failed" when attempts are exhausted (the dataset got LT282). */
  retry(lease: Lease, error: string): Promise<"retrying" | "failed">;
  /** The file cannot be validated: put `error` on the dataset and end the run. */
  fail(lease: Lease, error: DatasetError): Promise<void>;
}

export type PgStoreOptions = {
  /** pgmq queue (default dataset_validation; tests use their own). */
  queue?: string;
  /** Visibility timeout in seconds (default: the visibility_timeout_seconds setting). */
  visibilityTimeoutSeconds?: number;
};

/** A {@link ValidationStore} over Postgres. */
export function createPgStore(db: Db, opts: PgStoreOptions = {}): ValidationStore {
  const queue = opts.queue ?? "dataset_validation";

  const leased = async <T>(lease: Lease, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      throw isLeaseLost(err) ? new LeaseLostError(lease.datasetId, err) : err;
    }
  };

  return {
    async claim() {
      const { rows } = await db.query(
        "select * from private.claim_dataset_validation(p_queue => $1, p_vt => $2::integer)",
        [queue, opts.visibilityTimeoutSeconds ?? null],
      );
      if (rows.length === 0) return null;
      const r = ClaimRow.parse(rows[0]);
      return {
        datasetId: r.dataset_id, generation: r.generation, token: r.lease_token, msgId: r.msg_id, readCt: r.read_ct,
        objectName: r.object_name, sizeBytes: r.size_bytes, seq: r.seq,
        options: r.options as EngineOptions, cursor: r.cursor as EngineState | null,
      };
    },

    saveChunk: (lease, seq, chunk) => leased(lease, async () => {
      const client = await db.connect();
      try {
        await client.query("begin");
        const { rows } = await client.query<{ line: number; first_line: number }>(
          "select line, first_line from private.claim_dataset_example_hashes($1, $2, $3, $4::jsonb)",
          [lease.datasetId, lease.token, seq, JSON.stringify(chunk.hashes)],
        );
        if (chunk.skippedLines.length > 0) {
          await client.query("select private.record_dataset_skipped_lines($1, $2, $3, $4::jsonb)", [
            lease.datasetId, lease.token, seq, JSON.stringify(chunk.skippedLines),
          ]);
        }
        const { state, json } = chunk.next(rows.map((r) => ({ line: r.line, firstLine: r.first_line })));
        await client.query("select private.save_dataset_validation_chunk($1, $2, $3, $4::jsonb, $5, $6)", [
          lease.datasetId, lease.token, seq, json, chunk.bytesDone, chunk.progressPct,
        ]);
        await client.query("commit");
        return state;
      } catch (err) {
        await client.query("rollback").catch(() => {});
        throw err;
      } finally {
        client.release();
      }
    }),

    continueRun: (lease) => leased(lease, async () => {
      await db.query("select private.continue_dataset_validation($1, $2)", [lease.datasetId, lease.token]);
    }),

    finish: (lease, seq, result, error) => leased(lease, async () => {
      const { rows } = await db.query<{ status: string | null }>(
        "select private.finish_dataset_validation($1, $2, $3, $4::jsonb, $5::jsonb) as status",
        [lease.datasetId, lease.token, seq, JSON.stringify(result), error === null ? null : JSON.stringify(error)],
      );
      return rows[0]?.status ?? null;
    }),

    retry: (lease, error) => leased(lease, async () => {
      const { rows } = await db.query<{ outcome: "retrying" | "failed" }>(
        "select private.retry_dataset_validation($1, $2, $3) as outcome",
        [lease.datasetId, lease.token, error],
      );
      return rows[0]!.outcome;
    }),

    fail: (lease, error) => leased(lease, async () => {
      await db.query("select private.fail_dataset_validation($1, $2, $3::jsonb)", [
        lease.datasetId, lease.token, JSON.stringify(error),
      ]);
    }),
  };
}
