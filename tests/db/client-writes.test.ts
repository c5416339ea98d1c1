/**
 * What a signed-in client may write, column by column, with supabase-js
 * against the stack's API URL (the real PostgREST): only the columns it
 * owns on insert, only cosmetic columns on update, soft delete with its
 * rules, and never a row for someone else or one that points at someone
 * else's data. Everything else is server-owned and refused with 42501
 * (HTTP 403). Each case asserts PostgREST's error code and HTTP status; the
 * rows are read back as the superuser where a refusal must leave them alone.
 * The column grants themselves are checked in SQL against the catalog.
 */
import { randomUUID } from "node:crypto";
import type pg from "pg";
import type { SupabaseClient } from "@supabase/supabase-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LocalUser } from "../../stack/jwt.ts";
import { connect, newUser } from "../helpers/db.ts";
import { testStack } from "../helpers/stack.ts";
import { supabaseClient } from "../helpers/supabase.ts";
import { clusterKey, readyDataset, setClusterFaults } from "../jobs/fixtures.ts";
import { MODEL, seedDataset, seedJob, seedModel } from "./lora-fixtures.ts";

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

/** Committed rows of two users (PostgREST runs each request in its own transaction). */
type World = {
  owner: LocalUser;
  other: LocalUser;
  /** The owner's client, another user's, and the service key's, as a frontend or server makes them. */
  asOwner: SupabaseClient;
  asOther: SupabaseClient;
  asService: SupabaseClient;
  ready: string;
  uploading: string;
  otherReady: string;
  /** The owner's finished (cancelled) job, with one checkpoint. */
  job: string;
  checkpoint: string;
  notification: string;
};

/** Outcome of one request: PostgREST's code and the HTTP status, or the rows. */
const result = async (p: PromiseLike<{ status: number; error: { code: string } | null; data: unknown }>) => {
  const r = await p;
  return r.error ? { status: r.status, code: r.error.code } : { status: r.status, data: r.data };
};

describe("client writes through PostgREST", () => {
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

  /** A fresh world per test: its users see only their own rows, so tests cannot disturb each other. */
  async function world(): Promise<World> {
    const [owner, other] = [await newUser(db, "cw-owner"), await newUser(db, "cw-other")];
    // In one transaction with the job cancelled: no worker dispatches these fixtures.
    await db.query("begin");
    try {
      const ready = await seedDataset(db, owner.id, "ready");
      const uploading = await seedDataset(db, owner.id, "uploading");
      const otherReady = await seedDataset(db, other.id, "ready");
      const job = await seedJob(db, owner.id, ready);
      await db.query("update public.training_jobs set status = 'cancelled' where id = $1", [job]);
      const checkpoint = (await db.query(
        `insert into public.checkpoints (job_id, step, storage_path, metrics, external_job_id)
         values ($1, 10, $2, '{"name": "checkpoint-10"}', 'job_fixture') returning id`, [job, `${owner.id}/${job}/checkpoints/step-10/`],
      )).rows[0].id as string;
      const notification = (await db.query(
        "insert into public.notifications (user_id, kind, job_id) values ($1, 'job.test', $2) returning id", [owner.id, job],
      )).rows[0].id as string;
      await db.query("commit");
      const key = testStack().ANON_KEY;
      return {
        owner, other, ready, uploading, otherReady, job, checkpoint, notification,
        asOwner: supabaseClient(key, owner.token) as unknown as SupabaseClient,
        asOther: supabaseClient(key, other.token) as unknown as SupabaseClient,
        asService: supabaseClient(testStack().SERVICE_ROLE_KEY) as unknown as SupabaseClient,
      };
    } catch (err) {
      await db.query("rollback");
      throw err;
    }
  }

  /**
   * An active job of the owner that stays active: its dataset file is uploaded so dispatch gets
   * as far as the cluster, which refuses it for capacity (a fault scoped to this job's key).
   */
  async function activeJob(w: World): Promise<string> {
    const id = randomUUID();
    await setClusterFaults(await clusterKey(db, id), { capacityRefusalRate: 1, retryAfterSeconds: 3600 });
    const dataset = (await readyDataset(db, w.owner)).id;
    await seedJob(db, w.owner.id, dataset, { id });
    return id;
  }

  const row = async (table: string, id: string) => (await db.query(`select to_jsonb(t) as r from public.${table} t where id = $1`, [id])).rows[0]?.r;
  const rowOf = (table: string, w: World) => (table === "datasets" ? w.uploading : table === "training_jobs" ? w.job : w.notification);

  it("the grants match the documented client-writable columns (catalog)", async () => {
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
    it(`the owner cannot change any server-owned column of ${table} (403 42501), and the row stays as it was`, async () => {
      const w = await world();
      const id = rowOf(table, w);
      const before = await row(table, id);
      const serverOwned = columns[table]!.filter((c) => !CLIENT_UPDATABLE[table]!.includes(c));
      expect(serverOwned.length).toBeGreaterThan(5);
      const got: Record<string, unknown> = {};
      for (const col of serverOwned) {
        // Setting a column to its own value still needs the privilege.
        got[col] = await result(w.asOwner.from(table).update({ [col]: before[col] }).eq("id", id).select());
      }
      // A generated column (storage_path) is refused as such, before privileges are checked.
      expect(got).toEqual(Object.fromEntries(serverOwned.map((c) => [c, c === "storage_path"
        ? { status: 400, code: "428C9" } : { status: 403, code: "42501" }])));
      expect(await row(table, id)).toEqual(before);
    });
  }

  it.each([
    ["datasets", "status", "ready"], ["datasets", "stats", {}], ["datasets", "size_bytes", 1],
    ["training_jobs", "status", "running"], ["training_jobs", "config", {}], ["training_jobs", "external_job_id", "x"],
    ["training_jobs", "estimated_cost", 0], ["training_jobs", "actual_cost", 0], ["training_jobs", "error", null],
  ])("a client insert into %s naming server-owned %s is refused with 403 42501 and writes nothing", async (table, col, value) => {
    const w = await world();
    const values = table === "datasets" ? { name: "x", file_name: "x.jsonl" } : { dataset_id: w.ready, base_model_id: MODEL };
    expect(await result(w.asOwner.from(table).insert({ ...values, [col]: value }).select())).toEqual({ status: 403, code: "42501" });
    const { rows } = await db.query(`select count(*)::int as n from public.${table} where user_id = $1`, [w.owner.id]);
    expect(rows[0].n).toBe(table === "datasets" ? 2 : 1);
  });

  it("a client insert defaults the owner to the caller (201, uploading / queued)", async () => {
    const w = await world();
    const ds = await result(w.asOwner.from("datasets").insert({ name: "x", file_name: "x.jsonl" }).select("user_id, status").single());
    expect(ds).toEqual({ status: 201, data: { user_id: w.owner.id, status: "uploading" } });
    // The status the insert returns; what dispatch does next (the dataset has no file) is not this test's.
    const job = await w.asOwner.from("training_jobs").insert({ dataset_id: w.ready, base_model_id: MODEL }).select("id, user_id, status").single();
    expect(job).toMatchObject({ status: 201, error: null, data: { user_id: w.owner.id, status: "queued" } });
  });

  it("a user cannot create a dataset or a job for another user (403 42501)", async () => {
    const w = await world();
    expect(await result(w.asOwner.from("datasets").insert({ user_id: w.other.id, name: "x", file_name: "x.jsonl" }).select()))
      .toEqual({ status: 403, code: "42501" });
    expect(await result(w.asOwner.from("training_jobs").insert({ user_id: w.other.id, dataset_id: w.otherReady, base_model_id: MODEL }).select()))
      .toEqual({ status: 403, code: "42501" });
    const { rows } = await db.query("select (select count(*) from public.datasets where user_id = $1)::int as d, (select count(*) from public.training_jobs where user_id = $1)::int as j", [w.other.id]);
    expect(rows[0]).toEqual({ d: 1, j: 0 });
  });

  it("a job cannot reference another user's dataset, validation dataset or parent job (409 23503)", async () => {
    const w = await world();
    // Pending, never queued: the stack's dispatcher cannot take it before it is cancelled.
    const otherJob = await seedJob(db, w.other.id, w.otherReady, { status: "pending" });
    await db.query("update public.training_jobs set status = 'cancelled' where id = $1", [otherJob]);
    const insert = (values: Record<string, unknown>) => result(w.asOwner.from("training_jobs").insert({ base_model_id: MODEL, ...values }).select());
    expect([
      await insert({ dataset_id: w.otherReady, name: "x" }),
      await insert({ dataset_id: w.ready, validation_dataset_id: w.otherReady }),
      await insert({ dataset_id: w.ready, parent_job_id: otherJob }),
    ]).toEqual(Array(3).fill({ status: 409, code: "23503" }));
  });

  it("a job needs ready, undeleted datasets and an enabled base model (400 LT007 / LT106)", async () => {
    const w = await world();
    const deleted = await seedDataset(db, w.owner.id, "ready");
    await db.query("update public.datasets set deleted_at = now() where id = $1", [deleted]);
    const disabled = await seedModel(db, false);
    try {
      const insert = (ds: string, model = MODEL) =>
        result(w.asOwner.from("training_jobs").insert({ dataset_id: ds, base_model_id: model }).select());
      // Config validation (_300_validate_config, before insert) reports the model first with LT106;
      // LT008 in _200_check_references is the backstop should that check ever be relaxed.
      expect({
        uploading: await insert(w.uploading), deleted: await insert(deleted),
        disabledModel: await insert(w.ready, disabled), unknownModel: await insert(w.ready, "no-such-model"),
      }).toEqual({
        uploading: { status: 400, code: "LT007" }, deleted: { status: 400, code: "LT007" },
        disabledModel: { status: 400, code: "LT106" }, unknownModel: { status: 400, code: "LT106" },
      });
    } finally {
      await db.query("delete from public.base_models where id = $1", [disabled]);
    }
  });

  it("a continuation needs a finished parent on the same base model and one of its checkpoints", async () => {
    const w = await world();
    const active = await activeJob(w);
    const enabledOther = await seedModel(db, true);
    try {
      const sibling = await seedJob(db, w.owner.id, w.ready, { status: "pending" });
      await db.query("update public.training_jobs set status = 'cancelled' where id = $1", [sibling]);
      const foreignCheckpoint = (await db.query("insert into public.checkpoints (job_id, step) values ($1, 5) returning id", [sibling])).rows[0].id;
      const insert = (values: Record<string, unknown>) =>
        result(w.asOwner.from("training_jobs").insert({ dataset_id: w.ready, base_model_id: MODEL, ...values }).select("parent_job_id").single());
      expect({
        active: await insert({ parent_job_id: active, name: "x" }),
        otherModel: await insert({ base_model_id: enabledOther, parent_job_id: w.job, name: "x" }),
        checkpointWithoutParent: await insert({ resume_from_checkpoint_id: w.checkpoint }),
        foreignCheckpoint: await insert({ parent_job_id: w.job, resume_from_checkpoint_id: foreignCheckpoint }),
      }).toEqual({
        active: { status: 400, code: "LT010" }, otherModel: { status: 400, code: "LT010" },
        checkpointWithoutParent: { status: 400, code: "23514" }, foreignCheckpoint: { status: 409, code: "23503" },
      });
      expect(await insert({ parent_job_id: w.job, resume_from_checkpoint_id: w.checkpoint }))
        .toEqual({ status: 201, data: { parent_job_id: w.job } });
    } finally {
      await db.query("delete from public.base_models where id = $1", [enabledOther]);
    }
  });

  it("an idempotency key makes a retried create a no-op: 409 23505, or nothing with upsert ignoreDuplicates", async () => {
    const w = await world();
    const key = `k-${randomUUID()}`;
    const body = { dataset_id: w.ready, base_model_id: MODEL, idempotency_key: key };
    const first = await result(w.asOwner.from("training_jobs").insert(body).select("id").single());
    expect(first).toMatchObject({ status: 201 });
    expect(await result(w.asOwner.from("training_jobs").insert(body).select())).toEqual({ status: 409, code: "23505" });
    expect(await result(w.asOwner.from("training_jobs").upsert(body, { onConflict: "user_id,idempotency_key", ignoreDuplicates: true }).select()))
      .toEqual({ status: 201, data: [] });
    const { rows } = await db.query("select id from public.training_jobs where user_id = $1 and idempotency_key = $2", [w.owner.id, key]);
    expect(rows.map((r) => r.id)).toEqual([(first as { data: { id: string } }).data.id]);
  });

  it("soft delete is stamped by the server and cannot be undone (400 LT004)", async () => {
    const w = await world();
    const del = await result(w.asOwner.from("datasets").update({ deleted_at: "2000-01-01T00:00:00Z" }).eq("id", w.uploading).select("deleted_at").single());
    expect(del).toMatchObject({ status: 200 });
    const stamped = new Date((del as { data: { deleted_at: string } }).data.deleted_at).getTime();
    expect(Math.abs(stamped - Date.now())).toBeLessThan(60_000);
    expect(await result(w.asOwner.from("datasets").update({ deleted_at: null }).eq("id", w.uploading).select()))
      .toEqual({ status: 400, code: "LT004" });
    expect(await result(w.asOwner.from("datasets").select("id").eq("id", w.uploading))).toEqual({ status: 200, data: [{ id: w.uploading }] });
  });

  it("a job can be soft-deleted only once finished (400 LT005 while active)", async () => {
    const w = await world();
    const active = await activeJob(w);
    expect(await result(w.asOwner.from("training_jobs").update({ deleted_at: new Date().toISOString() }).eq("id", active).select()))
      .toEqual({ status: 400, code: "LT005" });
    expect((await row("training_jobs", active)).deleted_at).toBeNull();
    const finished = await result(w.asOwner.from("training_jobs").update({ deleted_at: new Date().toISOString() }).eq("id", w.job).select("id"));
    expect(finished).toEqual({ status: 200, data: [{ id: w.job }] });
  });

  it("creation-time columns are immutable even for the service role (400 LT003)", async () => {
    const w = await world();
    expect([
      await result(w.asService.from("datasets").update({ file_name: "other.jsonl" }).eq("id", w.uploading).select()),
      await result(w.asService.from("training_jobs").update({ requested_config: { epochs: 3 } }).eq("id", w.job).select()),
      await result(w.asService.from("training_jobs").update({ user_id: w.other.id }).eq("id", w.job).select()),
    ]).toEqual(Array(3).fill({ status: 400, code: "LT003" }));
  });

  it("rejects dataset file names that could escape their folder (400 23514)", async () => {
    const w = await world();
    const out: Record<string, unknown> = {};
    for (const name of ["../x.jsonl", "a/b.jsonl", "a\\b.jsonl", "a%2Fb.jsonl", "..", ".hidden", "x..jsonl", "ok name (1).jsonl"]) {
      out[name] = await result(w.asOwner.from("datasets").insert({ name: "x", file_name: name }));
    }
    const refused = { status: 400, code: "23514" };
    expect(out).toEqual({
      "../x.jsonl": refused, "a/b.jsonl": refused, "a\\b.jsonl": refused, "a%2Fb.jsonl": refused, "..": refused,
      ".hidden": refused, "x..jsonl": refused, "ok name (1).jsonl": { status: 201, data: null },
    });
  });

  it("marking a notification read stamps read_at; unread clears it", async () => {
    const w = await world();
    const flip = (is_read: boolean) =>
      result(w.asOwner.from("notifications").update({ is_read }).eq("id", w.notification).select("is_read, read_at").single());
    const read = await flip(true);
    expect(read).toMatchObject({ status: 200, data: { is_read: true, read_at: expect.any(String) } });
    expect(await flip(false)).toEqual({ status: 200, data: { is_read: false, read_at: null } });
  });

  it("child rows take their owner from the job and cannot claim another (service role; 409 23503)", async () => {
    const w = await world();
    const filled = await result(w.asService.from("job_events").insert({ job_id: w.job, type: "x.y", message: "m" }).select("user_id").single());
    expect(filled).toEqual({ status: 201, data: { user_id: w.owner.id } });
    expect(await result(w.asService.from("metrics_points").insert({ job_id: w.job, user_id: w.other.id, step: 99 }).select()))
      .toEqual({ status: 409, code: "23503" });
  });
});
