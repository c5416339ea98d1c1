/**
 * Poison messages and the attempt limit, with the handler in-process on a
 * queue of its own: malformed messages are archived, stale ones dropped,
 * and a run that keeps failing (errors, or workers that die holding it) ends
 * after max_attempts with its message archived and a `system` error on the
 * dataset, never stuck in validating.
 */
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { StorageReadError, ObjectMissingError } from "../../functions/validate-dataset/object-reader.ts";
import type { LocalUser } from "../../stack/jwt.ts";
import { connect, newUser } from "../helpers/db.ts";
import { waitFor } from "../helpers/wait.ts";
import { chatCorpus } from "./corpus.ts";
import { datasetRow, gate, Harness, memoryReader, runRow } from "./helpers.ts";

describe("poison messages and the attempt limit", () => {
  let db: pg.Client;
  let owner: LocalUser;
  let h: Harness;
  let maxAttempts: number;
  const file = chatCorpus(60);

  beforeAll(async () => {
    db = await connect();
    owner = await newUser(db, "poison");
    h = await new Harness().open();
    maxAttempts = Number((await db.query("select private.dataset_validation_setting('max_attempts') as n")).rows[0].n);
  });
  afterAll(async () => {
    await h.close();
    await db.end();
  });

  const archived = async (): Promise<unknown[]> =>
    (await db.query(`select message from pgmq.a_${h.queue} order by msg_id`)).rows.map((r) => r.message);
  const queued = async (): Promise<number> => (await db.query(`select count(*)::int as n from pgmq.q_${h.queue}`)).rows[0].n;

  it("archives malformed messages without crashing, and drops messages of unknown or superseded runs", async () => {
    const malformed = [{ hello: "world" }, { dataset_id: "not-a-uuid", generation: 1 }, { dataset_id: owner.id, generation: 1.5 }, [1, 2]];
    for (const m of malformed) await db.query("select pgmq.send(queue_name => $1, msg => $2::jsonb)", [h.queue, JSON.stringify(m)]);
    await db.query("select pgmq.send(queue_name => $1, msg => $2::jsonb)", [
      h.queue, JSON.stringify({ dataset_id: "00000000-0000-4000-8000-000000000000", generation: 1 }),
    ]);
    const report = await h.invoke({ reader: memoryReader(file) });
    expect(report.runs).toEqual([]);
    expect(await archived()).toEqual(malformed);
    expect(await queued()).toBe(0);
  });

  it("after max_attempts failed attempts archives the message and gives the dataset a system error", async () => {
    const id = await h.prepare(owner, file);
    const outcomes: string[] = [];
    for (let i = 0; i < maxAttempts; i++) {
      const report = await h.invoke({ reader: memoryReader(file, () => { throw new StorageReadError("Storage answered 503"); }) });
      outcomes.push(...report.runs.map((r) => r.outcome));
      await h.expire(id).catch(() => {}); // skip the backoff
    }
    expect(outcomes).toEqual([...Array<string>(maxAttempts - 1).fill("retrying"), "failed"]);
    const row = await datasetRow(db, id);
    expect(row.status).toBe("error");
    expect(row.error).toMatchObject({ code: "LT282", kind: "system" });
    expect(await runRow(db, id)).toMatchObject({ outcome: "failed", failed_attempts: maxAttempts, lease_token: null });
    expect((await runRow(db, id))!.last_error).toContain("Storage answered 503");
    expect(await archived()).toContainEqual(expect.objectContaining({ dataset_id: id }));
    expect(await queued()).toBe(0);
  });

  it("backs off between failed attempts instead of retrying at once", async () => {
    const id = await h.prepare(owner, file);
    await h.invoke({ reader: memoryReader(file, () => { throw new StorageReadError("Storage answered 500"); }) });
    const { rows } = await db.query(`select vt > now() + interval '2 seconds' as later from pgmq.q_${h.queue} where message ->> 'dataset_id' = $1`, [id]);
    expect(rows).toEqual([{ later: true }]);
    expect((await h.invoke({ reader: memoryReader(file) })).runs).toEqual([]);
    expect((await datasetRow(db, id)).status).toBe("validating");
    await h.expire(id);
    await h.drain(db, id, { reader: memoryReader(file) });
    expect((await datasetRow(db, id)).status).toBe("ready");
  });

  it("counts workers that die holding the run as failed attempts, up to the limit", async () => {
    const id = await h.prepare(owner, file);
    const stall = gate();
    const dead: Array<Promise<unknown>> = [];
    for (let i = 0; i < maxAttempts; i++) {
      const before = (await runRow(db, id))!.invocations;
      dead.push(h.invoke({ reader: memoryReader(file, () => stall.wait) }));
      await waitFor(async () => (await runRow(db, id))!.invocations === before + 1, { what: `claim ${i + 1}` });
      await h.expire(id);
    }
    // The next delivery finds a run whose holders all died without progress.
    expect((await h.invoke({ reader: memoryReader(file) })).runs).toEqual([]);
    const row = await datasetRow(db, id);
    expect(row).toMatchObject({ status: "error", error: { code: "LT282", kind: "system" } });
    expect(await runRow(db, id)).toMatchObject({ outcome: "failed", failed_attempts: maxAttempts });
    stall.open();
    const late = (await Promise.all(dead)) as Array<{ runs: Array<{ outcome: string }> }>;
    expect(late.map((r) => r.runs[0]?.outcome)).toEqual(Array(maxAttempts).fill("lost"));
    expect((await datasetRow(db, id)).error).toMatchObject({ code: "LT282" });
  });

  it("fails the dataset with LT283 (user) when its file was deleted before validation finished", async () => {
    const id = await h.prepare(owner, file);
    const report = await h.invoke({ reader: memoryReader(file, () => { throw new ObjectMissingError("Object is gone"); }) });
    expect(report.runs).toEqual([expect.objectContaining({ datasetId: id, outcome: "error" })]);
    expect(await datasetRow(db, id)).toMatchObject({ status: "error", error: { code: "LT283", kind: "user" } });
    expect(await runRow(db, id)).toMatchObject({ outcome: "error" });
  });

  it("cancels the run of a dataset deleted while validating (LT284) instead of validating it", async () => {
    const id = await h.prepare(owner, file);
    await db.query("update public.datasets set deleted_at = now() where id = $1", [id]);
    expect((await h.invoke({ reader: memoryReader(file) })).runs).toEqual([]);
    expect(await datasetRow(db, id)).toMatchObject({ status: "error", error: { code: "LT284", kind: "user" } });
    expect(await runRow(db, id)).toMatchObject({ outcome: "cancelled" });
    expect(await queued()).toBe(0);
  });
});
