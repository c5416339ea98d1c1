/**
 * Tenant isolation over HTTP: another signed-in user (B) and anon, with
 * supabase-js against the stack's API URL (the real PostgREST at /rest/v1),
 * try to read, update, delete and insert-with-A's-ids on every relation and
 * call every function PostgREST exposes, with user A's ids. Every attempt is
 * refused (an error with the SQLSTATE and HTTP status PostgREST gives it, or
 * no rows), and A's rows are byte-for-byte the same afterwards, read as the
 * superuser. The exposed surface is read from the catalog, so a new table,
 * view or function without a case here fails the suite.
 */
import { randomUUID } from "node:crypto";
import type pg from "pg";
import type { SupabaseClient } from "@supabase/supabase-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { postgrestEnv } from "../../stack/postgrest.ts";
import type { LocalUser } from "../../stack/jwt.ts";
import { connect, newUser } from "../helpers/db.ts";
import { testStack } from "../helpers/stack.ts";
import { supabaseClient } from "../helpers/supabase.ts";
import { MODEL, seedDataset, seedJob } from "./lora-fixtures.ts";

/** A's rows, committed (PostgREST runs in its own transactions). */
type World = {
  a: LocalUser;
  b: LocalUser;
  dataset: { ready: string; uploading: string };
  job: string;
  event: string;
  metric: string;
  checkpoint: string;
  artifact: string;
  cost: string;
  notification: string;
};

/** What one request came back with: PostgREST's error code and the HTTP status, or how many rows. */
type Outcome = { status: number; code?: string; rows?: number };
type Caller = "b" | "anon";
type Attack = (c: SupabaseClient, w: World) => PromiseLike<{ status: number; error: { code: string } | null; data: unknown }>;

const refused = (status: 401 | 403 | 400 | 409, code: string): Outcome => ({ status, code });
const empty: Outcome = { status: 200, rows: 0 };
const ANON = refused(401, "42501");
const NO_PRIVILEGE = refused(403, "42501");
const IDENTITY = refused(400, "428C9");

type TableCase = {
  /** Why this table is shaped as it is for a caller who does not own the row. */
  why: string;
  read: Attack;
  update: Attack;
  delete: Attack;
  /** Inserts that name A's ids (A as owner, A's rows as parents, A's row's primary key). */
  inserts: Record<string, Attack>;
  expect: { read: Outcome; update: Outcome; delete: Outcome; inserts: Record<string, Outcome> };
};

type IdKey = "job" | "notification" | ChildKey;
const by = (table: string, key: IdKey) => ({
  read: ((c, w) => c.from(table).select("*").eq("id", w[key])) as Attack,
  delete: ((c, w) => c.from(table).delete().eq("id", w[key]).select()) as Attack,
});

/** Child tables of a job: server-written, readable by the job's owner only. */
type ChildKey = "event" | "metric" | "checkpoint" | "artifact" | "cost";
const child = (
  table: string, key: ChildKey, update: Record<string, unknown>, row: (w: World) => Record<string, unknown>,
  /** An identity column (generated always) is refused as such, before privileges are checked. */
  pkRefusal: Outcome = NO_PRIVILEGE,
): TableCase => ({
  why: "server-written child rows of a job: the owner reads them, nobody writes them through the API",
  ...by(table, key),
  update: (c, w) => c.from(table).update(update).eq("id", w[key]).select(),
  inserts: {
    "for A's job as A": (c, w) => c.from(table).insert({ ...row(w), job_id: w.job, user_id: w.a.id }).select(),
    "with the primary key of A's row": (c, w) => c.from(table).insert({ ...row(w), id: w[key], job_id: w.job }).select(),
  },
  expect: {
    read: empty, update: NO_PRIVILEGE, delete: NO_PRIVILEGE,
    inserts: { "for A's job as A": NO_PRIVILEGE, "with the primary key of A's row": pkRefusal },
  },
});

const TABLES: Record<string, TableCase> = {
  base_models: {
    why: "the shared catalog: every signed-in user reads enabled models, only the server writes it",
    read: (c) => c.from("base_models").select("id").eq("id", MODEL),
    update: (c) => c.from("base_models").update({ price_per_gpu_hour: 0 }).eq("id", MODEL).select(),
    delete: (c) => c.from("base_models").delete().eq("id", MODEL).select(),
    inserts: {
      "a copy of a catalog entry": (c) => c.from("base_models").insert({ id: `${MODEL}-copy`, display_name: "x" }).select(),
    },
    expect: { read: { status: 200, rows: 1 }, update: NO_PRIVILEGE, delete: NO_PRIVILEGE, inserts: { "a copy of a catalog entry": NO_PRIVILEGE } },
  },
  datasets: {
    why: "owned rows with client-writable name/description/deleted_at: A's rows are invisible, so updates match nothing",
    read: (c, w) => c.from("datasets").select("*").in("id", [w.dataset.ready, w.dataset.uploading]),
    update: (c, w) => c.from("datasets").update({ name: "taken", deleted_at: new Date().toISOString() })
      .in("id", [w.dataset.ready, w.dataset.uploading]).select(),
    delete: (c, w) => c.from("datasets").delete().eq("id", w.dataset.uploading).select(),
    inserts: {
      "owned by A": (c, w) => c.from("datasets").insert({ user_id: w.a.id, name: "x", file_name: "x.jsonl" }).select(),
      "with the primary key of A's row": (c, w) =>
        c.from("datasets").upsert({ id: w.dataset.ready, name: "x", file_name: "x.jsonl" }).select(),
    },
    expect: {
      read: empty, update: empty, delete: NO_PRIVILEGE,
      inserts: { "owned by A": NO_PRIVILEGE, "with the primary key of A's row": NO_PRIVILEGE },
    },
  },
  training_jobs: {
    why: "owned rows with client-writable name/deleted_at; a job's references must be the caller's own",
    ...by("training_jobs", "job"),
    update: (c, w) => c.from("training_jobs").update({ name: "taken", deleted_at: new Date().toISOString() }).eq("id", w.job).select(),
    inserts: {
      "owned by A on A's dataset": (c, w) =>
        c.from("training_jobs").insert({ user_id: w.a.id, dataset_id: w.dataset.ready, base_model_id: MODEL }).select(),
      "on A's dataset": (c, w) => c.from("training_jobs").insert({ dataset_id: w.dataset.ready, base_model_id: MODEL }).select(),
      "with A's dataset for validation": (c, w) => c.from("training_jobs")
        .insert({ dataset_id: w.dataset.ready, validation_dataset_id: w.dataset.ready, base_model_id: MODEL }).select(),
      "continuing A's job from A's checkpoint": (c, w) => c.from("training_jobs").insert({
        dataset_id: w.dataset.ready, base_model_id: MODEL, parent_job_id: w.job, resume_from_checkpoint_id: w.checkpoint,
      }).select(),
      "with the primary key of A's row": (c, w) =>
        c.from("training_jobs").upsert({ id: w.job, dataset_id: w.dataset.ready, base_model_id: MODEL }).select(),
    },
    expect: {
      read: empty, update: empty, delete: NO_PRIVILEGE,
      // B's own dataset is not in these requests: the reference checks see A's rows as absent (23503, HTTP 409).
      inserts: {
        "owned by A on A's dataset": NO_PRIVILEGE,
        "on A's dataset": refused(409, "23503"),
        "with A's dataset for validation": refused(409, "23503"),
        "continuing A's job from A's checkpoint": refused(409, "23503"),
        "with the primary key of A's row": NO_PRIVILEGE,
      },
    },
  },
  job_events: child("job_events", "event", { message: "rewritten" }, () => ({ type: "test.x", message: "x" }), IDENTITY),
  metrics_points: child("metrics_points", "metric", { train_loss: 0.1 }, () => ({ step: 99, train_loss: 0.1 }), IDENTITY),
  checkpoints: child("checkpoints", "checkpoint", { is_best: true }, () => ({ step: 99 })),
  model_artifacts: child("model_artifacts", "artifact", { size_bytes: 1 }, (w) => ({
    kind: "model_card", storage_path: `${w.a.id}/${w.job}/README.md`,
  })),
  cost_records: child("cost_records", "cost", { amount: 0 }, () => ({ kind: "usage", amount: 1 })),
  notifications: {
    why: "owned rows whose is_read the owner flips; written by the server",
    ...by("notifications", "notification"),
    update: (c, w) => c.from("notifications").update({ is_read: true }).eq("id", w.notification).select(),
    inserts: {
      "for A": (c, w) => c.from("notifications").insert({ user_id: w.a.id, kind: "job.test" }).select(),
      "with the primary key of A's row": (c, w) => c.from("notifications").upsert({ id: w.notification, is_read: true }).select(),
    },
    expect: { read: empty, update: empty, delete: NO_PRIVILEGE, inserts: { "for A": NO_PRIVILEGE, "with the primary key of A's row": NO_PRIVILEGE } },
  },
};
type RpcCase = { call: Attack; expect: Outcome; why: string };

const RPCS: Record<string, RpcCase> = {
  cancel_training_job: {
    why: "A's job does not exist for B",
    call: (c, w) => c.rpc("cancel_training_job", { job_id: w.job }),
    expect: refused(400, "LT420"),
  },
  retry_training_job: {
    why: "A's job does not exist for B, whatever checkpoint is named",
    call: (c, w) => c.rpc("retry_training_job", { job_id: w.job, checkpoint_id: w.checkpoint }),
    expect: refused(400, "LT420"),
  },
  start_training_job: {
    why: "A's job does not exist for B: no way to learn that it waits for review, or to start it",
    call: (c, w) => c.rpc("start_training_job", { job_id: w.job }),
    expect: refused(400, "LT420"),
  },
  job_loss_curve: {
    why: "A's points are invisible: an empty curve, not an error that confirms the job exists",
    call: (c, w) => c.rpc("job_loss_curve", { job_id: w.job }),
    expect: empty,
  },
  create_training_job: {
    why: "the references are checked under the caller's RLS: A's dataset, job and checkpoint do not exist for B",
    call: (c, w) => c.rpc("create_training_job", {
      dataset_id: w.dataset.ready, base_model_id: MODEL, parent_job_id: w.job, resume_from_checkpoint_id: w.checkpoint,
    }),
    expect: refused(409, "23503"),
  },
  quote_training_job: {
    // Checked below beside the status: the quote answers 200 with allowed false and no estimate.
    why: "a quote on A's dataset says it does not exist and gives no statistics",
    call: (c, w) => c.rpc("quote_training_job", { dataset_id: w.dataset.ready, base_model_id: MODEL }),
    expect: { status: 200 },
  },
  validate_training_config: {
    why: "no tenant data: a pure check of a configuration against the catalog",
    call: (c) => c.rpc("validate_training_config", { base_model_id: MODEL, config: { epochs: 3 } }),
    expect: { status: 200, rows: 0 },
  },
};

/** A's rows everywhere, as the superuser sees them, for the "nothing changed" comparison. */
async function snapshot(db: pg.ClientBase, w: World): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  for (const t of Object.keys(TABLES)) {
    const where = t === "base_models" ? "id = $1" : t === "datasets" || t === "training_jobs" || t === "notifications"
      ? "user_id = $1" : "job_id in (select id from public.training_jobs where user_id = $1)";
    const { rows } = await db.query(`select to_jsonb(x) as r from public.${t} x where ${where} order by 1`, [t === "base_models" ? MODEL : w.a.id]);
    out[t] = rows.map((r) => r.r);
  }
  return out;
}

async function outcome(p: ReturnType<Attack>): Promise<Outcome> {
  const r = await p;
  if (r.error) return { status: r.status, code: r.error.code };
  return { status: r.status, rows: Array.isArray(r.data) ? r.data.length : r.data === null ? 0 : 1 };
}

/** Compare only what the case states (a quote's body is checked on its own). */
const matches = (got: Outcome, want: Outcome) =>
  expect(Object.fromEntries(Object.keys(want).map((k) => [k, got[k as keyof Outcome]]))).toEqual(want);

describe("tenant isolation over HTTP (supabase-js against /rest/v1)", () => {
  let db: pg.Client;
  let w: World;
  let before: Record<string, unknown[]>;
  let clients: Record<Caller, SupabaseClient>;

  beforeAll(async () => {
    db = await connect();
    const [a, b] = [await newUser(db, "iso-a"), await newUser(db, "iso-b")];
    // One transaction, the job cancelled in it: no worker ever dispatches or polls A's job,
    // so nothing but these requests could change A's rows while the suite runs.
    await db.query("begin");
    const ready = await seedDataset(db, a.id, "ready");
    const uploading = await seedDataset(db, a.id, "uploading");
    const job = await seedJob(db, a.id, ready, { name: "a's job" });
    await db.query("update public.training_jobs set status = 'cancelled' where id = $1", [job]);
    const one = async (sql: string, params: unknown[]) => (await db.query(sql, params)).rows[0]!.id as string;
    w = {
      a, b, dataset: { ready, uploading }, job,
      event: await one("insert into public.job_events (job_id, type, message) values ($1, 'test.fixture', 'x') returning id::text as id", [job]),
      metric: await one("insert into public.metrics_points (job_id, step, train_loss) values ($1, 10, 1.5) returning id::text as id", [job]),
      checkpoint: await one(`insert into public.checkpoints (job_id, step, storage_path, metrics, external_job_id)
        values ($1, 10, $2, '{"name": "checkpoint-10"}', 'job_fixture') returning id`, [job, `${a.id}/${job}/checkpoints/step-10/`]),
      artifact: await one(`insert into public.model_artifacts (job_id, kind, storage_path, size_bytes)
        values ($1, 'adapter_weights', $2, 1024) returning id`, [job, `${a.id}/${job}/adapter_model.safetensors`]),
      cost: await one("insert into public.cost_records (job_id, kind, gpu_seconds, amount) values ($1, 'usage', 60, 0.0315) returning id", [job]),
      notification: await one("insert into public.notifications (user_id, kind, job_id) values ($1, 'job.test', $2) returning id", [a.id, job]),
    };
    await db.query("commit");
    const key = testStack().ANON_KEY;
    clients = { b: supabaseClient(key, b.token) as unknown as SupabaseClient, anon: supabaseClient(key) as unknown as SupabaseClient };
    before = await snapshot(db, w);
  });

  afterAll(async () => {
    await db.end();
  });

  it("has a case for every relation and every function PostgREST exposes", async () => {
    const schemas = postgrestEnv({ dbUrl: testStack().DB_URL, authenticatorPassword: "", jwtSecret: "", port: 0, logFile: "" })
      .PGRST_DB_SCHEMAS!.split(",");
    const relations = await db.query<{ name: string }>(
      `select n.nspname || '.' || c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = any($1) and c.relkind in ('r', 'v', 'm', 'p', 'f')
          and not exists (select 1 from pg_depend d where d.objid = c.oid and d.deptype = 'e') order by 1`, [schemas]);
    const functions = await db.query<{ name: string }>(
      `select distinct n.nspname || '.' || p.proname as name from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = any($1) and p.prokind in ('f', 'p')
          and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e') order by 1`, [schemas]);
    expect(relations.rows.map((r) => r.name)).toEqual(Object.keys(TABLES).map((t) => `public.${t}`).sort());
    expect(functions.rows.map((r) => r.name)).toEqual(Object.keys(RPCS).map((f) => `public.${f}`).sort());
  });

  for (const [table, spec] of Object.entries(TABLES)) {
    describe(`${table} (${spec.why})`, () => {
      for (const op of ["read", "update", "delete"] as const) {
        it(`${op} of A's row: another user gets ${JSON.stringify(spec.expect[op])}, anon 401 with 42501`, async () => {
          matches(await outcome(spec[op](clients.b, w)), spec.expect[op]);
          matches(await outcome(spec[op](clients.anon, w)), ANON);
        });
      }
      for (const [name, attack] of Object.entries(spec.inserts)) {
        const want = spec.expect.inserts[name]!;
        // Naming an identity column is refused before privileges are looked at, for anon too.
        const anon = want === IDENTITY ? IDENTITY : ANON;
        it(`insert ${name}: another user gets ${JSON.stringify(want)}, anon ${JSON.stringify(anon)}`, async () => {
          matches(await outcome(attack(clients.b, w)), want);
          matches(await outcome(attack(clients.anon, w)), anon);
        });
      }
    });
  }

  for (const [fn, spec] of Object.entries(RPCS)) {
    it(`rpc ${fn} with A's ids (${spec.why}): another user gets ${JSON.stringify(spec.expect)}, anon 401 with 42501`, async () => {
      matches(await outcome(spec.call(clients.b, w)), spec.expect);
      matches(await outcome(spec.call(clients.anon, w)), ANON);
    });
  }

  it("a quote on A's dataset is not allowed, names it as missing (23503) and carries no estimate or configuration", async () => {
    const { data, error } = await clients.b.rpc("quote_training_job", { dataset_id: w.dataset.ready, base_model_id: MODEL });
    expect(error).toBeNull();
    expect(data).toMatchObject({ allowed: false, estimate: null, config: null });
    expect((data as { errors: { code: string }[] }).errors.map((e) => e.code)).toContain("23503");
  });

  describe("counts, ranges and single() leak nothing", () => {
    it("Prefer: count=exact counts 0 of A's rows for another user, with or without a body", async () => {
      const page = await clients.b.from("training_jobs").select("id", { count: "exact" }).eq("user_id", w.a.id).range(0, 9);
      expect(page).toMatchObject({ error: null, count: 0, data: [] });
      const head = await clients.b.from("metrics_points").select("*", { count: "exact", head: true }).eq("job_id", w.job);
      expect(head).toMatchObject({ error: null, count: 0, data: null });
      // The owner's count is the true one: the zero above is RLS, not an empty table.
      const own = await supabaseClient(testStack().ANON_KEY, w.a.token).from("metrics_points")
        .select("*", { count: "exact", head: true }).eq("job_id", w.job);
      expect(own).toMatchObject({ error: null, count: 1 });
    });

    it(".range() past another user's own rows returns none of A's; a range beyond the end is 416 PGRST103", async () => {
      const mine = await clients.b.from("datasets").select("id, user_id", { count: "exact" }).range(0, 99);
      expect(mine.error).toBeNull();
      expect(mine.data!.every((d) => d.user_id === w.b.id)).toBe(true);
      const past = await clients.b.from("datasets").select("id", { count: "exact" }).range(10, 19);
      expect(past.status).toBe(416);
      expect(past.error?.code).toBe("PGRST103");
    });

    it(".single() on A's row is 406 PGRST116 for another user, as on a row that does not exist", async () => {
      for (const id of [w.job, randomUUID()]) {
        const r = await clients.b.from("training_jobs").select("id").eq("id", id).single();
        expect(r.status).toBe(406);
        expect(r.error?.code).toBe("PGRST116");
      }
    });
  });

  it("after every attempt A's rows are unchanged and nothing was written for B", async () => {
    // Runs last in this file (vitest keeps declaration order).
    expect(await snapshot(db, w)).toEqual(before);
    const { rows } = await db.query(
      `select (select count(*) from public.datasets where user_id = $1) + (select count(*) from public.training_jobs where user_id = $1)
            + (select count(*) from public.notifications where user_id = $1) as n`, [w.b.id]);
    expect(Number(rows[0].n)).toBe(0);
    expect(before.job_events!.length).toBeGreaterThan(0);
  });
});
