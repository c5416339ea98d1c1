/**
 * Resumable validation: the validate-dataset handler run in-process on a
 * queue of its own, over an in-memory file, so the tests decide chunk sizes,
 * how much each invocation does, and where a worker dies. Whatever happens,
 * the dataset must end with exactly the statistics and report of one pass of
 * the engine over the whole file.
 */
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LocalUser } from "../../stack/jwt.ts";
import { connect, newUser } from "../helpers/db.ts";
import { waitFor } from "../helpers/wait.ts";
import { chatCorpus } from "./corpus.ts";
import { datasetRow, gate, Harness, memoryReader, onePass, runRow, waitForVerdict } from "./helpers.ts";

// Generous: each test drives hundreds of invocations, on CPUs the whole suite shares.
const SLOW = 240_000;

describe("resumable validation", () => {
  let db: pg.Client;
  let owner: LocalUser;
  let h: Harness;
  const file = chatCorpus(400, { longLineBytes: 12_000 });
  const tolerance = { maxInvalidFraction: 0.05 };

  beforeAll(async () => {
    db = await connect();
    owner = await newUser(db, "resume");
    h = await new Harness().open();
  });
  afterAll(async () => {
    await h.close();
    await db.end();
  });

  /** The stored verdict must equal one pass of the engine with the run's own options. */
  const expectOnePass = async (id: string) => {
    const row = await waitForVerdict(db, id, 1000);
    const run = (await runRow(db, id))!;
    const expected = await onePass(file, run.options);
    expect(row.status).toBe(expected.verdict);
    expect(row.stats).toEqual(expected.stats);
    expect(row.report).toEqual(expected.report);
    expect(row.format).toBe(expected.format);
    expect(Number(row.progress_pct)).toBe(100);
    return { row, run, expected };
  };

  it("a file validated in many small chunks gives exactly the statistics of one pass", async () => {
    const id = await h.prepare(owner, file, tolerance);
    // Only the chunk count limits an invocation here (loading the tokenizers would spend the time budget).
    const budget = { chunkBytes: 997, maxChunks: 4, workMs: 60_000 };
    const reports = await h.drain(db, id, { reader: memoryReader(file), budget });
    const { row, run, expected } = await expectOnePass(id);
    // The corpus really exercised what resuming must get right.
    expect(expected.verdict).toBe("ready");
    expect(expected.stats.duplicates).toBeGreaterThan(20);
    expect(expected.report.totals.LT213).toBeGreaterThan(3);
    expect(Object.keys(row.stats!.tokens).length).toBeGreaterThan(0);
    const chunks = reports.flatMap((r) => r.runs).reduce((n, r) => n + r.chunks, 0);
    expect(chunks).toBe(Math.ceil(file.length / 997));
    expect(reports.length).toBe(Math.ceil(chunks / 4));
    expect(run).toMatchObject({ seq: chunks, invocations: reports.length, failed_attempts: 0, outcome: "ready" });
  }, SLOW);

  it("updates progress on the dataset row every 5 %, not every chunk", async () => {
    const id = await h.prepare(owner, file, tolerance);
    const seen: number[] = [];
    for (let i = 0; i < 500; i++) {
      await h.invoke({ reader: memoryReader(file), budget: { chunkBytes: 487, maxChunks: 1 } });
      const row = await datasetRow(db, id);
      if (row.status !== "validating") break;
      const pct = Number(row.progress_pct);
      if (seen.at(-1) !== pct) seen.push(pct);
    }
    const { run } = await expectOnePass(id);
    expect(run.seq).toBeGreaterThan(80);
    expect(seen.length).toBeGreaterThan(10);
    expect(seen.length).toBeLessThanOrEqual(21);
    seen.slice(1).forEach((pct, i) => expect(Math.floor(pct / 5)).toBeGreaterThan(Math.floor(seen[i]! / 5)));
  }, SLOW);

  it("killing the worker mid-file and redelivering the message gives the same result; the dead worker saves nothing", async () => {
    const id = await h.prepare(owner, file, tolerance);
    const stall = gate();
    // The first worker dies (stalls forever) on its 4th read, after saving 3 chunks.
    const dead = h.invoke({
      reader: memoryReader(file, (n) => (n === 4 ? stall.wait : undefined)),
      budget: { chunkBytes: 1500 },
    });
    await waitFor(async () => (await runRow(db, id))!.seq === 3, { what: "three saved chunks" });
    // Its visibility timeout passes: the message is redelivered to a fresh worker.
    await h.expire(id);
    await h.drain(db, id, { reader: memoryReader(file), budget: { chunkBytes: 2048, maxChunks: 5 } });
    const { run } = await expectOnePass(id);
    expect(run.failed_attempts).toBe(0);
    // The dead worker wakes up holding a chunk it already processed; it is refused.
    stall.open();
    const late = await dead;
    expect(late.runs).toEqual([expect.objectContaining({ datasetId: id, outcome: "lost" })]);
    await expectOnePass(id);
  }, SLOW);

  it("a worker that dies after saving, before handing over, is resumed from its cursor", async () => {
    const id = await h.prepare(owner, file, tolerance);
    const store = h.store();
    const stall = gate();
    const dead = h.invoke({
      reader: memoryReader(file),
      store: { ...store, continueRun: async () => await stall.wait },
      budget: { chunkBytes: 4096, maxChunks: 2 },
    });
    await waitFor(async () => (await runRow(db, id))!.seq === 2, { what: "two saved chunks" });
    await h.expire(id);
    await h.drain(db, id, { reader: memoryReader(file), budget: { chunkBytes: 3000, maxChunks: 3 } });
    const { run } = await expectOnePass(id);
    expect(run.invocations).toBeGreaterThan(2);
    stall.open();
    expect((await dead).runs[0]).toMatchObject({ outcome: "continued" });
  }, SLOW);

  it("a duplicated message never double-counts, even with two workers at once", async () => {
    const id = await h.prepare(owner, file, tolerance);
    const run = (await runRow(db, id))!;
    await db.query("select pgmq.send(queue_name => $1, msg => $2::jsonb)", [h.queue, JSON.stringify({ dataset_id: id, generation: run.generation })]);
    for (let i = 0; i < 300; i++) {
      await Promise.all([1, 2].map(() => h.invoke({ reader: memoryReader(file), budget: { chunkBytes: 1024, maxChunks: 3 } })));
      if ((await datasetRow(db, id)).status !== "validating") break;
      await h.expire(id);
    }
    await expectOnePass(id);
    const left = await db.query(`select count(*)::int as n from pgmq.q_${h.queue}`);
    expect(left.rows[0].n).toBe(0);
    const hashes = await db.query("select count(*)::int as n from private.dataset_example_hashes where dataset_id = $1", [id]);
    expect(hashes.rows[0].n).toBe(0);
  }, SLOW);
});
