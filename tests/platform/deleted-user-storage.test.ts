/**
 * Deleting a user from auth.users removes their objects in both buckets
 * (trigger -> storage_cleanup queue -> storage-cleanup worker through the
 * Storage API; migration 20261203130200), leaves everyone else's alone, and
 * Storage refuses the deleted user's still-valid token at once.
 */
import { randomUUID } from "node:crypto";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LocalUser } from "../../stack/jwt.ts";
import { connect, newUser } from "../helpers/db.ts";
import { testStack } from "../helpers/stack.ts";
import { supabaseClient } from "../helpers/supabase.ts";
import { waitFor } from "../helpers/wait.ts";

const LINE = '{"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello"}]}\n';

describe("deleting a user", () => {
  let db: pg.Client;
  beforeAll(async () => {
    db = await connect();
  });
  afterAll(async () => {
    await db.end();
  });

  /** A user with a dataset file (uploaded by them) and a model file (written by the server). */
  async function userWithFiles(prefix: string): Promise<{ user: LocalUser; dataset: string; model: string }> {
    const user = await newUser(db, prefix);
    const dataset = (await db.query<{ p: string }>(
      "insert into public.datasets (user_id, name, file_name) values ($1, 'to delete', 'train.jsonl') returning storage_path as p", [user.id],
    )).rows[0]!.p;
    const up = await supabaseClient(testStack().ANON_KEY, user.token).storage.from("lora-datasets").upload(dataset, LINE);
    expect(up.error).toBeNull();
    const model = `${user.id}/${randomUUID()}/notes.txt`;
    const service = supabaseClient(testStack().SERVICE_ROLE_KEY).storage.from("lora-models");
    expect((await service.upload(model, "model notes")).error).toBeNull();
    return { user, dataset, model };
  }

  const objectsUnder = async (userId: string) =>
    (await db.query<{ bucket_id: string; name: string }>(
      "select bucket_id, name from storage.objects where bucket_id in ('lora-datasets', 'lora-models') and name like $1 order by 1, 2",
      [`${userId}/%`],
    )).rows;

  it("removes their dataset files and model artifacts, and only theirs", async () => {
    const gone = await userWithFiles("deleted");
    const kept = await userWithFiles("bystander");
    expect(await objectsUnder(gone.user.id)).toHaveLength(2);

    await db.query("delete from auth.users where id = $1", [gone.user.id]);

    await waitFor(async () => (await objectsUnder(gone.user.id)).length === 0, {
      timeoutMs: 90_000, what: "storage-cleanup to remove the deleted user's objects",
    });
    expect((await objectsUnder(kept.user.id)).map((o) => o.name).sort()).toEqual([kept.dataset, kept.model].sort());
    // The worker deletes each message right after its removals return.
    await waitFor(async () =>
      (await db.query("select count(*)::int as n from pgmq.q_storage_cleanup where message ->> 'user_id' = $1", [gone.user.id])).rows[0].n === 0,
    { timeoutMs: 60_000, what: "the deleted user's storage_cleanup messages to be done" });
  });

  it("Storage refuses the deleted user's still-valid token for reading and signing at once", async () => {
    const { user, dataset, model } = await userWithFiles("refused");
    const storage = supabaseClient(testStack().ANON_KEY, user.token).storage;
    expect((await storage.from("lora-datasets").download(dataset)).error).toBeNull();

    await db.query("delete from auth.users where id = $1", [user.id]);

    const attempts = [
      await storage.from("lora-datasets").download(dataset),
      await storage.from("lora-datasets").createSignedUrl(dataset, 60),
      await storage.from("lora-models").createSignedUrls([model], 60),
      await storage.from("lora-models").download(model),
      await storage.from("lora-datasets").list(user.id),
    ];
    for (const [i, r] of attempts.entries()) {
      expect(`call ${i}: ${(r.error as { statusCode?: string } | null)?.statusCode}`).toBe(`call ${i}: 403`);
    }
  });
});
