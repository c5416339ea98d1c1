/**
 * What a signed-in client may write, column by column: only the columns it
 * owns on insert, only cosmetic columns on update, soft delete with its
 * rules, and never a row for someone else or one that points at someone
 * else's data. Everything else is server-owned and refused with 42501.
 */
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "../helpers/db.ts";
import { actAs, actAsAdmin, attempt, MODEL, rolledBack, seedDataset, seedJob, seedWorld, type World } from "./lora-fixtures.ts";

const CLIENT_UPDATABLE: Record<string, string[]> = {
  datasets: ["name", "description", "deleted_at"],
  training_jobs: ["name", "deleted_at"],
  notifications: ["is_read"],
};
const CLIENT_INSERTABLE: Record<string, string[]> = {
  datasets: ["user_id", "name", "description", "file_name", "max_invalid_fraction"],
  training_jobs: [
    "user_id", "dataset_id", "validation_dataset_id", "base_model_id", "name", "suffix", "requested_config",
    "idempotency_key", "parent_job_id", "resume_from_checkpoint_id",
  ],
};

describe("client writes", () => {
  let db: pg.Client;
  let columns: Record<string, string[]>;
  beforeAll(async () => {
    db = await connect();
    const { rows } = await db.query(
      `select table_name, array_agg(column_name::text order by ordinal_position) as cols from information_schema.columns
        where table_schema = 'public' and table_name in ('datasets', 'training_jobs', 'notifications') group by table_name`,
    );
    columns = Object.fromEntries(rows.map((r) => [r.table_name, r.cols]));
  });
  afterAll(async () => {
    await db.end();
  });

  const asOwner = async <T>(fn: (w: World) => Promise<T>): Promise<T> =>
    await rolledBack(db, async () => {
      const w = await seedWorld(db);
      await actAs(db, "owner", w);
      return await fn(w);
    });

  const rowOf = (table: string, w: World) =>
    table === "datasets" ? w.dataset.uploading : table === "training_jobs" ? w.job : w.notification;

  it("the grants match the documented client-writable columns", async () => {
    const { rows } = await db.query(
      `select table_name, privilege_type, array_agg(column_name::text order by column_name) as cols
         from information_schema.column_privileges
        where grantee = 'authenticated' and table_schema = 'public' and privilege_type in ('INSERT', 'UPDATE')
        group by table_name, privilege_type`,
    );
    const got = Object.fromEntries(rows.map((r) => [`${r.table_name}.${r.privilege_type}`, r.cols]));
    const want: Record<string, string[]> = {};
    for (const [t, cols] of Object.entries(CLIENT_INSERTABLE)) want[`${t}.INSERT`] = [...cols].sort();
    for (const [t, cols] of Object.entries(CLIENT_UPDATABLE)) want[`${t}.UPDATE`] = [...cols].sort();
    expect(got).toEqual(want);
  });

  for (const table of Object.keys(CLIENT_UPDATABLE)) {
    it(`the owner cannot change any server-owned column of ${table}`, async () => {
      const serverOwned = columns[table]!.filter((c) => !CLIENT_UPDATABLE[table]!.includes(c));
      expect(serverOwned.length).toBeGreaterThan(5);
      const codes = await asOwner(async (w) => {
        const out: Record<string, string | undefined> = {};
        for (const col of serverOwned) {
          // Setting a column to itself still needs the privilege.
          out[col] = (await attempt(db, `update public.${table} set ${col} = ${col} where id = $1`, [rowOf(table, w)])).code;
        }
        return out;
      });
      // A generated column (storage_path) is refused as such, before privileges are checked.
      expect(codes).toEqual(Object.fromEntries(serverOwned.map((c) => [c, c === "storage_path" ? "428C9" : "42501"])));
    });
  }

  it.each([
    ["datasets", "status", "'ready'"], ["datasets", "stats", "'{}'"], ["datasets", "size_bytes", "1"],
    ["training_jobs", "status", "'running'"], ["training_jobs", "config", "'{}'"], ["training_jobs", "external_job_id", "'x'"],
    ["training_jobs", "estimated_cost", "0"], ["training_jobs", "actual_cost", "0"], ["training_jobs", "error", "null"],
  ])("a client insert into %s naming server-owned %s is refused", async (table, col, value) => {
    const r = await asOwner(async (w) => {
      const sql = table === "datasets"
        ? `insert into public.datasets (name, file_name, ${col}) values ('x', 'x.jsonl', ${value})`
        : `insert into public.training_jobs (dataset_id, base_model_id, ${col}) values ($1, '${MODEL}', ${value})`;
      return await attempt(db, sql, table === "datasets" ? [] : [w.dataset.ready]);
    });
    expect(r.code).toBe("42501");
  });

  it("a client insert defaults the owner to the caller", async () => {
    const r = await asOwner(async (w) => ({
      w,
      ds: await attempt(db, "insert into public.datasets (name, file_name) values ('x', 'x.jsonl') returning user_id, status::text"),
      job: await attempt(db, "insert into public.training_jobs (dataset_id, base_model_id) values ($1, $2) returning user_id, status::text", [
        w.dataset.ready, MODEL,
      ]),
    }));
    expect(r.ds.rows[0]).toEqual({ user_id: r.w.owner.id, status: "uploading" });
    expect(r.job.rows[0]).toEqual({ user_id: r.w.owner.id, status: "queued" });
  });

  it("a user cannot create a dataset or a job for another user", async () => {
    const r = await asOwner(async (w) => [
      await attempt(db, "insert into public.datasets (user_id, name, file_name) values ($1, 'x', 'x.jsonl')", [w.other.id]),
      await attempt(db, "insert into public.training_jobs (user_id, dataset_id, base_model_id) values ($1, $2, $3)", [
        w.other.id, w.otherDataset, MODEL,
      ]),
    ]);
    expect(r.map((a) => a.code)).toEqual(["42501", "42501"]);
  });

  it("a job cannot reference another user's dataset, validation dataset or parent job", async () => {
    const r = await asOwner(async (w) => {
      await actAsAdmin(db);
      const otherJob = await seedJob(db, w.other.id, w.otherDataset);
      await db.query("update public.training_jobs set status = 'cancelled' where id = $1", [otherJob]);
      await actAs(db, "owner", w);
      const insert = (cols: string, vals: unknown[]) =>
        attempt(db, `insert into public.training_jobs (base_model_id, ${cols}) values ('${MODEL}', $1, $2)`, vals);
      return [
        await insert("dataset_id, name", [w.otherDataset, "x"]),
        await insert("dataset_id, validation_dataset_id", [w.dataset.ready, w.otherDataset]),
        await insert("dataset_id, parent_job_id", [w.dataset.ready, otherJob]),
      ];
    });
    expect(r.map((a) => a.code)).toEqual(["23503", "23503", "23503"]);
  });

  it("a job needs ready, undeleted datasets and an enabled base model", async () => {
    const r = await asOwner(async (w) => {
      await actAsAdmin(db);
      const deleted = await seedDataset(db, w.owner.id, "ready");
      await db.query("update public.datasets set deleted_at = now() where id = $1", [deleted]);
      await actAs(db, "owner", w);
      const insert = (ds: string, model = MODEL) =>
        attempt(db, "insert into public.training_jobs (dataset_id, base_model_id) values ($1, $2)", [ds, model]);
      return {
        uploading: (await insert(w.dataset.uploading)).code,
        deleted: (await insert(deleted)).code,
        disabledModel: (await insert(w.dataset.ready, w.model.disabled)).code,
        unknownModel: (await insert(w.dataset.ready, "no-such-model")).code,
      };
    });
    // Config validation (_300_validate_config, before insert) reports the model first with LT106;
    // LT008 in _200_check_references is the backstop should that check ever be relaxed.
    expect(r).toEqual({ uploading: "LT007", deleted: "LT007", disabledModel: "LT106", unknownModel: "LT106" });
  });

  it("a continuation needs a finished parent on the same base model and one of its checkpoints", async () => {
    const r = await asOwner(async (w) => {
      const insert = (cols: string, vals: unknown[]) =>
        attempt(db, `insert into public.training_jobs (dataset_id, base_model_id, ${cols}) values ($1, $2, $3, $4)`, [
          w.dataset.ready, ...vals,
        ]);
      const active = (await insert("parent_job_id, name", [MODEL, w.job, "x"])).code;
      await actAsAdmin(db);
      await db.query("update public.training_jobs set status = 'cancelled' where id = $1", [w.job]);
      const sibling = await seedJob(db, w.owner.id, w.dataset.ready);
      const foreignCheckpoint = (await db.query(
        "insert into public.checkpoints (job_id, step) values ($1, 5) returning id", [sibling],
      )).rows[0]!.id as string;
      await actAs(db, "owner", w);
      return {
        active,
        otherModel: (await insert("parent_job_id, name", [w.model.enabled, w.job, "x"])).code,
        checkpointWithoutParent: (await attempt(db,
          "insert into public.training_jobs (dataset_id, base_model_id, resume_from_checkpoint_id) values ($1, $2, $3)",
          [w.dataset.ready, MODEL, w.checkpoint])).code,
        foreignCheckpoint: (await insert("parent_job_id, resume_from_checkpoint_id", [MODEL, w.job, foreignCheckpoint])).code,
        ok: await insert("parent_job_id, resume_from_checkpoint_id", [MODEL, w.job, w.checkpoint]),
      };
    });
    expect(r).toMatchObject({ active: "LT010", otherModel: "LT010", checkpointWithoutParent: "23514", foreignCheckpoint: "23503" });
    expect(r.ok).toMatchObject({ rowCount: 1 });
  });

  it("an idempotency key makes a retried create a no-op", async () => {
    const r = await asOwner(async (w) => {
      const sql = `insert into public.training_jobs (dataset_id, base_model_id, idempotency_key) values ($1, $2, 'k-1')`;
      const upsert = `${sql} on conflict (user_id, idempotency_key) do nothing`;
      return [
        await attempt(db, sql, [w.dataset.ready, MODEL]),
        await attempt(db, sql, [w.dataset.ready, MODEL]),
        await attempt(db, upsert, [w.dataset.ready, MODEL]),
      ];
    });
    expect(r.map((a) => a.code ?? a.rowCount)).toEqual([1, "23505", 0]);
  });

  it("soft delete is stamped by the server and cannot be undone", async () => {
    const r = await asOwner(async (w) => {
      const del = await attempt(db, "update public.datasets set deleted_at = '2000-01-01' where id = $1 returning deleted_at > now() - interval '1 minute' as recent", [w.dataset.uploading]);
      return {
        recent: del.rows[0]?.recent,
        undo: (await attempt(db, "update public.datasets set deleted_at = null where id = $1", [w.dataset.uploading])).code,
        stillVisible: (await attempt(db, "select 1 from public.datasets where id = $1", [w.dataset.uploading])).rowCount,
      };
    });
    expect(r).toEqual({ recent: true, undo: "LT004", stillVisible: 1 });
  });

  it("a job can be soft-deleted only once finished", async () => {
    const r = await asOwner(async (w) => {
      const active = (await attempt(db, "update public.training_jobs set deleted_at = now() where id = $1", [w.job])).code;
      await actAsAdmin(db);
      await db.query("update public.training_jobs set status = 'cancelled' where id = $1", [w.job]);
      await actAs(db, "owner", w);
      return { active, finished: (await attempt(db, "update public.training_jobs set deleted_at = now() where id = $1", [w.job])).rowCount };
    });
    expect(r).toEqual({ active: "LT005", finished: 1 });
  });

  it("creation-time columns are immutable even for the server", async () => {
    const r = await rolledBack(db, async () => {
      const w = await seedWorld(db);
      await actAs(db, "service_role");
      return [
        (await attempt(db, "update public.datasets set file_name = 'other.jsonl' where id = $1", [w.dataset.uploading])).code,
        (await attempt(db, "update public.training_jobs set requested_config = '{\"epochs\": 3}' where id = $1", [w.job])).code,
        (await attempt(db, "update public.training_jobs set user_id = $2 where id = $1", [w.job, w.other.id])).code,
      ];
    });
    expect(r).toEqual(["LT003", "LT003", "LT003"]);
  });

  it("rejects dataset file names that could escape their folder", async () => {
    const r = await asOwner(async () => {
      const out: Record<string, string | undefined> = {};
      for (const name of ["../x.jsonl", "a/b.jsonl", "a\\b.jsonl", "a%2Fb.jsonl", "..", ".hidden", "x..jsonl", "ok name (1).jsonl"]) {
        out[name] = (await attempt(db, "insert into public.datasets (name, file_name) values ('x', $1)", [name])).code;
      }
      return out;
    });
    expect(r).toEqual({
      "../x.jsonl": "23514", "a/b.jsonl": "23514", "a\\b.jsonl": "23514", "a%2Fb.jsonl": "23514", "..": "23514",
      ".hidden": "23514", "x..jsonl": "23514", "ok name (1).jsonl": undefined,
    });
  });

  it("marking a notification read stamps read_at; unread clears it", async () => {
    const r = await asOwner(async (w) => [
      (await attempt(db, "update public.notifications set is_read = true where id = $1 returning read_at is not null as stamped", [w.notification])).rows[0],
      (await attempt(db, "update public.notifications set is_read = false where id = $1 returning read_at is not null as stamped", [w.notification])).rows[0],
    ]);
    expect(r).toEqual([{ stamped: true }, { stamped: false }]);
  });

  it("child rows take their owner from the job and cannot claim another", async () => {
    const r = await rolledBack(db, async () => {
      const w = await seedWorld(db);
      await actAs(db, "service_role");
      return {
        filled: (await attempt(db, "insert into public.job_events (job_id, type, message) values ($1, 'x.y', 'm') returning user_id", [w.job])).rows[0]?.user_id === w.owner.id,
        mismatch: (await attempt(db, "insert into public.metrics_points (job_id, user_id, step) values ($1, $2, 99)", [w.job, w.other.id])).code,
      };
    });
    expect(r).toEqual({ filled: true, mismatch: "23503" });
  });
});
