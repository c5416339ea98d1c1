/**
 * The job and dataset state machines: the transition tables hold exactly the
 * documented moves; every allowed move succeeds (with its bookkeeping); every
 * other move, terminal states included, fails with LT001 / LT002 whoever
 * attempts it; new rows start in an initial state.
 */
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "../helpers/db.ts";
import { actAs, actAsAdmin, attempt, rolledBack, seedDataset, seedJob, seedWorld } from "./lora-fixtures.ts";

type Edge = readonly [string, string];

const JOB_STATUSES = ["pending", "queued", "dispatching", "running", "succeeded", "failed", "cancelling", "cancelled", "timed_out"];
const JOB_INITIAL = ["pending", "queued"];
const JOB_MOVES: Edge[] = [
  ["pending", "queued"], ["pending", "cancelled"], ["pending", "failed"],
  ["queued", "dispatching"], ["queued", "cancelled"], ["queued", "failed"],
  ["dispatching", "running"], ["dispatching", "queued"], ["dispatching", "failed"], ["dispatching", "cancelling"],
  ["running", "succeeded"], ["running", "failed"], ["running", "timed_out"], ["running", "cancelling"], ["running", "queued"],
  ["cancelling", "cancelled"], ["cancelling", "succeeded"], ["cancelling", "failed"],
];
const JOB_TERMINAL = ["succeeded", "failed", "cancelled", "timed_out"];

const DATASET_STATUSES = ["uploading", "validating", "ready", "error"];
const DATASET_MOVES: Edge[] = [
  ["uploading", "validating"], ["uploading", "error"], ["validating", "ready"], ["validating", "error"],
  ["error", "uploading"], ["error", "validating"],
];

/** Shortest walk of allowed moves from an initial state to `target`. */
function pathTo(target: string, initial: string[], moves: Edge[]): string[] {
  const queue: string[][] = initial.map((s) => [s]);
  const seen = new Set(initial);
  while (queue.length > 0) {
    const walk = queue.shift()!;
    const last = walk[walk.length - 1]!;
    if (last === target) return walk;
    for (const [from, to] of moves) {
      if (from === last && !seen.has(to)) {
        seen.add(to);
        queue.push([...walk, to]);
      }
    }
  }
  throw new Error(`${target} is unreachable`);
}

const key = ([a, b]: Edge) => `${a}->${b}`;
const forbidden = (statuses: string[], moves: Edge[]): Edge[] => {
  const allowed = new Set(moves.map(key));
  return statuses.flatMap((a) => statuses.filter((b) => a !== b && !allowed.has(`${a}->${b}`)).map((b) => [a, b] as const));
};

describe("job state machine", () => {
  let db: pg.Client;
  beforeAll(async () => {
    db = await connect();
  });
  afterAll(async () => {
    await db.end();
  });

  /** A job of a fresh world in `status`, reached through allowed moves as the service role. */
  async function jobIn(status: string): Promise<string> {
    const w = await seedWorld(db);
    const walk = pathTo(status, JOB_INITIAL, JOB_MOVES);
    const job = await seedJob(db, w.owner.id, w.dataset.ready, { status: walk[0] });
    for (const s of walk.slice(1)) await db.query("update public.training_jobs set status = $2 where id = $1", [job, s]);
    return job;
  }

  it("private.job_status_transitions holds exactly the documented moves", async () => {
    const { rows } = await db.query("select from_status::text, to_status::text from private.job_status_transitions");
    expect(rows.map((r) => key([r.from_status, r.to_status])).sort()).toEqual(JOB_MOVES.map(key).sort());
  });

  it("the status enum has exactly the documented states", async () => {
    const { rows } = await db.query("select unnest(enum_range(null::public.training_job_status))::text as s");
    expect(rows.map((r) => r.s)).toEqual(JOB_STATUSES);
  });

  it("terminal states have no way out", () => {
    expect(JOB_MOVES.filter(([from]) => JOB_TERMINAL.includes(from))).toEqual([]);
  });

  for (const [from, to] of JOB_MOVES) {
    it(`allows ${from} -> ${to} and records it as an event`, async () => {
      const { row, event } = await rolledBack(db, async () => {
        const job = await jobIn(from);
        await actAs(db, "service_role");
        const r = await attempt(db, "update public.training_jobs set status = $2 where id = $1 returning *", [job, to]);
        await actAsAdmin(db);
        const e = await db.query(
          "select type, data from public.job_events where job_id = $1 and type = 'job.status_changed' order by id desc limit 1", [job],
        );
        return { row: r, event: e.rows[0] };
      });
      expect(row.code).toBeUndefined();
      expect(row.rows[0]).toMatchObject({ status: to });
      expect(event).toEqual({ type: "job.status_changed", data: { from, to } });
    });
  }

  for (const [from, to] of forbidden(JOB_STATUSES, JOB_MOVES)) {
    it(`refuses ${from} -> ${to} with LT001`, async () => {
      const r = await rolledBack(db, async () => {
        const job = await jobIn(from);
        return await attempt(db, "update public.training_jobs set status = $2 where id = $1", [job, to]);
      });
      expect(r.code).toBe("LT001");
    });
  }

  it("keeps bookkeeping in step: dispatch attempts, runs, start and finish times", async () => {
    const row = await rolledBack(db, async () => {
      const job = await jobIn("queued");
      for (const s of ["dispatching", "queued", "dispatching", "running", "queued", "dispatching", "running", "succeeded"]) {
        await db.query("update public.training_jobs set status = $2 where id = $1", [job, s]);
      }
      return (await db.query(
        `select dispatch_attempts, attempt_count, started_at is not null as started, finished_at is not null as finished,
                finished_at >= started_at as ordered
           from public.training_jobs where id = $1`, [job],
      )).rows[0];
    });
    expect(row).toEqual({ dispatch_attempts: 3, attempt_count: 2, started: true, finished: true, ordered: true });
  });

  it("an unchanged status is not a transition", async () => {
    const r = await rolledBack(db, async () => {
      const job = await jobIn("succeeded");
      return await attempt(db, "update public.training_jobs set status = 'succeeded', last_polled_at = now() where id = $1", [job]);
    });
    expect(r).toMatchObject({ rowCount: 1 });
    expect(r.code).toBeUndefined();
  });

  it.each(["dispatching", "running", "succeeded", "cancelling"])("a new job cannot start as %s (LT009)", async (status) => {
    const r = await rolledBack(db, async () => {
      const w = await seedWorld(db);
      return await attempt(
        db, "insert into public.training_jobs (user_id, dataset_id, base_model_id, status) values ($1, $2, 'llama-3.1-8b-instruct', $3)",
        [w.owner.id, w.dataset.ready, status],
      );
    });
    expect(r.code).toBe("LT009");
  });

  it("a client cannot move its own job, even along an allowed edge", async () => {
    const r = await rolledBack(db, async () => {
      const w = await seedWorld(db);
      await actAs(db, "owner", w);
      return await attempt(db, "update public.training_jobs set status = 'cancelled' where id = $1", [w.job]);
    });
    expect(r.code).toBe("42501");
  });
});

describe("dataset state machine", () => {
  let db: pg.Client;
  beforeAll(async () => {
    db = await connect();
  });
  afterAll(async () => {
    await db.end();
  });

  async function datasetIn(status: string): Promise<string> {
    const w = await seedWorld(db);
    const walk = pathTo(status, ["uploading"], DATASET_MOVES);
    const id = await seedDataset(db, w.owner.id, "uploading");
    for (const s of walk.slice(1)) await db.query("update public.datasets set status = $2 where id = $1", [id, s]);
    return id;
  }

  it("private.dataset_status_transitions holds exactly the documented moves", async () => {
    const { rows } = await db.query("select from_status::text, to_status::text from private.dataset_status_transitions");
    expect(rows.map((r) => key([r.from_status, r.to_status])).sort()).toEqual(DATASET_MOVES.map(key).sort());
  });

  for (const [from, to] of DATASET_MOVES) {
    it(`allows ${from} -> ${to}`, async () => {
      const r = await rolledBack(db, async () => {
        const id = await datasetIn(from);
        return await attempt(db, "update public.datasets set status = $2 where id = $1 returning status::text, validated_at", [id, to]);
      });
      expect(r.code).toBeUndefined();
      expect(r.rows[0]?.status).toBe(to);
      // validated_at marks the end of a validation run.
      expect(r.rows[0]?.validated_at !== null).toBe(from === "validating");
    });
  }

  for (const [from, to] of forbidden(DATASET_STATUSES, DATASET_MOVES)) {
    it(`refuses ${from} -> ${to} with LT002`, async () => {
      const r = await rolledBack(db, async () => {
        const id = await datasetIn(from);
        return await attempt(db, "update public.datasets set status = $2 where id = $1", [id, to]);
      });
      expect(r.code).toBe("LT002");
    });
  }

  it("a new dataset must start as uploading (LT009)", async () => {
    const r = await rolledBack(db, async () => {
      const w = await seedWorld(db);
      return await attempt(db, "insert into public.datasets (user_id, name, file_name, status) values ($1, 'x', 'x.jsonl', 'ready')", [
        w.owner.id,
      ]);
    });
    expect(r.code).toBe("LT009");
  });

  it("starting validation resets progress", async () => {
    const progress = await rolledBack(db, async () => {
      const id = await datasetIn("validating");
      await db.query("update public.datasets set progress_pct = 40, status = 'error' where id = $1", [id]);
      return (await db.query("update public.datasets set status = 'validating' where id = $1 returning progress_pct::float8 as p", [id]))
        .rows[0]?.p;
    });
    expect(progress).toBe(0);
  });
});
