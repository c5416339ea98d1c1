/**
 * The Storage stand-in through the real supabase-js client: uploads,
 * downloads, signed URLs and listing, with Supabase-style "own folder"
 * policies on storage.objects deciding who may do what.
 */
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { existsSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import type { SupabaseClient } from "@supabase/supabase-js";
import { SignJWT } from "jose";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LocalUser } from "../../stack/jwt.ts";
import { parseSize } from "../../stack/storage/config.ts";
import { asRole, connect, newUser, sqlState } from "../helpers/db.ts";
import { testStack } from "../helpers/stack.ts";
import { supabaseClient } from "../helpers/supabase.ts";

const sfx = randomUUID().slice(0, 8);
const BUCKET = `lt-test-${sfx}`;
const LIMITED = `lt-test-${sfx}-limited`;
const PUBLIC = `lt-test-${sfx}-public`;
const SCHEMA = `storage_test_${sfx}`;

const client = (key: string, token?: string): SupabaseClient => supabaseClient(key, token) as SupabaseClient;

const storageUrl = (path: string) => `${testStack().API_URL}/storage/v1${path}`;
const bytesOf = async (blob: Blob | null) => Buffer.from(await blob!.arrayBuffer());
const secret = () => new TextEncoder().encode(testStack().JWT_SECRET);

describe("storage stand-in", () => {
  let db: pg.Client;
  let owner: LocalUser;
  let other: LocalUser;
  let asOwner: SupabaseClient;
  let asOther: SupabaseClient;
  let asAnon: SupabaseClient;
  let asService: SupabaseClient;
  let storageDir: string | undefined;

  const row = async (bucket: string, name: string) =>
    (await db.query("select * from storage.objects where bucket_id = $1 and name = $2", [bucket, name])).rows[0];

  beforeAll(async () => {
    db = await connect();
    [owner, other] = [await newUser(db, "owner"), await newUser(db, "other")];
    const { ANON_KEY, SERVICE_ROLE_KEY } = testStack();
    [asOwner, asOther, asAnon, asService] = [
      client(ANON_KEY, owner.token), client(ANON_KEY, other.token), client(ANON_KEY), client(SERVICE_ROLE_KEY),
    ];
    await db.query("insert into storage.buckets (id, name) values ($1, $1)", [BUCKET]);
    await db.query("insert into storage.buckets (id, name, public) values ($1, $1, true)", [PUBLIC]);
    await db.query(
      "insert into storage.buckets (id, name, file_size_limit, allowed_mime_types) values ($1, $1, 16, $2)",
      [LIMITED, ["text/plain", "application/*"]],
    );
    const own = `bucket_id in ('${BUCKET}', '${LIMITED}') and (storage.foldername(name))[1] = (select auth.uid())::text`;
    await db.query(`
      create policy "${sfx}: users read their own folder" on storage.objects for select to authenticated using (${own});
      create policy "${sfx}: users upload to their own folder" on storage.objects for insert to authenticated with check (${own});
      create policy "${sfx}: users overwrite in their own folder" on storage.objects for update to authenticated
        using (${own}) with check (${own});
      create policy "${sfx}: users delete from their own folder" on storage.objects for delete to authenticated using (${own});
      create schema ${SCHEMA};
      grant usage on schema ${SCHEMA} to anon, authenticated, service_role;
      create function ${SCHEMA}.reject_at_commit() returns trigger language plpgsql set search_path = '' as $$
      begin
        if new.bucket_id = '${BUCKET}' and new.name like '%/reject-at-commit%' and new.metadata is not null then
          raise exception 'Upload of "%" rejected by a test trigger', new.name using errcode = 'LT999';
        end if;
        return new;
      end $$;
      create trigger _500_reject_at_commit_${sfx} before insert or update on storage.objects
        for each row execute function ${SCHEMA}.reject_at_commit();`);
    // The stand-in keeps bytes next to the cluster (<stack>/storage); elsewhere, skip the on-disk checks.
    const dataDir = await db.query("select current_setting('data_directory') as d").then((r) => r.rows[0].d as string, () => "");
    const dir = join(dirname(dataDir), "storage");
    storageDir = dataDir && existsSync(join(dir, "objects")) ? dir : undefined;
  });

  afterAll(async () => {
    await db.query(`
      drop trigger if exists _500_reject_at_commit_${sfx} on storage.objects;
      drop schema if exists ${SCHEMA} cascade;
      drop policy if exists "${sfx}: users read their own folder" on storage.objects;
      drop policy if exists "${sfx}: users upload to their own folder" on storage.objects;
      drop policy if exists "${sfx}: users overwrite in their own folder" on storage.objects;
      drop policy if exists "${sfx}: users delete from their own folder" on storage.objects;
      begin;
      select set_config('storage.allow_delete_query', 'true', true);
      delete from storage.objects where bucket_id in ('${BUCKET}', '${LIMITED}', '${PUBLIC}');
      delete from storage.buckets where id in ('${BUCKET}', '${LIMITED}', '${PUBLIC}');
      commit;`);
    await db.end();
  });

  it("the owner's upload downloads as the same bytes and records owner_id and Storage metadata", async () => {
    const name = `${owner.id}/data/train.jsonl`;
    const body = Buffer.from('{"prompt":"a","completion":"b"}\n'.repeat(3));
    const up = await asOwner.storage.from(BUCKET).upload(name, body, { contentType: "application/x-ndjson" });
    expect(up.error).toBeNull();
    expect(up.data).toMatchObject({ path: name, fullPath: `${BUCKET}/${name}` });
    const dl = await asOwner.storage.from(BUCKET).download(name);
    expect(await bytesOf(dl.data)).toEqual(body);
    const r = await row(BUCKET, name);
    expect(r).toMatchObject({ id: up.data!.id, owner_id: owner.id, owner: owner.id });
    expect(r.metadata).toMatchObject({
      eTag: `"${createHash("md5").update(body).digest("hex")}"`, size: body.length, contentLength: body.length,
      mimetype: "application/x-ndjson", cacheControl: "max-age=3600", httpStatusCode: 200,
    });
    expect(Date.parse(r.metadata.lastModified)).not.toBeNaN();
  });

  it("a Blob upload (multipart) keeps binary bytes intact, even ones that look like a boundary", async () => {
    const name = `${owner.id}/data/blob.bin`;
    const body = Buffer.concat([randomBytes(200_000), Buffer.from("\r\n--\r\n------WebKitFormBoundary\r\n"), randomBytes(99_999)]);
    const up = await asOwner.storage.from(BUCKET).upload(name, new Blob([body], { type: "application/octet-stream" }));
    expect(up.error).toBeNull();
    const back = await bytesOf((await asOwner.storage.from(BUCKET).download(name)).data);
    expect(back.length).toBe(body.length);
    expect(Buffer.compare(back, body)).toBe(0);
    expect((await row(BUCKET, name)).metadata).toMatchObject({ size: body.length, mimetype: "application/octet-stream" });
  });

  it("uploading over an existing object needs upsert, which replaces the bytes and deletes the old ones", async () => {
    const name = `${owner.id}/data/replace.txt`;
    const files = asOwner.storage.from(BUCKET);
    expect((await files.upload(name, "first")).error).toBeNull();
    const before = await row(BUCKET, name);
    const dup = await files.upload(name, "second");
    expect(dup.error).toMatchObject({ status: 400, statusCode: "409", message: "The resource already exists" });
    expect((await files.upload(name, "second", { upsert: true })).error).toBeNull();
    expect((await bytesOf((await files.download(name)).data)).toString()).toBe("second");
    expect((await files.update(name, "third")).error).toBeNull();
    expect((await bytesOf((await files.download(name)).data)).toString()).toBe("third");
    const after = await row(BUCKET, name);
    expect(after.id).toBe(before.id);
    // Point the row back at the first version: its bytes must be gone.
    await db.query("update storage.objects set version = $1 where id = $2", [before.version, before.id]);
    expect((await files.download(name)).error).toMatchObject({ statusCode: "404", message: "The resource was not found" });
    await db.query("update storage.objects set version = $1 where id = $2", [after.version, after.id]);
  });

  it("uploading into another user's folder is refused by RLS as real Storage reports it", async () => {
    const name = `${owner.id}/intruder.txt`;
    const up = await asOther.storage.from(BUCKET).upload(name, "nope");
    expect(up.error).toMatchObject({ status: 400, statusCode: "403", message: "new row violates row-level security policy" });
    expect(await row(BUCKET, name)).toBeUndefined();
  });

  it("another user cannot download, inspect, sign, overwrite or remove the owner's object", async () => {
    const name = `${owner.id}/private.txt`;
    expect((await asOwner.storage.from(BUCKET).upload(name, "secret")).error).toBeNull();
    const files = asOther.storage.from(BUCKET);
    const notFound = { status: 400, statusCode: "404", message: "Object not found" };
    expect((await files.download(name)).error).toMatchObject(notFound);
    expect((await files.info(name)).error).toMatchObject(notFound);
    expect((await files.createSignedUrl(name, 60)).error).toMatchObject(notFound);
    expect((await files.exists(name)).data).toBe(false);
    expect((await files.upload(name, "overwrite", { upsert: true })).error).toMatchObject({ statusCode: "403" });
    expect(await files.remove([name])).toMatchObject({ data: [], error: null });
    expect((await bytesOf((await asOwner.storage.from(BUCKET).download(name)).data)).toString()).toBe("secret");
    expect((await asOwner.storage.from(BUCKET).exists(name)).data).toBe(true);
  });

  it("anon cannot read a private object; with no token at all the bucket is not found; the service role can", async () => {
    const name = `${owner.id}/anon-check.txt`;
    expect((await asOwner.storage.from(BUCKET).upload(name, "payload")).error).toBeNull();
    expect((await asAnon.storage.from(BUCKET).download(name)).error).toMatchObject({ statusCode: "404", message: "Object not found" });
    expect((await asAnon.storage.from(BUCKET).list(owner.id)).data).toEqual([]);
    const bare = await fetch(storageUrl(`/object/${BUCKET}/${name}`));
    expect(bare.status).toBe(400);
    expect(await bare.json()).toMatchObject({ statusCode: "404", error: "Bucket not found" });
    expect((await bytesOf((await asService.storage.from(BUCKET).download(name)).data)).toString()).toBe("payload");
    expect((await asService.storage.from(BUCKET).info(name)).data).toMatchObject({ size: 7, name });
  });

  it("a public bucket's objects are readable by anyone, without policies; a private bucket's public URL is not", async () => {
    const name = "shared/readme.txt";
    expect((await asService.storage.from(PUBLIC).upload(name, "public bytes")).error).toBeNull();
    const res = await fetch(asAnon.storage.from(PUBLIC).getPublicUrl(name).data.publicUrl);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("public bytes");
    expect((await bytesOf((await asAnon.storage.from(PUBLIC).download(name)).data)).toString()).toBe("public bytes");
    expect((await asOther.storage.from(PUBLIC).upload("shared/x.txt", "no insert policy")).error).toMatchObject({ statusCode: "403" });
    const hidden = await fetch(asAnon.storage.from(BUCKET).getPublicUrl(`${owner.id}/data/train.jsonl`).data.publicUrl);
    expect(await hidden.json()).toMatchObject({ statusCode: "404", error: "Bucket not found" });
  });

  it("a signed URL downloads without credentials, honours Range, and stops working when it expires", async () => {
    const name = `${owner.id}/signed/weights.bin`;
    const body = randomBytes(1000);
    expect((await asOwner.storage.from(BUCKET).upload(name, body, { contentType: "application/octet-stream" })).error).toBeNull();
    const signed = await asOwner.storage.from(BUCKET).createSignedUrl(name, 60);
    expect(signed.error).toBeNull();
    const full = await fetch(signed.data!.signedUrl);
    expect(full.status).toBe(200);
    expect(full.headers.get("expires")).toBeTruthy();
    expect(Buffer.from(await full.arrayBuffer())).toEqual(body);

    const part = await fetch(signed.data!.signedUrl, { headers: { Range: "bytes=2-5" } });
    expect(part.status).toBe(206);
    expect(part.headers.get("content-range")).toBe("bytes 2-5/1000");
    expect(Buffer.from(await part.arrayBuffer())).toEqual(body.subarray(2, 6));
    const tail = await fetch(storageUrl(`/object/authenticated/${BUCKET}/${name}`), {
      headers: { Authorization: `Bearer ${owner.token}`, Range: "bytes=-3" },
    });
    expect(tail.status).toBe(206);
    expect(Buffer.from(await tail.arrayBuffer())).toEqual(body.subarray(997));
    const beyond = await fetch(signed.data!.signedUrl, { headers: { Range: "bytes=1000-" } });
    expect(await beyond.json()).toMatchObject({ statusCode: "400", error: "invalid_range" });

    const shortLived = await asOwner.storage.from(BUCKET).createSignedUrl(name, 1);
    const deadline = Date.now() + 10_000;
    let res = await fetch(shortLived.data!.signedUrl);
    while (res.status === 200 && Date.now() < deadline) {
      await res.arrayBuffer();
      await new Promise((r) => setTimeout(r, 200));
      res = await fetch(shortLived.data!.signedUrl);
    }
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ statusCode: "400", code: "InvalidJWT", error: "InvalidJWT", message: "jwt expired" });
  });

  it("a tampered, foreign or already-expired signed-URL token is rejected", async () => {
    const name = `${owner.id}/signed/tamper.txt`;
    expect((await asOwner.storage.from(BUCKET).upload(name, "x")).error).toBeNull();
    const { signedUrl } = (await asOwner.storage.from(BUCKET).createSignedUrl(name, 60)).data!;
    const token = new URL(signedUrl).searchParams.get("token")!;
    const [h, , sig] = token.split(".");
    const forged = Buffer.from(JSON.stringify({ url: `${BUCKET}/${owner.id}/other.txt`, exp: 9999999999 })).toString("base64url");
    const attempt = async (path: string, t: string) => (await fetch(storageUrl(`${path}?token=${t}`))).json();
    expect(await attempt(`/object/sign/${BUCKET}/${owner.id}/other.txt`, `${h}.${forged}.${sig}`))
      .toMatchObject({ statusCode: "400", error: "InvalidJWT", message: "invalid signature" });
    expect(await attempt(`/object/sign/${BUCKET}/${owner.id}/signed/other.txt`, token))
      .toMatchObject({ statusCode: "400", error: "InvalidSignature" });
    const expired = await new SignJWT({ url: `${BUCKET}/${name}` }).setProtectedHeader({ alg: "HS256" })
      .setIssuedAt(1_700_000_000).setExpirationTime(1_700_000_060).sign(secret());
    expect(await attempt(`/object/sign/${BUCKET}/${name}`, expired)).toMatchObject({ statusCode: "400", message: "jwt expired" });
    const wrongKey = await new SignJWT({ url: `${BUCKET}/${name}` }).setProtectedHeader({ alg: "HS256" })
      .setExpirationTime("1h").sign(new TextEncoder().encode("x".repeat(40)));
    expect(await attempt(`/object/sign/${BUCKET}/${name}`, wrongKey)).toMatchObject({ message: "invalid signature" });
  });

  it("a signed upload URL lets anyone upload exactly that path, owned by the signer", async () => {
    const name = `${owner.id}/models/adapter.safetensors`;
    const signed = await asOwner.storage.from(BUCKET).createSignedUploadUrl(name);
    expect(signed.error).toBeNull();
    const body = randomBytes(4096);
    const up = await asAnon.storage.from(BUCKET).uploadToSignedUrl(name, signed.data!.token, body);
    expect(up.error).toBeNull();
    expect(up.data).toMatchObject({ path: name, fullPath: `${BUCKET}/${name}` });
    expect(await row(BUCKET, name)).toMatchObject({ owner_id: owner.id });
    expect(await bytesOf((await asOwner.storage.from(BUCKET).download(name)).data)).toEqual(body);
    const again = await asAnon.storage.from(BUCKET).uploadToSignedUrl(name, signed.data!.token, body);
    expect(again.error).toMatchObject({ statusCode: "409" });
    const elsewhere = await asAnon.storage.from(BUCKET).uploadToSignedUrl(`${owner.id}/models/x.bin`, signed.data!.token, body);
    expect(elsewhere.error).toMatchObject({ statusCode: "400", message: "Invalid signature" });
    expect((await asOther.storage.from(BUCKET).createSignedUploadUrl(`${owner.id}/models/y.bin`)).error)
      .toMatchObject({ statusCode: "403", message: "new row violates row-level security policy" });
  });

  it("the bucket's file_size_limit and allowed_mime_types are enforced", async () => {
    const files = asOwner.storage.from(LIMITED);
    expect((await files.upload(`${owner.id}/ok.txt`, "x".repeat(16), { contentType: "text/plain" })).error).toBeNull();
    expect((await files.upload(`${owner.id}/wild.json`, "{}", { contentType: "application/json" })).error).toBeNull();
    const big = await files.upload(`${owner.id}/big.txt`, "x".repeat(17), { contentType: "text/plain" });
    expect(big.error).toMatchObject({ status: 400, statusCode: "413", message: "The object exceeded the maximum allowed size" });
    const bigBlob = await files.upload(`${owner.id}/big-blob.txt`, new Blob(["y".repeat(64)], { type: "text/plain" }));
    expect(bigBlob.error).toMatchObject({ statusCode: "413" });
    const png = await files.upload(`${owner.id}/pic.png`, "png", { contentType: "image/png" });
    expect(png.error).toMatchObject({ status: 400, statusCode: "415", message: "mime type image/png is not supported" });
    const raw = await fetch(storageUrl(`/object/${LIMITED}/${owner.id}/raw.png`), {
      method: "POST", headers: { Authorization: `Bearer ${owner.token}`, "content-type": "image/png" }, body: "png",
    });
    expect(await raw.json()).toMatchObject({ statusCode: "415", error: "invalid_mime_type" });
    for (const n of ["big.txt", "big-blob.txt", "pic.png", "raw.png"]) expect(await row(LIMITED, `${owner.id}/${n}`)).toBeUndefined();
  });

  it("remove deletes the row and the bytes, and returns what it deleted", async () => {
    const name = `${owner.id}/trash/old.txt`;
    expect((await asOwner.storage.from(BUCKET).upload(name, "bye")).error).toBeNull();
    const before = await row(BUCKET, name);
    const removed = await asOwner.storage.from(BUCKET).remove([name, `${owner.id}/trash/missing.txt`]);
    expect(removed.error).toBeNull();
    expect(removed.data!.map((o) => o.name)).toEqual([name]);
    expect(await row(BUCKET, name)).toBeUndefined();
    await db.query(
      "insert into storage.objects (id, bucket_id, name, owner_id, version, metadata) values ($1, $2, $3, $4, $5, $6)",
      [before.id, BUCKET, name, owner.id, before.version, before.metadata],
    );
    expect((await asOwner.storage.from(BUCKET).download(name)).error).toMatchObject({ message: "The resource was not found" });
  });

  it("list returns one folder level of what the caller may see", async () => {
    const files = asOwner.storage.from(BUCKET);
    for (const n of ["b.txt", "a.txt", "sub/c.txt"]) expect((await files.upload(`${owner.id}/list/${n}`, n)).error).toBeNull();
    const listed = await files.list(`${owner.id}/list`);
    expect(listed.error).toBeNull();
    expect(listed.data!.map((o) => [o.name, o.id === null])).toEqual([["sub", true], ["a.txt", false], ["b.txt", false]]);
    expect(listed.data!.find((o) => o.name === "a.txt")!.metadata).toMatchObject({ size: 5 });
    expect((await asOther.storage.from(BUCKET).list(`${owner.id}/list`)).data).toEqual([]);
  });

  it("info reports size, content type, etag and the user metadata given at upload", async () => {
    const name = `${owner.id}/info.txt`;
    const up = await asOwner.storage.from(BUCKET).upload(name, "hello", { contentType: "text/plain", metadata: { run: 7 } });
    expect(up.error).toBeNull();
    const info = await asOwner.storage.from(BUCKET).info(name);
    expect(info.error).toBeNull();
    expect(info.data).toMatchObject({ id: up.data!.id, name, size: 5, contentType: "text/plain", metadata: { run: 7 } });
    expect(info.data!.etag).toBe(`"${createHash("md5").update("hello").digest("hex")}"`);
  });

  it("a trigger error on the committed write fails the upload with the database's code and leaves nothing behind", async () => {
    const name = `${owner.id}/reject-at-commit.txt`;
    const up = await asOwner.storage.from(BUCKET).upload(name, "doomed");
    expect(up.error).toMatchObject({ status: 500, statusCode: "500" });
    expect(up.error!.message).toContain("database error, code: LT999");
    // Real Storage stops at the code; the stand-in appends the database's message.
    if (testStack().COMPONENTS.storage === "stand-in") expect(up.error!.message).toContain("rejected by a test trigger");
    expect(await row(BUCKET, name)).toBeUndefined();
    if (storageDir) {
      const dir = join(storageDir, "objects", BUCKET, owner.id, "reject-at-commit.txt");
      expect(existsSync(dir) ? readdirSync(dir) : []).toEqual([]);
    }
  });

  it("config.toml sizes for the global upload limit parse as the Supabase CLI parses them", () => {
    expect([parseSize("50MiB"), parseSize("50MB"), parseSize("500KB"), parseSize("1 GB"), parseSize("1024")])
      .toEqual([52428800, 52428800, 512000, 1073741824, 1024]);
    expect(() => parseSize("fifty megabytes")).toThrow(/Invalid size/);
  });

  it("the schema matches Supabase's: helpers, RLS on buckets, and no direct SQL deletes", async () => {
    const r = await db.query(
      "select storage.foldername('a/b/c.txt') as f, storage.filename('a/b/c.txt') as n, storage.extension('a/b/c.txt') as e",
    );
    expect(r.rows[0]).toEqual({ f: ["a", "b"], n: "c.txt", e: "txt" });
    const seen = await asRole(db, { role: "authenticated", user: owner }, async (c) =>
      (await c.query("select count(*)::int as n from storage.buckets where id = $1", [BUCKET])).rows[0].n);
    expect(seen).toBe(0);
    expect(await sqlState(db.query("delete from storage.objects where bucket_id = $1", [BUCKET]))).toBe("42501");
  });
});
