/**
 * Tenant isolation matrix: every LoRA table and both Storage buckets x
 * {select, insert, update, delete} x {anon, other user, owner, service role}.
 * Each cell runs one statement the way PostgREST (or the Storage API) would
 * for that caller, against a fresh rolled-back world, and asserts the exact
 * outcome: a row count, or SQLSTATE 42501. A cell that returns rows to
 * someone who is not entitled to them fails. These are the policies and
 * grants as SQL; what a client gets over HTTP through PostgREST (user B and
 * anon with A's ids, every exposed table and RPC) is
 * tests/db/tenant-isolation-http.test.ts.
 */
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "../helpers/db.ts";
import { actAs, attempt, MODEL, rolledBack, seedWorld, WHO, type Who, type World } from "./lora-fixtures.ts";

type Op = "select" | "insert" | "update" | "delete";
type Outcome = number | "42501";
type Statement = (w: World, who: Who) => [string, unknown[]];
type Spec = {
  name: string;
  statements: Record<Op, Statement>;
  expect: Record<Op, [anon: Outcome, other: Outcome, owner: Outcome, service: Outcome]>;
  /** Session settings the real caller has (the Storage API allows its own deletes). */
  setup?: string;
};

const DENIED = "42501" as const;
// The user a row is written for: the owner, except that the service role has no auth.uid().
const ownerId = (w: World) => w.owner.id;

const byId = (table: string, key: keyof World) => ({
  select: ((w) => [`select * from public.${table} where id::text = $1`, [w[key]]]) as Statement,
  delete: ((w) => [`delete from public.${table} where id::text = $1`, [w[key]]]) as Statement,
});

const TABLES: Spec[] = [
  {
    name: "base_models",
    statements: {
      select: (w) => ["select * from public.base_models where id = $1", [w.model.enabled]],
      insert: () => [
        `insert into public.base_models (id, display_name, family, hf_repo, parameter_count, context_length, tokenizer,
           lora_target_modules, default_target_modules, max_lora_rank, hyperparameters, gpu_type, price_per_gpu_hour,
           throughput_tokens_per_second)
         select id || '-copy', display_name, family, hf_repo, parameter_count, context_length, tokenizer, lora_target_modules,
           default_target_modules, max_lora_rank, hyperparameters, gpu_type, price_per_gpu_hour, throughput_tokens_per_second
         from public.base_models where id = $1`,
        [MODEL],
      ],
      update: (w) => ["update public.base_models set display_name = 'Renamed' where id = $1", [w.model.enabled]],
      delete: (w) => ["delete from public.base_models where id = $1", [w.model.enabled]],
    },
    // Signed-in users browse the catalog (enabled models); only the server writes it.
    // Inserting as a client fails on the missing privilege before the select runs.
    expect: { select: [DENIED, 1, 1, 1], insert: [DENIED, DENIED, DENIED, 1], update: [DENIED, DENIED, DENIED, 1], delete: [DENIED, DENIED, DENIED, 1] },
  },
  {
    name: "datasets",
    statements: {
      select: (w) => ["select * from public.datasets where id = $1", [w.dataset.uploading]],
      insert: (w) => ["insert into public.datasets (user_id, name, file_name) values ($1, 'new', 'new.jsonl')", [ownerId(w)]],
      update: (w) => ["update public.datasets set name = 'renamed' where id = $1", [w.dataset.uploading]],
      delete: (w) => ["delete from public.datasets where id = $1", [w.dataset.empty]],
    },
    expect: { select: [DENIED, 0, 1, 1], insert: [DENIED, DENIED, 1, 1], update: [DENIED, 0, 1, 1], delete: [DENIED, DENIED, DENIED, 1] },
  },
  {
    name: "training_jobs",
    statements: {
      ...byId("training_jobs", "job"),
      insert: (w) => [
        "insert into public.training_jobs (user_id, dataset_id, base_model_id, name) values ($1, $2, $3, 'new')",
        [ownerId(w), w.dataset.ready, MODEL],
      ],
      update: (w) => ["update public.training_jobs set name = 'renamed' where id = $1", [w.job]],
    },
    expect: { select: [DENIED, 0, 1, 1], insert: [DENIED, DENIED, 1, 1], update: [DENIED, 0, 1, 1], delete: [DENIED, DENIED, DENIED, 1] },
  },
  {
    name: "job_events",
    statements: {
      ...byId("job_events", "event"),
      insert: (w) => ["insert into public.job_events (job_id, user_id, type, message) values ($1, $2, 'test.x', 'x')", [w.job, ownerId(w)]],
      update: (w) => ["update public.job_events set message = 'rewritten' where id::text = $1", [w.event]],
    },
    // Append-only: not even the server rewrites an event.
    expect: { select: [DENIED, 0, 1, 1], insert: [DENIED, DENIED, DENIED, 1], update: [DENIED, DENIED, DENIED, DENIED], delete: [DENIED, DENIED, DENIED, 1] },
  },
  {
    name: "metrics_points",
    statements: {
      ...byId("metrics_points", "metric"),
      insert: (w) => ["insert into public.metrics_points (job_id, user_id, step, train_loss) values ($1, $2, 20, 1.2)", [w.job, ownerId(w)]],
      update: (w) => ["update public.metrics_points set train_loss = 0.1 where id::text = $1", [w.metric]],
    },
    expect: { select: [DENIED, 0, 1, 1], insert: [DENIED, DENIED, DENIED, 1], update: [DENIED, DENIED, DENIED, 1], delete: [DENIED, DENIED, DENIED, 1] },
  },
  {
    name: "checkpoints",
    statements: {
      ...byId("checkpoints", "checkpoint"),
      insert: (w) => ["insert into public.checkpoints (job_id, user_id, step) values ($1, $2, 20)", [w.job, ownerId(w)]],
      update: (w) => ["update public.checkpoints set is_best = true where id = $1", [w.checkpoint]],
    },
    expect: { select: [DENIED, 0, 1, 1], insert: [DENIED, DENIED, DENIED, 1], update: [DENIED, DENIED, DENIED, 1], delete: [DENIED, DENIED, DENIED, 1] },
  },
  {
    name: "model_artifacts",
    statements: {
      ...byId("model_artifacts", "artifact"),
      insert: (w) => [
        "insert into public.model_artifacts (job_id, user_id, kind, storage_path) values ($1, $2, 'model_card', $3)",
        [w.job, ownerId(w), `${w.owner.id}/${w.job}/README.md`],
      ],
      update: (w) => ["update public.model_artifacts set size_bytes = 1 where id = $1", [w.artifact]],
    },
    expect: { select: [DENIED, 0, 1, 1], insert: [DENIED, DENIED, DENIED, 1], update: [DENIED, DENIED, DENIED, 1], delete: [DENIED, DENIED, DENIED, 1] },
  },
  {
    name: "cost_records",
    statements: {
      ...byId("cost_records", "cost"),
      insert: (w) => ["insert into public.cost_records (job_id, user_id, kind, amount) values ($1, $2, 'usage', 1)", [w.job, ownerId(w)]],
      update: (w) => ["update public.cost_records set amount = 0 where id = $1", [w.cost]],
    },
    // An append-only ledger: corrections are new entries.
    expect: { select: [DENIED, 0, 1, 1], insert: [DENIED, DENIED, DENIED, 1], update: [DENIED, DENIED, DENIED, DENIED], delete: [DENIED, DENIED, DENIED, 1] },
  },
  {
    name: "notifications",
    statements: {
      ...byId("notifications", "notification"),
      insert: (w) => ["insert into public.notifications (user_id, kind) values ($1, 'test.x')", [ownerId(w)]],
      update: (w) => ["update public.notifications set is_read = true where id = $1", [w.notification]],
    },
    expect: { select: [DENIED, 0, 1, 1], insert: [DENIED, DENIED, DENIED, 1], update: [DENIED, 0, 1, 1], delete: [DENIED, DENIED, DENIED, 1] },
  },
];

const objectStatements = (bucket: "lora-datasets" | "lora-models"): Record<Op, Statement> => {
  const existing = (w: World) => (bucket === "lora-datasets" ? w.datasetPath.uploading : w.modelObject);
  // A lora-models object of no artifact kind: artifacts themselves are accepted only while their job delivers
  // (tests/monitoring/artifact-verification.test.ts); this matrix is about the policies.
  const fresh = (w: World) => (bucket === "lora-datasets" ? w.datasetPath.empty : `${w.owner.id}/${w.job}/notes/fresh.txt`);
  return {
    select: (w) => ["select * from storage.objects where bucket_id = $1 and name = $2", [bucket, existing(w)]],
    // As the Storage API records an upload: owner_id is the caller's sub.
    insert: (w) => [
      "insert into storage.objects (bucket_id, name, owner_id, metadata) values ($1, $2, auth.uid()::text, '{}')",
      [bucket, fresh(w)],
    ],
    // For lora-models a change that is not a new upload (new bytes of an artifact are refused outside its job's delivery).
    update: (w) => [
      bucket === "lora-datasets"
        ? "update storage.objects set metadata = '{\"size\": 1}' where bucket_id = $1 and name = $2"
        : "update storage.objects set user_metadata = '{\"note\": 1}' where bucket_id = $1 and name = $2",
      [bucket, existing(w)],
    ],
    delete: (w) => ["delete from storage.objects where bucket_id = $1 and name = $2", [bucket, existing(w)]],
  };
};

// storage.objects is granted to every API role (as on Supabase), so policies alone decide:
// invisible rows give 0, a refused new row gives 42501.
const BUCKETS: Spec[] = [
  {
    name: "storage bucket lora-datasets",
    statements: objectStatements("lora-datasets"),
    setup: "select set_config('storage.allow_delete_query', 'true', true)",
    expect: { select: [0, 0, 1, 1], insert: [DENIED, DENIED, 1, 1], update: [0, 0, 1, 1], delete: [0, 0, 1, 1] },
  },
  {
    name: "storage bucket lora-models",
    statements: objectStatements("lora-models"),
    setup: "select set_config('storage.allow_delete_query', 'true', true)",
    expect: { select: [0, 0, 1, 1], insert: [DENIED, DENIED, DENIED, 1], update: [0, 0, 0, 1], delete: [0, 0, 0, 1] },
  },
];

const label = (o: Outcome) => (o === DENIED ? "is refused with 42501" : `affects ${o} row${o === 1 ? "" : "s"}`);
const whoLabel: Record<Who, string> = { anon: "anon", other: "another user", owner: "the owner", service_role: "service role" };

describe("tenant isolation matrix of the RLS policies and grants, in SQL", () => {
  let db: pg.Client;
  beforeAll(async () => {
    db = await connect();
  });
  afterAll(async () => {
    await db.end();
  });

  for (const spec of [...TABLES, ...BUCKETS]) {
    describe(spec.name, () => {
      for (const op of ["select", "insert", "update", "delete"] as Op[]) {
        WHO.forEach((who, i) => {
          const expected = spec.expect[op][i]!;
          it(`${op} as ${whoLabel[who]} ${label(expected)}`, async () => {
            const result = await rolledBack(db, async () => {
              const world = await seedWorld(db);
              if (spec.setup) await db.query(spec.setup);
              await actAs(db, who, world);
              const [sql, params] = spec.statements[op](world, who);
              return await attempt(db, sql, params);
            });
            if (expected === DENIED) {
              expect(result).toMatchObject({ code: DENIED, rowCount: 0 });
            } else {
              expect(result.code).toBeUndefined();
              expect(result.rowCount).toBe(expected);
            }
          });
        });
      }
    });
  }
});
