/**
 * postgres_changes through supabase-js against the stack's Realtime
 * stand-in: changes come from logical decoding of the supabase_realtime
 * publication and reach a subscriber only when its RLS lets it select the row.
 */
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "../helpers/db.ts";
import { waitFor } from "../helpers/wait.ts";
import { idsSeen, userWithDataset, watch, type Row, type Watcher } from "./support.ts";

describe("realtime postgres_changes", () => {
  let db: pg.Client;
  const open: Watcher[] = [];
  const track = (w: Watcher) => (open.push(w), w);
  beforeAll(async () => {
    db = await connect();
  });
  afterAll(async () => {
    await Promise.all(open.map((w) => w.close()));
    await db.end();
  });

  it("delivers the owner's status changes in commit order and none to another user on the same table", async () => {
    const owner = await userWithDataset(db, "rt-owner");
    const other = await userWithDataset(db, "rt-other");
    // UPDATE only: the fixture's own insert may still be in the stream when the subscription starts.
    const mine = track(await watch({ token: owner.token, event: "UPDATE" }));
    const theirs = track(await watch({ token: other.token, event: "UPDATE" }));

    await db.query("update public.datasets set status = 'validating' where id = $1", [owner.dataset]);
    await db.query("update public.datasets set name = 'renamed' where id = $1", [owner.dataset]);
    await db.query("update public.datasets set status = 'ready' where id = $1", [owner.dataset]);
    const ownerUpdates = () => mine.changes.filter((c) => (c.new as Row).id === owner.dataset);
    await waitFor(() => ownerUpdates().length === 3, { timeoutMs: 30_000, what: "three updates for the owner" });
    expect(ownerUpdates().map((c) => [c.eventType, (c.new as Row).status, (c.new as Row).name])).toEqual([
      ["UPDATE", "validating", "rt-owner dataset"],
      ["UPDATE", "validating", "renamed"],
      ["UPDATE", "ready", "renamed"],
    ]);
    const first = ownerUpdates()[0]!;
    expect(first).toMatchObject({ schema: "public", table: "datasets", errors: null });
    expect(Date.parse(first.commit_timestamp)).not.toBeNaN();
    // Replica identity default: the old image of an update is the primary key.
    expect(first.old).toEqual({ id: owner.dataset });

    // The other user's own change comes after the owner's on the same stream: by then, none of the owner's arrived.
    await db.query("update public.datasets set name = 'marker' where id = $1", [other.dataset]);
    await waitFor(() => idsSeen(theirs).includes(other.dataset), { timeoutMs: 30_000, what: "the other user's marker" });
    expect(idsSeen(theirs)).not.toContain(owner.dataset);
    expect(idsSeen(mine)).not.toContain(other.dataset);
  });

  it("delivers inserts to their owner only, with typed values", async () => {
    const owner = await userWithDataset(db, "rt-insert");
    const other = await userWithDataset(db, "rt-insert-other");
    const mine = track(await watch({ token: owner.token, event: "INSERT" }));
    const theirs = track(await watch({ token: other.token, event: "INSERT" }));
    const { rows } = await db.query(
      "insert into public.datasets (user_id, name, file_name) values ($1, 'second', 'b.jsonl') returning id", [owner.id],
    );
    const mark = await db.query(
      "insert into public.datasets (user_id, name, file_name) values ($1, 'marker', 'm.jsonl') returning id", [other.id],
    );
    await waitFor(() => idsSeen(mine).includes(rows[0].id), { timeoutMs: 30_000, what: "the insert" });
    const got = mine.changes.find((c) => (c.new as Row).id === rows[0].id)!;
    expect(got.eventType).toBe("INSERT");
    expect(got.new).toMatchObject({ user_id: owner.id, name: "second", status: "uploading" });
    expect(got.old).toEqual({});
    await waitFor(() => idsSeen(theirs).includes(mark.rows[0].id), { timeoutMs: 30_000, what: "the marker insert" });
    expect(idsSeen(theirs)).not.toContain(rows[0].id);
  });

  it("applies eq, neq and in filters to the changed row", async () => {
    const owner = await userWithDataset(db, "rt-filter");
    const on = (filter: string) => watch({ token: owner.token, event: "UPDATE", filter });
    const eq = track(await on("name=eq.wanted"));
    const neq = track(await on("name=neq.wanted"));
    const inList = track(await on("status=in.(validating,error)"));
    await db.query("update public.datasets set name = 'wanted' where id = $1", [owner.dataset]);
    await db.query("update public.datasets set name = 'unwanted', status = 'validating' where id = $1", [owner.dataset]);
    await waitFor(() => neq.changes.length === 1 && eq.changes.length === 1 && inList.changes.length === 1, {
      timeoutMs: 30_000, what: "one change per filter",
    });
    expect((eq.changes[0]!.new as Row).name).toBe("wanted");
    expect((neq.changes[0]!.new as Row).name).toBe("unwanted");
    expect((inList.changes[0]!.new as Row).status).toBe("validating");
  });

  it("compares lt, lte, gt and gte filters numerically by the column's type", async () => {
    const owner = await userWithDataset(db, "rt-range");
    const on = (filter: string) => watch({ token: owner.token, event: "UPDATE", filter });
    const [lt, lte, gt, gte] = [
      track(await on("progress_pct=lt.9")), track(await on("progress_pct=lte.9")),
      track(await on("progress_pct=gt.9")), track(await on("progress_pct=gte.9")),
    ];
    // 10 < 9 as text; numerically it is the largest.
    for (const pctValue of [5, 9, 10]) {
      await db.query("update public.datasets set progress_pct = $2 where id = $1", [owner.dataset, pctValue]);
    }
    const seen = (w: Watcher) => w.changes.map((c) => Number((c.new as Row).progress_pct));
    await waitFor(() => seen(lt).length + seen(lte).length + seen(gt).length + seen(gte).length === 6, {
      timeoutMs: 30_000, what: "six filtered changes",
    });
    expect({ lt: seen(lt), lte: seen(lte), gt: seen(gt), gte: seen(gte) }).toEqual({ lt: [5], lte: [5, 9], gt: [10], gte: [9, 10] });
  });

  it("rejects a filter on a column the table does not have with a postgres_changes system error", async () => {
    const owner = await userWithDataset(db, "rt-badfilter");
    const w = track(await watch({ token: owner.token, filter: "nope=eq.1", await: false }));
    await waitFor(() => w.system.find((s) => s.extension === "postgres_changes"), { timeoutMs: 30_000, what: "system message" });
    expect(w.system[0]).toMatchObject({ status: "error" });
    expect(String(w.system[0]!.message)).toMatch(/^Unable to subscribe to changes with given parameters/);
  });

  it("refuses a subscription to a table outside the supabase_realtime publication", async () => {
    const owner = await userWithDataset(db, "rt-unpublished");
    const w = track(await watch({ token: owner.token, table: "cost_records", await: false }));
    await waitFor(() => w.system.find((s) => s.extension === "postgres_changes"), { timeoutMs: 30_000, what: "system message" });
    expect(w.system[0]).toMatchObject({ status: "error" });
    expect(String(w.system[0]!.message)).toContain("table: cost_records");
  });

  it("sends a delete of an RLS table to every subscriber of the table with only the primary key", async () => {
    const owner = await userWithDataset(db, "rt-delete");
    const other = await userWithDataset(db, "rt-delete-other");
    const mine = track(await watch({ token: owner.token, event: "DELETE" }));
    const theirs = track(await watch({ token: other.token, event: "DELETE" }));
    await db.query("delete from public.datasets where id = $1", [owner.dataset]);
    for (const w of [mine, theirs]) {
      await waitFor(() => idsSeen(w).includes(owner.dataset), { timeoutMs: 30_000, what: "the delete" });
      const got = w.changes.find((c) => (c.old as Row).id === owner.dataset)!;
      expect(got.eventType).toBe("DELETE");
      expect(got.old).toEqual({ id: owner.dataset });
      expect(got.new).toEqual({});
    }
  });
});
