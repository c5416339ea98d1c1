/**
 * Dataset uploads through supabase-js, as a frontend makes them: the
 * lora-datasets bucket accepts a .jsonl file however supabase-js sends it by
 * default, refuses what the policies or the bucket settings do not allow,
 * and lora-models stays read-only to its owner.
 */
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, newUser } from "../helpers/db.ts";
import { testStack } from "../helpers/stack.ts";
import { supabaseClient } from "../helpers/supabase.ts";
import type { LocalUser } from "../../stack/jwt.ts";

const LINE = '{"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello"}]}\n';

describe("dataset uploads with supabase-js", () => {
  let db: pg.Client;
  let owner: LocalUser;
  let other: LocalUser;
  beforeAll(async () => {
    db = await connect();
    owner = await newUser(db, "uploader");
    other = await newUser(db, "intruder");
  });
  afterAll(async () => {
    await db.end();
  });

  /** A committed dataset awaiting upload (the Storage API sees only committed rows). */
  const newDataset = async (user = owner): Promise<string> =>
    (await db.query("insert into public.datasets (user_id, name, file_name) values ($1, 'upload test', 'train.jsonl') returning storage_path", [
      user.id,
    ])).rows[0]!.storage_path as string;

  const storedMime = async (path: string): Promise<string | undefined> =>
    (await db.query("select metadata ->> 'mimetype' as m from storage.objects where bucket_id = 'lora-datasets' and name = $1", [path]))
      .rows[0]?.m as string | undefined;

  const bucket = (user: LocalUser) => supabaseClient(testStack().ANON_KEY, user.token).storage.from("lora-datasets");

  it("accepts a browser File for .jsonl (sent as application/octet-stream)", async () => {
    const path = await newDataset();
    const { error } = await bucket(owner).upload(path, new File([LINE], "train.jsonl"));
    expect(error).toBeNull();
    expect(await storedMime(path)).toBe("application/octet-stream");
  });

  it("accepts a string body with supabase-js's default content type", async () => {
    const path = await newDataset();
    const { error } = await bucket(owner).upload(path, LINE);
    expect(error).toBeNull();
    expect(await storedMime(path)).toBe("text/plain;charset=UTF-8");
  });

  it.each(["application/jsonl", "application/x-ndjson", "application/json"])("accepts an explicit %s", async (contentType) => {
    const path = await newDataset();
    const { error } = await bucket(owner).upload(path, new TextEncoder().encode(LINE), { contentType });
    expect(error).toBeNull();
    expect(await storedMime(path)).toBe(contentType);
  });

  it("refuses a content type that is not JSON Lines", async () => {
    const path = await newDataset();
    const { error } = await bucket(owner).upload(path, "<html></html>", { contentType: "text/html" });
    expect(error).toMatchObject({ statusCode: "415" });
    expect(await storedMime(path)).toBeUndefined();
  });

  it("refuses another user's upload into the owner's dataset folder", async () => {
    const path = await newDataset();
    const { error } = await bucket(other).upload(path, LINE);
    expect(error).toMatchObject({ statusCode: "403" });
    expect(await storedMime(path)).toBeUndefined();
  });

  it("refuses a file name other than the one the dataset declared", async () => {
    const path = await newDataset();
    const wrong = path.replace(/train\.jsonl$/, "other.jsonl");
    const { error } = await bucket(owner).upload(wrong, LINE);
    expect(error).toMatchObject({ statusCode: "403" });
    expect(await storedMime(wrong)).toBeUndefined();
  });

  it("lets the owner read the uploaded file back, and nobody else", async () => {
    const path = await newDataset();
    expect((await bucket(owner).upload(path, LINE)).error).toBeNull();
    const mine = await bucket(owner).download(path);
    expect(await mine.data?.text()).toBe(LINE);
    const theirs = await bucket(other).download(path);
    expect(theirs.data).toBeNull();
    expect(theirs.error).not.toBeNull();
  });

  it("refuses client uploads to lora-models, even under the owner's own folder", async () => {
    const path = `${owner.id}/00000000-0000-4000-8000-000000000000/adapter_model.safetensors`;
    const { error } = await supabaseClient(testStack().ANON_KEY, owner.token).storage.from("lora-models").upload(path, "weights");
    expect(error).toMatchObject({ statusCode: "403" });
  });
});
