/**
 * The whole path on the embedded stack: a client inserts a dataset and
 * uploads the file with supabase-js; the storage trigger, pgmq, pg_net and
 * the deployed validate-dataset function do the rest. The test only waits.
 */
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LocalUser } from "../../stack/jwt.ts";
import { asRole, connect, newUser } from "../helpers/db.ts";
import { testStack } from "../helpers/stack.ts";
import { supabaseClient } from "../helpers/supabase.ts";
import { chatCorpus } from "./corpus.ts";
import { newDataset, onePass, runRow, upload, waitForVerdict } from "./helpers.ts";

// Generous: the whole suite shares the machine's CPUs with this worker.
const SLOW = 240_000;

describe("dataset ingestion pipeline", () => {
  let db: pg.Client;
  let owner: LocalUser;

  beforeAll(async () => {
    db = await connect();
    owner = await newUser(db, "pipeline");
  });
  afterAll(async () => {
    await db.end();
  });

  it("an upload with supabase-js ends ready with the engine's statistics, with no client action after it", async () => {
    const file = chatCorpus(12_000, { seed: 11, longLineBytes: 300_000 });
    const { id, path } = await newDataset(db, owner, { maxInvalidFraction: 0.05 });
    const { error } = await upload(owner, path, file);
    expect(error).toBeNull();

    const row = await waitForVerdict(db, id, 200_000);
    const run = (await runRow(db, id))!;
    const expected = await onePass(file, run.options);
    expect(row).toMatchObject({
      status: "ready", format: "chat", size_bytes: String(file.length), mime_type: "application/jsonl", progress_pct: "100.00", error: null,
    });
    expect(row.stats).toEqual(expected.stats);
    expect(row.report).toEqual(expected.report);
    // Several budgeted invocations, chained by the worker itself.
    expect(run.invocations).toBeGreaterThan(1);
    expect(run).toMatchObject({ outcome: "ready", failed_attempts: 0, generation: 1 });
    // Statistics cover every enabled base model the engine can count for, per model and per family.
    const models = (await db.query("select id, context_length from public.base_models where enabled")).rows as Array<{ id: string; context_length: number }>;
    for (const m of models.filter((m) => run.options.models?.[m.id])) {
      expect(row.stats!.models[m.id]).toMatchObject({ contextLength: m.context_length });
      expect(row.stats!.tokens[row.stats!.models[m.id]!.family]!.totalTokens).toBeGreaterThan(0);
    }
    expect(Object.keys(run.options.models ?? {}).length).toBeGreaterThan(0);
  }, SLOW);

  it("the owner sees the verdict on their dataset row, and the worker's state stays private", async () => {
    const { id, path } = await newDataset(db, owner);
    expect((await upload(owner, path, chatCorpus(30, { seed: 3 }).subarray(0, 4000))).error).toBeNull();
    await waitForVerdict(db, id);
    // As the owner's frontend reads it: supabase-js through PostgREST.
    const client = supabaseClient(testStack().ANON_KEY, owner.token);
    const mine = await client.from("datasets").select("status, stats, report").eq("id", id);
    expect(mine.error).toBeNull();
    expect(mine.data!.map((d) => ({ status: d.status, has_stats: d.stats !== null, has_report: d.report !== null })))
      .toEqual([{ status: expect.stringMatching(/^(ready|error)$/), has_stats: true, has_report: true }]);
    // The worker's schema is not exposed at all (PGRST106, 406), and not readable in SQL either (42501).
    const internals = await client.schema("private" as never).from("dataset_validation_runs" as never).select();
    expect(internals).toMatchObject({ status: 406, error: { code: "PGRST106" } });
    const sql = await asRole(db, { role: "authenticated", user: owner }, (c) =>
      c.query("select 1 from private.dataset_validation_runs").catch((e: { code?: string }) => e.code));
    expect(sql).toBe("42501");
  }, SLOW);

  it("the validate-dataset function refuses callers other than the service role", async () => {
    const url = `${testStack().API_URL}/functions/v1/validate-dataset`;
    const call = (key: string, method = "POST") => fetch(url, { method, headers: { authorization: `Bearer ${key}`, apikey: key } });
    const anon = await call(testStack().ANON_KEY);
    expect(anon.status).toBe(403);
    expect(await anon.json()).toMatchObject({ error: { code: "forbidden" } });
    expect((await call(owner.token)).status).toBe(403);
    expect((await fetch(url, { method: "POST" })).status).toBe(401);
    expect((await call(testStack().SERVICE_ROLE_KEY, "GET")).status).toBe(405);
    const ok = await call(testStack().SERVICE_ROLE_KEY);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ success: true, data: { runs: expect.any(Array) } });
  });
});
