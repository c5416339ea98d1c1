/**
 * Over HTTP, through the real PostgREST at /rest/v1 with supabase-js: the
 * internal schemas (net, pgmq, cron, vault, private, ops) are not reachable
 * by anon, a signed-in user, or even the service role (the Data API exposes
 * only public and graphql_public), and no public RPC hands out pg_net.
 */
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LocalUser } from "../../stack/jwt.ts";
import { connect, newUser } from "../helpers/db.ts";
import { testStack } from "../helpers/stack.ts";
import { supabaseClient } from "../helpers/supabase.ts";

const PROBES: Array<[schema: string, table: string, rpc: string]> = [
  ["net", "http_request_queue", "http_get"],
  ["net", "_http_response", "http_post"],
  ["pgmq", "q_storage_cleanup", "send"],
  ["cron", "job", "schedule"],
  ["vault", "decrypted_secrets", "create_secret"],
  ["private", "job_settings", "invoke_worker"],
  ["ops", "runbook_log", "prune_http_responses"],
];

describe("internal schemas over the Data API", () => {
  let db: pg.Client;
  let user: LocalUser;
  beforeAll(async () => {
    db = await connect();
    user = await newUser(db, "rest-internals");
  });
  afterAll(async () => {
    await db.end();
  });

  const clients = () => ({
    anon: supabaseClient(testStack().ANON_KEY),
    user: supabaseClient(testStack().ANON_KEY, user.token),
    service_role: supabaseClient(testStack().SERVICE_ROLE_KEY),
  });

  it("reading a table or calling a function in any internal schema is refused with PGRST106", async () => {
    for (const [who, client] of Object.entries(clients())) {
      for (const [schema, table, rpc] of PROBES) {
        const read = await client.schema(schema as "public").from(table as "datasets").select("*").limit(1);
        expect(`${who} ${schema}.${table}: ${read.error?.code}`).toBe(`${who} ${schema}.${table}: PGRST106`);
        expect(read.data).toBeNull();
        const call = await client.schema(schema as "public").rpc(rpc as never, {} as never);
        expect(`${who} ${schema}.${rpc}(): ${call.error?.code}`).toBe(`${who} ${schema}.${rpc}(): PGRST106`);
      }
    }
  });

  it("pg_net's functions are not callable as public RPCs", async () => {
    for (const [who, client] of Object.entries(clients())) {
      const { error } = await client.rpc("http_get" as never, { url: "http://127.0.0.1:9/" } as never);
      expect(`${who}: ${error?.code}`).toBe(`${who}: PGRST202`);
    }
  });
});
