/**
 * Bad input to Storage and to list-artifacts answers 4xx with a stable code,
 * never 5xx, and writes nothing: fuzz-style over object paths (NUL, control
 * characters, overlong names, invalid UTF-8 percent-encoding) and over JWT
 * claims (non-UUID sub, missing role, wrong types). Raw HTTP where
 * supabase-js would not send such a request; supabase-js where it would.
 */
import fc from "fast-check";
import { SignJWT } from "jose";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LocalUser } from "../../stack/jwt.ts";
import { connect, newUser } from "../helpers/db.ts";
import { testStack } from "../helpers/stack.ts";
import { supabaseClient } from "../helpers/supabase.ts";

const BUCKETS = ["lora-datasets", "lora-models"] as const;

/** Path pieces that no object name may contain, as they appear in a URL. */
const BAD_ENCODED = [
  "%00", "%01", "%1F", "%7F", "%0A", "%0D", // NUL and control characters
  "%C0%AF", "%E0%80%80", "%ED%A0%80", "%FF", "%C3", "%80", "%F8%88%80%80%80", // invalid UTF-8
  "%%", "%G1", "%2-", "%-", // broken percent-encoding
];

type Call = { method: string; path: (bucket: string, name: string) => string; body?: string; contentType?: string };
const CALLS: Call[] = [
  { method: "GET", path: (b, n) => `/object/${b}/${n}` },
  { method: "GET", path: (b, n) => `/object/authenticated/${b}/${n}` },
  { method: "GET", path: (b, n) => `/object/info/${b}/${n}` },
  { method: "HEAD", path: (b, n) => `/object/${b}/${n}` },
  { method: "POST", path: (b, n) => `/object/sign/${b}/${n}`, body: '{"expiresIn":60}', contentType: "application/json" },
  { method: "DELETE", path: (b, n) => `/object/${b}/${n}` },
  { method: "POST", path: (b, n) => `/object/${b}/${n}`, body: "{}\n", contentType: "text/plain" },
  { method: "POST", path: (b, n) => `/object/upload/sign/${b}/${n}` },
];

describe("Storage answers 400 for object names it cannot store, and writes nothing", () => {
  let db: pg.Client;
  let user: LocalUser;
  beforeAll(async () => {
    db = await connect();
    user = await newUser(db, "fuzz");
  });
  afterAll(async () => {
    await db.end();
  });

  const objectCount = async () =>
    Number((await db.query("select count(*) from storage.objects where name like $1", [`${user.id}/%`])).rows[0].count);

  async function send(call: Call, bucket: string, encodedName: string): Promise<{ status: number; body: Record<string, unknown> | null }> {
    const res = await fetch(`${testStack().STORAGE_URL}${call.path(bucket, encodedName)}`, {
      method: call.method,
      headers: {
        authorization: `Bearer ${user.token}`, apikey: testStack().ANON_KEY,
        ...(call.contentType ? { "content-type": call.contentType } : {}),
      },
      body: call.body,
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : null };
  }

  it("every route and both buckets: NUL, control characters and invalid percent-encoding in the path are 400 InvalidKey", async () => {
    const before = await objectCount();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...CALLS), fc.constantFrom(...BUCKETS), fc.constantFrom(...BAD_ENCODED),
        fc.stringMatching(/^[a-z0-9]{0,12}$/), fc.stringMatching(/^[a-z0-9.]{0,12}$/),
        async (call, bucket, bad, head, tail) => {
          const { status, body } = await send(call, bucket, `${user.id}/${head}${bad}${tail}`);
          expect(status).toBe(400);
          if (call.method !== "HEAD") expect(body).toMatchObject({ statusCode: "400", code: "InvalidKey", error: "InvalidKey" });
        },
      ),
      { numRuns: 120 },
    );
    expect(await objectCount()).toBe(before);
  });

  it("a name over 1024 bytes is 400 InvalidKey on every route", async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...CALLS), fc.constantFrom(...BUCKETS), fc.integer({ min: 1025, max: 4000 }), async (call, bucket, n) => {
        const name = `${user.id}/${"a".repeat(n - 37)}`;
        const { status, body } = await send(call, bucket, name);
        expect(status).toBe(400);
        if (call.method !== "HEAD") expect(body).toMatchObject({ code: "InvalidKey" });
      }),
      { numRuns: 24 },
    );
  });

  it("a bucket name with NUL or control characters is 400 InvalidBucketName", async () => {
    for (const bad of ["%00", "%1B", "lora-datasets%00"]) {
      const { status, body } = await send(CALLS[0]!, bad, `${user.id}/x.jsonl`);
      expect(`${bad}: ${status}`).toBe(`${bad}: 400`);
      expect(body).toMatchObject({ code: "InvalidBucketName", message: "Bucket name invalid" });
    }
  });

  it("supabase-js download, createSignedUrl(s), remove and list with NUL or control characters get InvalidKey", async () => {
    const storage = supabaseClient(testStack().ANON_KEY, user.token).storage;
    for (const bucket of BUCKETS) {
      for (const bad of ["\u0000", "\u0007", "\u001b", "\u007f"]) {
        const name = `${user.id}/a${bad}b.jsonl`;
        const results = [
          await storage.from(bucket).download(name),
          await storage.from(bucket).createSignedUrl(name, 60),
          await storage.from(bucket).createSignedUrls([name], 60),
          await storage.from(bucket).remove([name]),
          await storage.from(bucket).list(`${user.id}/a${bad}`),
          await storage.from(bucket).list(user.id, { search: `a${bad}` }),
        ];
        for (const [i, r] of results.entries()) {
          expect(`${bucket} call ${i}: ${JSON.stringify(r.error && { status: (r.error as { statusCode?: string }).statusCode ?? (r.error as { status?: number }).status })}`)
            .toBe(`${bucket} call ${i}: ${JSON.stringify({ status: "400" })}`);
        }
      }
    }
  });
});

describe("signed tokens with claims of the wrong shape are refused with 4xx", () => {
  let db: pg.Client;
  let user: LocalUser;
  beforeAll(async () => {
    db = await connect();
    user = await newUser(db, "claims");
  });
  afterAll(async () => {
    await db.end();
  });

  const sign = (claims: Record<string, unknown>) =>
    new SignJWT(claims).setProtectedHeader({ alg: "HS256", typ: "JWT" }).setIssuedAt().setExpirationTime("5m")
      .sign(new TextEncoder().encode(testStack().JWT_SECRET));

  const claimSets = () => fc.oneof(
    // A sub that is not a user id, or not a string at all.
    fc.record({ role: fc.constant("authenticated"), sub: fc.oneof(fc.string(), fc.integer(), fc.constant(null), fc.array(fc.string()), fc.object()) }),
    // A role that is missing, of the wrong type, or not an API role.
    fc.record({ sub: fc.constant(user.id), role: fc.oneof(fc.integer(), fc.boolean(), fc.object(), fc.constantFrom("postgres", "supabase_admin", "no_such_role", "")) }, { requiredKeys: ["sub"] }),
    fc.record({ role: fc.constant("authenticated"), sub: fc.constant(user.id), aud: fc.oneof(fc.integer(), fc.object()) }),
  );

  it("Storage: download and sign answer 400/403 with a Storage error code, never 5xx", async () => {
    await fc.assert(
      fc.asyncProperty(claimSets(), fc.constantFrom(...BUCKETS), fc.boolean(), async (claims, bucket, signIt) => {
        const token = await sign(claims);
        const res = await fetch(
          `${testStack().STORAGE_URL}/object/${signIt ? "sign/" : ""}${bucket}/${user.id}/x/y.jsonl`,
          { method: signIt ? "POST" : "GET", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: signIt ? '{"expiresIn":60}' : undefined },
        );
        const body = await res.json() as { statusCode: string; code: string };
        expect([400, 403, 404]).toContain(res.status);
        // Reads tolerate a bad token as anon (public buckets), so anon answers appear too.
        expect(["InvalidJWT", "AccessDenied", "NoSuchKey", "NoSuchBucket"]).toContain(body.code);
      }),
      { numRuns: 60 },
    );
  });

  it("list-artifacts: answers 401 LT080 or 403 forbidden, never 5xx", async () => {
    await fc.assert(
      fc.asyncProperty(claimSets(), async (claims) => {
        const token = await sign(claims);
        const res = await fetch(`${testStack().FUNCTIONS_URL}/list-artifacts`, {
          method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body: JSON.stringify({ job_id: "00000000-0000-4000-8000-000000000000" }),
        });
        const body = await res.json() as { error: { code: string } };
        const expected = claims.role === "authenticated" && typeof claims.sub !== "string" || claims.role === "authenticated" && claims.sub !== user.id
          ? { status: 401, code: "LT080" } : null;
        if (claims.role !== "authenticated") expect({ status: res.status, code: body.error.code }).toEqual({ status: 403, code: "forbidden" });
        else if (expected) expect({ status: res.status, code: body.error.code }).toEqual(expected);
        else expect(res.status).toBeLessThan(500);
      }),
      { numRuns: 40 },
    );
  });

  it("list-artifacts: a correctly signed token whose sub is not a UUID is 401 LT080", async () => {
    const token = await sign({ role: "authenticated", sub: "not-a-uuid", aud: "authenticated" });
    const res = await fetch(`${testStack().FUNCTIONS_URL}/list-artifacts`, {
      method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ job_id: "00000000-0000-4000-8000-000000000000" }),
    });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: { code: "LT080" } });
  });
});
