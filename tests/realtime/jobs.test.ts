/**
 * A frontend watching its training job through supabase-js: the real
 * pipeline (dispatch worker, GPU cluster simulator) moves the job, and every
 * status change reaches the owner's channel in commit order while another
 * user's channel on the same table receives none of them.
 */
import type { RealtimePostgresChangesPayload } from "@supabase/supabase-js";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, newUser } from "../helpers/db.ts";
import { testStack } from "../helpers/stack.ts";
import { supabaseClient } from "../helpers/supabase.ts";
import { waitFor } from "../helpers/wait.ts";
import { driveDispatch, insertJobAsUser, LLAMA, readyDataset } from "../jobs/fixtures.ts";
import type { Row } from "./support.ts";

type Seen = Array<RealtimePostgresChangesPayload<Row>>;

describe("realtime job watching", () => {
  let db: pg.Client;
  const clients: Array<ReturnType<typeof supabaseClient>> = [];
  beforeAll(async () => {
    db = await connect();
  });
  afterAll(async () => {
    for (const c of clients) {
      await c.removeAllChannels();
      c.realtime.disconnect();
    }
    await db.end();
  });

  /** Subscribe to training_jobs and datasets on one channel, as a dashboard would. */
  async function dashboard(token: string): Promise<Seen> {
    const client = supabaseClient(testStack().ANON_KEY, token);
    clients.push(client);
    const seen: Seen = [];
    let ready = false;
    client.channel(`dashboard-${Math.random().toString(36).slice(2)}`)
      .on("postgres_changes", { event: "*", schema: "public", table: "training_jobs" }, (p: RealtimePostgresChangesPayload<Row>) => seen.push(p))
      .on("postgres_changes", { event: "UPDATE", schema: "public", table: "datasets" }, (p: RealtimePostgresChangesPayload<Row>) => seen.push(p))
      .on("system", {}, (s: { status?: string }) => (ready ||= s.status === "ok"))
      .subscribe();
    await waitFor(() => ready, { timeoutMs: 30_000, what: "the dashboard to subscribe" });
    return seen;
  }

  it("delivers the job's status changes to its owner in commit order and none to another user", async () => {
    const owner = await newUser(db, "rt-job-owner");
    const other = await newUser(db, "rt-job-other");
    const dataset = await readyDataset(db, owner);
    const otherDataset = await readyDataset(db, other, undefined, { upload: false });
    const mine = await dashboard(owner.token);
    const theirs = await dashboard(other.token);

    const job = await insertJobAsUser(db, owner, { dataset_id: dataset.id, base_model_id: LLAMA });
    await driveDispatch(db, job.id);
    const statuses = () => mine
      .filter((c) => c.table === "training_jobs" && (c.new as Row).id === job.id)
      .map((c) => (c.new as Row).status as string)
      .filter((s, i, all) => i === 0 || all[i - 1] !== s);
    await waitFor(() => statuses().some((s) => ["running", "succeeded", "failed", "cancelled", "timed_out"].includes(s)), {
      timeoutMs: 60_000, what: "the owner to see the job dispatched",
    });

    // Commit order: every consecutive pair the owner saw is a move the state machine allows.
    const { rows } = await db.query("select from_status::text || '>' || to_status::text as move from private.job_status_transitions");
    const allowed = new Set(rows.map((r) => r.move as string));
    const seen = statuses();
    expect(seen.slice(0, 3)).toEqual(["queued", "dispatching", "running"]);
    for (let i = 1; i < seen.length; i++) expect(allowed).toContain(`${seen[i - 1]}>${seen[i]}`);

    // The other user's own change comes later in the same stream; by then nothing of the owner's arrived.
    await db.query("update public.datasets set name = 'marker' where id = $1", [otherDataset.id]);
    await waitFor(() => theirs.some((c) => (c.new as Row).id === otherDataset.id), { timeoutMs: 30_000, what: "the marker" });
    expect(theirs.filter((c) => c.table === "training_jobs")).toEqual([]);
  }, 180_000);
});
