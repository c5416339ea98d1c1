/**
 * The storage.objects trigger and the pg_cron safety net, at the SQL level,
 * each case in a transaction that is rolled back (pgmq messages and pg_net
 * requests included, so the deployed worker never sees them). Writes are
 * made the way Storage makes them: the rolled-back probe as the uploader,
 * the committed row as service_role with owner_id set.
 */
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LocalUser } from "../../stack/jwt.ts";
import { claimsFor, connect, newUser, sqlState, type Role } from "../helpers/db.ts";

describe("upload trigger", () => {
  let db: pg.Client;
  let owner: LocalUser;
  let other: LocalUser;

  beforeAll(async () => {
    db = await connect();
    owner = await newUser(db, "trigger");
    other = await newUser(db, "trigger-other");
  });
  afterAll(async () => {
    await db.end();
  });

  /** Run `fn` in a transaction that is always rolled back. */
  const rolledBack = async <T>(fn: () => Promise<T>): Promise<T> => {
    await db.query("begin");
    try {
      return await fn();
    } finally {
      await db.query("rollback");
    }
  };

  /** Act as a role inside the open transaction, as Storage's transactions do; back to the session user afterwards. */
  const as = async <T>(role: Role, fn: () => Promise<T>, user?: LocalUser): Promise<T> => {
    await db.query("select set_config('role', $1, true), set_config('request.jwt.claims', $2, true)", [role, JSON.stringify(claimsFor(role, user))]);
    try {
      return await fn();
    } finally {
      await db.query("reset role").catch(() => {}); // fails only in an aborted transaction, which the caller rolls back
    }
  };

  /** Run `fn` and return its SQLSTATE, undoing whatever it did. */
  const attempt = async (fn: () => Promise<unknown>) => {
    await db.query("savepoint attempt");
    const code = await sqlState(fn());
    await db.query("rollback to savepoint attempt");
    return code;
  };

  const dataset = async (status: "uploading" | "ready" = "uploading") => {
    const { rows } = await db.query(
      "insert into public.datasets (user_id, name, file_name) values ($1, 'trigger test', 'train.jsonl') returning id, storage_path",
      [owner.id],
    );
    const { id, storage_path: path } = rows[0] as { id: string; storage_path: string };
    if (status === "ready") {
      await db.query("update public.datasets set status = 'validating' where id = $1", [id]);
      await db.query("update public.datasets set status = 'ready' where id = $1", [id]);
    }
    return { id, path };
  };

  /** The committed write Storage makes: service_role, owner_id = uploader, metadata from the upload. */
  const storageWrite = (path: string, opts: { owner?: string | null; version?: string; size?: number; upsert?: boolean } = {}) =>
    as("service_role", () => db.query(
      `insert into storage.objects (bucket_id, name, owner_id, version, metadata)
       values ('lora-datasets', $1, $2, $3, jsonb_build_object('size', $4::bigint, 'mimetype', 'application/jsonl'))
       ${opts.upsert ? "on conflict (name, bucket_id) do update set version = excluded.version, metadata = excluded.metadata" : ""}`,
      [path, opts.owner === undefined ? owner.id : opts.owner, opts.version ?? "v1", opts.size ?? 1234],
    ));

  const state = async (id: string) => {
    const d = (await db.query("select status, size_bytes::int as size, mime_type, progress_pct::float as pct from public.datasets where id = $1", [id])).rows[0];
    const run = (await db.query("select generation, msg_id::int, outcome from private.dataset_validation_runs where dataset_id = $1", [id])).rows[0];
    const messages = (await db.query("select message from pgmq.q_dataset_validation where message ->> 'dataset_id' = $1", [id])).rows.map((r) => r.message);
    return { dataset: d, run, messages };
  };

  it("the committed write moves the dataset to validating with size and MIME type, enqueues one message and wakes the worker", async () => {
    const r = await rolledBack(async () => {
      const { id, path } = await dataset();
      await storageWrite(path, { size: 4321 });
      const wake = await db.query("select url, body from net.http_request_queue where url like '%/functions/v1/validate-dataset' and convert_from(body, 'utf8')::jsonb ->> 'dataset_id' = $1", [id]);
      return { id, ...(await state(id)), wakes: wake.rowCount };
    });
    expect(r.dataset).toEqual({ status: "validating", size: 4321, mime_type: "application/jsonl", pct: 0 });
    expect(r.run).toMatchObject({ generation: 1, outcome: null });
    expect(r.messages).toEqual([{ dataset_id: r.id, generation: 1 }]);
    expect(r.wakes).toBe(1);
  });

  it("Storage's rolled-back probe as the uploader leaves no run, message or status change behind", async () => {
    const r = await rolledBack(async () => {
      const { id, path } = await dataset();
      await db.query("savepoint probe");
      const inside = await as("authenticated", async () => {
        await db.query("insert into storage.objects (bucket_id, name, owner_id, version) values ('lora-datasets', $1, $2, '1')", [path, owner.id]);
        return (await db.query("select status from public.datasets where id = $1", [id])).rows[0].status as string;
      }, owner);
      await db.query("rollback to savepoint probe");
      return { inside, after: await state(id) };
    });
    expect(r.inside).toBe("validating"); // the trigger ran in the probe...
    expect(r.after.dataset.status).toBe("uploading"); // ...and the rollback undid all of it
    expect(r.after.run).toBeUndefined();
    expect(r.after.messages).toEqual([]);
  });

  it("a re-upload (new version) starts a new generation and voids the old message; a metadata-only update does not", async () => {
    const r = await rolledBack(async () => {
      const { id, path } = await dataset();
      await storageWrite(path, { version: "v1" });
      await storageWrite(path, { version: "v2", size: 99, upsert: true });
      const afterReupload = await state(id);
      await db.query("update storage.objects set metadata = metadata || '{\"cacheControl\": \"no-cache\"}' where name = $1", [path]);
      return { id, afterReupload, afterEdit: await state(id) };
    });
    expect(r.afterReupload.run).toMatchObject({ generation: 2 });
    expect(r.afterReupload.messages).toEqual([{ dataset_id: r.id, generation: 2 }]);
    expect(r.afterReupload.dataset.size).toBe(99);
    expect(r.afterEdit).toEqual(r.afterReupload);
  });

  it("a re-upload of a failed dataset replaces its verdict: error -> validating, old report and error cleared", async () => {
    const r = await rolledBack(async () => {
      const { id, path } = await dataset();
      await storageWrite(path, { version: "v1" });
      await db.query(
        `update public.datasets set status = 'error', report = '{"errorCount": 1}', stats = '{"examples": 0}',
           error = '{"code": "LT213", "message": "Invalid JSON", "kind": "user"}' where id = $1`, [id]);
      await storageWrite(path, { version: "v2", upsert: true });
      return (await db.query("select status, report, stats, error, format from public.datasets where id = $1", [id])).rows[0];
    });
    expect(r).toEqual({ status: "validating", report: null, stats: null, error: null, format: null });
  });

  it("refuses objects that match no dataset awaiting a file, with LT280 or LT281", async () => {
    const codes = await rolledBack(async () => {
      const fresh = await dataset();
      const deleted = await dataset();
      await db.query("update public.datasets set deleted_at = now() where id = $1", [deleted.id]);
      const ready = await dataset("ready");
      return {
        noDataset: await attempt(() => storageWrite(`${owner.id}/00000000-0000-4000-8000-000000000000/train.jsonl`)),
        otherOwner: await attempt(() => storageWrite(fresh.path, { owner: other.id })),
        deleted: await attempt(() => storageWrite(deleted.path)),
        ready: await attempt(() => storageWrite(ready.path)),
        serviceRoleWithoutOwner: await attempt(() => storageWrite(fresh.path, { owner: null })),
      };
    });
    expect(codes).toEqual({ noDataset: "LT280", otherOwner: "LT280", deleted: "LT280", ready: "LT281", serviceRoleWithoutOwner: undefined });
  });

  it("leaves other buckets alone", async () => {
    const code = await rolledBack(() => attempt(() => as("service_role", () => db.query(
      "insert into storage.objects (bucket_id, name) values ('lora-models', $1)", [`${owner.id}/x/adapter_model.safetensors`],
    ))));
    expect(code).toBeUndefined();
  });

  it("pg_cron runs the safety net every minute, with a schedule valid on pg_cron 1.4 and 1.6", async () => {
    const { rows } = await db.query("select schedule, command, active from cron.job where jobname = 'validate-datasets'");
    expect(rows).toEqual([{ schedule: "* * * * *", command: "select private.dataset_validation_safety_net()", active: true }]);
  });

  it("the safety net re-sends a lost message of a quiet run and wakes the worker", async () => {
    const r = await rolledBack(async () => {
      const { id, path } = await dataset();
      await storageWrite(path);
      await db.query("select pgmq.delete(queue_name => 'dataset_validation', msg_id => msg_id) from private.dataset_validation_runs where dataset_id = $1", [id]);
      // Age the run past sweep_after_seconds without the updated_at trigger.
      await db.query("set local session_replication_role = replica");
      await db.query("update private.dataset_validation_runs set updated_at = now() - interval '1 hour' where dataset_id = $1", [id]);
      await db.query("set local session_replication_role = origin");
      const net = (await db.query<{ safety: { requeued: number; request_id: number | null } }>("select private.dataset_validation_safety_net() as safety")).rows[0]!.safety;
      return { id, net, after: await state(id) };
    });
    expect(r.net.requeued).toBeGreaterThanOrEqual(1);
    expect(r.net.request_id).not.toBeNull();
    expect(r.after.messages).toEqual([{ dataset_id: r.id, generation: 1 }]);
  });
});
