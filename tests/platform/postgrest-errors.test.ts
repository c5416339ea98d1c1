/**
 * The HTTP status each error class gets through the real PostgREST at
 * `/rest/v1`, as docs/ERRORS.md ("HTTP status through PostgREST") states:
 * a sample of LT codes, SQLSTATEs and PGRST codes provoked with supabase-js
 * (or plain fetch where supabase-js cannot send the request).
 */
import { randomUUID } from "node:crypto";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LocalUser } from "../../stack/jwt.ts";
import { seedDataset } from "../db/lora-fixtures.ts";
import { connect, newUser } from "../helpers/db.ts";
import { testStack } from "../helpers/stack.ts";
import { supabaseClient } from "../helpers/supabase.ts";

const MODEL = "llama-3.1-8b-instruct";

describe("error statuses through PostgREST", () => {
  let db: pg.Client;
  let owner: LocalUser;
  let other: LocalUser;
  let uploading: string;
  let ready: string;
  const as = (u: LocalUser) => supabaseClient(testStack().ANON_KEY, u.token);

  beforeAll(async () => {
    db = await connect();
    [owner, other] = [await newUser(db, "err-owner"), await newUser(db, "err-other")];
    const { data, error } = await as(owner).from("datasets").insert({ name: "e", file_name: "e.jsonl" }).select("id").single();
    if (error) throw error;
    uploading = data.id;
    ready = await seedDataset(db, owner.id, "ready");
  });

  afterAll(async () => {
    await db.query(
      "update public.training_jobs set status = 'cancelled' where user_id = $1 and status in ('pending', 'queued')", [owner.id],
    ).catch(() => {});
    await db.end();
  });

  it("an LT code raised by a trigger (LT007: the dataset is not ready) is 400 with its hint", async () => {
    const res = await as(owner).from("training_jobs")
      .insert({ dataset_id: uploading, base_model_id: MODEL, requested_config: {} }).select("id");
    expect(res.status).toBe(400);
    expect(res.error).toMatchObject({ code: "LT007", hint: expect.stringContaining("ready") });
  });

  it("an LT1xx configuration error is 400 and lists every problem in details (JSON text)", async () => {
    const res = await as(owner).from("training_jobs")
      .insert({ dataset_id: ready, base_model_id: MODEL, requested_config: { lora: { rank: 100000 } } }).select("id");
    expect(res.status).toBe(400);
    expect(res.error?.code).toBe("LT103");
    expect(JSON.parse(res.error!.details)).toEqual([expect.objectContaining({ code: "LT103", path: ["lora", "rank"] })]);
    const { rows } = await db.query("select 1 from public.training_jobs where dataset_id = $1", [ready]);
    expect(rows).toHaveLength(0);
  });

  it("an LT code raised by an RPC (LT420: no such job) is 400", async () => {
    const res = await as(owner).rpc("cancel_training_job", { job_id: randomUUID() });
    expect(res.status).toBe(400);
    expect(res.error?.code).toBe("LT420");
  });

  it("42501 is 403 with a user's token and 401 with only the anon key", async () => {
    const asUser = await as(owner).from("datasets").delete().eq("id", uploading);
    expect([asUser.status, asUser.error?.code]).toEqual([403, "42501"]);
    const asAnon = await supabaseClient(testStack().ANON_KEY).rpc("validate_training_config", { base_model_id: MODEL, config: {} });
    expect([asAnon.status, asAnon.error?.code]).toEqual([401, "42501"]);
    const { rows } = await db.query("select 1 from public.datasets where id = $1", [uploading]);
    expect(rows).toHaveLength(1);
  });

  it("23503 (a job on another user's dataset) is 409", async () => {
    const res = await as(other).from("training_jobs")
      .insert({ dataset_id: ready, base_model_id: MODEL, requested_config: {} }).select("id");
    expect([res.status, res.error?.code]).toEqual([409, "23503"]);
  });

  it("23505 (a second job with the same idempotency_key) is 409, and the first job stays the only one", async () => {
    const key = `err-${randomUUID()}`;
    const row = { dataset_id: ready, base_model_id: MODEL, requested_config: {}, idempotency_key: key };
    const first = await as(owner).from("training_jobs").insert(row).select("id").single();
    expect(first.error).toBeNull();
    const second = await as(owner).from("training_jobs").insert(row).select("id");
    expect([second.status, second.error?.code]).toEqual([409, "23505"]);
    const { rows } = await db.query("select id from public.training_jobs where idempotency_key = $1", [key]);
    expect(rows.map((r: { id: string }) => r.id)).toEqual([first.data!.id]);
    await as(owner).rpc("cancel_training_job", { job_id: first.data!.id });
  });

  it("23514 (a bad file_name), 22P02 (a malformed uuid) and 428C9 (a generated column) are 400", async () => {
    const check = await as(owner).from("datasets").insert({ name: "x", file_name: "../escape.jsonl" });
    expect([check.status, check.error?.code]).toEqual([400, "23514"]);
    const syntax = await as(owner).from("datasets").select("id").eq("id", "not-a-uuid");
    expect([syntax.status, syntax.error?.code]).toEqual([400, "22P02"]);
    const generated = await as(owner).from("datasets").update({ storage_path: "x" } as never).eq("id", uploading);
    expect([generated.status, generated.error?.code]).toEqual([400, "428C9"]);
  });

  it("42P01 (an unknown table) and PGRST202 (an unknown function) are 404", async () => {
    const table = await as(owner).from("no_such_table" as never).select();
    expect([table.status, table.error?.code]).toEqual([404, "42P01"]);
    const fn = await as(owner).rpc("no_such_function" as never);
    expect([fn.status, fn.error?.code]).toEqual([404, "PGRST202"]);
  });

  it("PGRST201 (an ambiguous embed) is 300 and names the foreign keys to choose from", async () => {
    const res = await as(owner).from("training_jobs").select("id, checkpoints(id)");
    expect(res.status).toBe(300);
    expect(res.error?.code).toBe("PGRST201");
    expect(res.error?.hint).toContain("checkpoints!checkpoints_job_fkey");
    const datasets = await as(owner).from("datasets").select("id, training_jobs(id)");
    expect([datasets.status, datasets.error?.code]).toEqual([300, "PGRST201"]);
    expect(datasets.error?.hint).toContain("training_jobs!training_jobs_dataset_fkey");
  });

  it("naming the foreign key with ! resolves each ambiguous embed (docs/API.md, Embedding related rows)", async () => {
    const jobs = await as(owner).from("training_jobs").select(
      "id, checkpoints!checkpoints_job_fkey(id), resumed_from:checkpoints!training_jobs_resume_checkpoint_fkey(id), " +
        "dataset:datasets!training_jobs_dataset_fkey(id), validation:datasets!training_jobs_validation_dataset_fkey(id)",
    );
    expect([jobs.status, jobs.error]).toEqual([200, null]);
    const datasets = await as(owner).from("datasets")
      .select("id, training_jobs!training_jobs_dataset_fkey(id), validated:training_jobs!training_jobs_validation_dataset_fkey(id)")
      .eq("id", ready).single();
    expect(datasets.error).toBeNull();
    expect(datasets.data).toMatchObject({ id: ready, training_jobs: expect.any(Array), validated: [] });
  });

  it("PGRST103 (a range past the end, with count=exact) is 416 and PGRST116 (single() on no rows) is 406", async () => {
    const range = await as(owner).from("datasets").select("id", { count: "exact" }).eq("id", uploading).range(10, 20);
    expect([range.status, range.error?.code]).toEqual([416, "PGRST103"]);
    const single = await as(other).from("datasets").select("id").eq("id", uploading).single();
    expect([single.status, single.error?.code]).toEqual([406, "PGRST116"]);
  });

  it("PGRST301 (a malformed or wrongly signed token) is 401", async () => {
    for (const token of ["not.a.jwt", `${owner.token.slice(0, -4)}AAAA`]) {
      const res = await supabaseClient(testStack().ANON_KEY, token).from("datasets").select("id");
      expect([res.status, res.error?.code]).toEqual([401, "PGRST301"]);
    }
  });
});
