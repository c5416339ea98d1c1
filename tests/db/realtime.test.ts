/**
 * Realtime postgres_changes for the pipeline: the watched tables are in the
 * supabase_realtime publication with the replica identity Realtime needs
 * (the primary key), and the policies Realtime's per-subscriber RLS check
 * relies on (can this subscriber select the changed row?) admit only the
 * owner. Delivery through supabase-js is tested in tests/realtime/.
 */
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "../helpers/db.ts";
import { actAs, rolledBack, seedWorld, type Who } from "./lora-fixtures.ts";

const WATCHED = ["datasets", "job_events", "notifications", "training_jobs"];

describe("realtime", () => {
  let db: pg.Client;
  beforeAll(async () => {
    db = await connect();
  });
  afterAll(async () => {
    await db.end();
  });

  it("publishes inserts, updates and deletes of the watched tables", async () => {
    const pub = await db.query("select pubinsert, pubupdate, pubdelete from pg_publication where pubname = 'supabase_realtime'");
    expect(pub.rows[0]).toEqual({ pubinsert: true, pubupdate: true, pubdelete: true });
    const { rows } = await db.query(
      "select tablename::text as t from pg_publication_tables where pubname = 'supabase_realtime' and schemaname = 'public' order by 1",
    );
    expect(rows.map((r) => r.t)).toEqual(expect.arrayContaining(WATCHED));
  });

  it("the Realtime stand-in reads the publication through a temporary pgoutput slot, so a stopped stack leaves none", async () => {
    const { rows } = await db.query(
      "select plugin, slot_type, temporary, active from pg_replication_slots where slot_name = 'supabase_realtime_replication_slot'",
    );
    expect(rows).toEqual([{ plugin: "pgoutput", slot_type: "logical", temporary: true, active: true }]);
  });

  it.each(WATCHED)("%s has a primary key as replica identity and row level security", async (table) => {
    const { rows } = await db.query(
      `select c.relreplident as identity, c.relrowsecurity as rls,
              exists (select 1 from pg_index i where i.indrelid = c.oid and i.indisprimary) as has_pk
         from pg_class c where c.oid = ('public.' || $1)::regclass`,
      [table],
    );
    // 'd' = default, i.e. the primary key: enough for Realtime to identify updated and deleted rows.
    expect(rows[0]).toEqual({ identity: "d", rls: true, has_pk: true });
  });

  it("each watched row can be selected under its owner's claims and not under another user's", async () => {
    // The question Realtime's per-subscriber check asks (delivery itself: tests/realtime/).
    const seen = await rolledBack(db, async () => {
      const w = await seedWorld(db);
      await db.query("update public.training_jobs set status = 'dispatching' where id = $1", [w.job]);
      const ids: Record<string, string> = {
        datasets: w.dataset.ready, training_jobs: w.job, notifications: w.notification,
        job_events: (await db.query("select max(id)::text as id from public.job_events where job_id = $1", [w.job])).rows[0]!.id,
      };
      const out: Record<string, Record<string, number>> = {};
      for (const who of ["other", "owner"] as Who[]) {
        await actAs(db, who, w);
        out[who] = {};
        for (const t of WATCHED) {
          out[who][t] = (await db.query(`select 1 from public.${t} where id::text = $1`, [ids[t]])).rowCount ?? 0;
        }
        await db.query("reset role");
      }
      return out;
    });
    expect(seen).toEqual({
      other: { datasets: 0, job_events: 0, notifications: 0, training_jobs: 0 },
      owner: { datasets: 1, job_events: 1, notifications: 1, training_jobs: 1 },
    });
  });
});
