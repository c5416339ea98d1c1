/**
 * Re-uploads through the deployed pipeline: a new file replaces the previous
 * verdict (after a failed validation, or in the middle of one), while a
 * ready dataset's file and objects that belong to no dataset are refused.
 */
import { randomUUID } from "node:crypto";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LocalUser } from "../../stack/jwt.ts";
import { connect, newUser, sqlState } from "../helpers/db.ts";
import { testStack } from "../helpers/stack.ts";
import { supabaseClient } from "../helpers/supabase.ts";
import { waitFor } from "../helpers/wait.ts";
import { chatCorpus } from "./corpus.ts";
import { datasetRow, newDataset, onePass, runRow, upload, waitForVerdict } from "./helpers.ts";

// Generous: the whole suite shares the machine's CPUs with the worker.
const SLOW = 240_000;
const enc = (s: string) => new TextEncoder().encode(s);
const good = chatCorpus(40, { seed: 21 });
const bad = enc(`${new TextDecoder().decode(good)}{"messages": [{"role": "user", "content": 'single quotes'}]}\n`);

describe("re-uploads", () => {
  let db: pg.Client;
  let owner: LocalUser;
  const service = () => supabaseClient(testStack().SERVICE_ROLE_KEY).storage.from("lora-datasets");

  beforeAll(async () => {
    db = await connect();
    owner = await newUser(db, "reupload");
  });
  afterAll(async () => {
    await db.end();
  }, SLOW);

  it("the owner re-uploads a corrected file over a failed dataset with supabase-js, and its verdict replaces the failed one", async () => {
    const { id, path } = await newDataset(db, owner);
    expect((await upload(owner, path, bad)).error).toBeNull();
    const failed = await waitForVerdict(db, id);
    expect(failed.status).toBe("error");
    expect(failed.report!.errors).toContainEqual(expect.objectContaining({ code: "LT213", line: 41 }));

    // Nothing reopens anything: the owner replaces the failed file (an upsert) as a client.
    expect((await upload(owner, path, good, { upsert: true })).error).toBeNull();
    const fixed = await waitForVerdict(db, id);
    const expected = await onePass(good, (await runRow(db, id))!.options);
    expect(fixed).toMatchObject({ status: "ready", error: null, size_bytes: String(good.length) });
    expect(fixed.report).toEqual(expected.report);
    expect(fixed.stats).toEqual(expected.stats);
    expect(await runRow(db, id)).toMatchObject({ generation: 2, outcome: "ready" });
  }, SLOW);

  it("a new file uploaded during validation voids the run in flight; the verdict is the new file's", async () => {
    const big = chatCorpus(16_000, { seed: 5 });
    const { id, path } = await newDataset(db, owner, { maxInvalidFraction: 0.05 });
    expect((await upload(owner, path, big)).error).toBeNull();
    await waitFor(async () => ((await runRow(db, id))?.seq ?? 0) >= 1, { timeoutMs: 120_000, what: "validation under way" });
    // The server (service role) replaces the object while the worker is mid-file.
    const { error } = await service().upload(path, good, { upsert: true, contentType: "application/jsonl" });
    expect(error).toBeNull();
    const row = await waitForVerdict(db, id, 200_000);
    const run = (await runRow(db, id))!;
    const expected = await onePass(good, run.options);
    expect(run).toMatchObject({ generation: 2, outcome: "ready" });
    expect(row.stats).toEqual(expected.stats);
    expect(row.size_bytes).toBe(String(good.length));
  }, SLOW);

  it("a client cannot replace the file of a ready dataset: the Storage policies refuse it and the verdict stays", async () => {
    const { id, path } = await newDataset(db, owner);
    expect((await upload(owner, path, good)).error).toBeNull();
    const ready = await waitForVerdict(db, id);
    expect(ready.status).toBe("ready");
    const after = await upload(owner, path, bad, { upsert: true });
    expect(after.error).not.toBeNull();
    expect(await datasetRow(db, id)).toEqual(ready);
    const { data } = await service().download(path);
    expect(new Uint8Array(await data!.arrayBuffer())).toEqual(good);
  }, SLOW);

  it("refuses to replace the file of a ready dataset (LT281) and keeps its verdict", async () => {
    const { id, path } = await newDataset(db, owner);
    expect((await upload(owner, path, good)).error).toBeNull();
    const ready = await waitForVerdict(db, id);
    expect(ready.status).toBe("ready");
    const { error } = await service().upload(path, bad, { upsert: true, contentType: "application/jsonl" });
    expect(error?.message).toMatch(/LT281/);
    expect(await datasetRow(db, id)).toEqual(ready);
    const { data } = await service().download(path);
    expect(new Uint8Array(await data!.arrayBuffer())).toEqual(good);
  }, SLOW);

  it("operators can validate a failed dataset's file again (a new generation), never a ready one (LT287)", async () => {
    const { id, path } = await newDataset(db, owner);
    expect((await upload(owner, path, bad)).error).toBeNull();
    const first = await waitForVerdict(db, id);
    expect(first.status).toBe("error");
    await db.query("select private.revalidate_dataset($1)", [id]);
    expect((await datasetRow(db, id)).status).toBe("validating");
    const again = await waitForVerdict(db, id);
    expect(again.report).toEqual(first.report);
    expect(await runRow(db, id)).toMatchObject({ generation: 2, outcome: "error" });

    const ready = await newDataset(db, owner);
    expect((await upload(owner, ready.path, good)).error).toBeNull();
    await waitForVerdict(db, ready.id);
    expect(await sqlState(db.query("select private.revalidate_dataset($1)", [ready.id]))).toBe("LT287");
  }, SLOW);

  it("refuses an object that belongs to no dataset (LT280) and stores nothing", async () => {
    const path = `${owner.id}/${randomUUID()}/train.jsonl`;
    const { error } = await service().upload(path, good, { contentType: "application/jsonl" });
    expect(error?.message).toMatch(/LT280/);
    const { rowCount } = await db.query("select 1 from storage.objects where bucket_id = 'lora-datasets' and name = $1", [path]);
    expect(rowCount).toBe(0);
  });
});
