/**
 * The internal schemas (net, pgmq, cron, vault, private, ops) are closed to
 * the client roles: every object is enumerated from the catalog, so an object
 * added later is covered without touching this file. Also: worker wake-ups
 * carry the wake-up secret, never the service-role key, and pg_net responses
 * are pruned (migrations 20261203130000 and 20261203130100).
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../stack/config.ts";
import { asRole, connect, newUser, sqlState } from "../helpers/db.ts";
import { testStack } from "../helpers/stack.ts";

const SCHEMAS = ["net", "pgmq", "cron", "vault", "private", "ops"];
const CLIENTS = ["anon", "authenticated"] as const;

type Grant = { kind: string; name: string; role: string };

describe("internal schemas are closed to anon and authenticated", () => {
  let db: pg.Client;
  let user: Awaited<ReturnType<typeof newUser>>;
  beforeAll(async () => {
    db = await connect();
    user = await newUser(db, "internals");
  });
  afterAll(async () => {
    await db.end();
  });

  const who = (role: (typeof CLIENTS)[number]) => (role === "anon" ? { role } : { role, user });

  it("the catalog lists objects in every internal schema (the checks below are not vacuous)", async () => {
    const { rows } = await db.query<{ nspname: string; n: number }>(
      `select n.nspname, (select count(*)::int from pg_class c where c.relnamespace = n.oid)
                        + (select count(*)::int from pg_proc p where p.pronamespace = n.oid) as n
         from pg_namespace n where n.nspname = any($1)`,
      [SCHEMAS],
    );
    expect(rows.map((r) => r.nspname).sort()).toEqual([...SCHEMAS].sort());
    for (const r of rows) expect(r.n, r.nspname).toBeGreaterThan(0);
  });

  it("no client role holds any privilege on a schema, table, view, sequence or function there", async () => {
    const { rows } = await db.query<Grant>(
      `with roles(role) as (select unnest($2::text[])),
            s as (select oid, nspname from pg_namespace where nspname = any($1))
       select 'schema' as kind, s.nspname as name, r.role from s, roles r
        where has_schema_privilege(r.role, s.oid, 'usage') or has_schema_privilege(r.role, s.oid, 'create')
       union all
       select 'relation', s.nspname || '.' || c.relname, r.role
         from s join pg_class c on c.relnamespace = s.oid and c.relkind in ('r', 'p', 'v', 'm', 'f') cross join roles r
        where has_table_privilege(r.role, c.oid, 'select, insert, update, delete, truncate, references, trigger')
       union all
       select 'sequence', s.nspname || '.' || c.relname, r.role
         from s join pg_class c on c.relnamespace = s.oid and c.relkind = 'S' cross join roles r
        where has_sequence_privilege(r.role, c.oid, 'usage, select, update')
       union all
       select 'function', p.oid::regprocedure::text, r.role
         from s join pg_proc p on p.pronamespace = s.oid cross join roles r
        where has_function_privilege(r.role, p.oid, 'execute')`,
      [SCHEMAS, [...CLIENTS]],
    );
    expect(rows).toEqual([]);
    expect((await db.query("select * from ops.client_access_to_internals")).rows).toEqual([]);
  });

  it("re-applying pg_net as every stack start does (stand-in file, or create extension if not exists) keeps net closed", async () => {
    await db.query(testStack().COMPONENTS.pg_net === "stand-in"
      ? readFileSync(resolve(PROJECT_ROOT, "sql/standins/pg_net.sql"), "utf8")
      : "create extension if not exists pg_net with schema extensions");
    const { rows } = await db.query("select * from ops.client_access_to_internals where schema_name = 'net'");
    expect(rows).toEqual([]);
  });

  it("objects created later in these schemas stay closed (default privileges)", async () => {
    await db.query("begin");
    try {
      for (const s of SCHEMAS) {
        await db.query(`create table ${s}.h_probe_table (id bigserial primary key)`);
        await db.query(`create function ${s}.h_probe_fn() returns int language sql set search_path = '' as 'select 1'`);
      }
      const { rows } = await db.query<{ name: string; role: string }>(
        `select n.nspname || '.' || x.name as name, r.role
           from pg_namespace n
           cross join (values ('h_probe_table'), ('h_probe_table_id_seq')) x(name)
           cross join unnest($2::text[]) r(role)
          where n.nspname = any($1)
            and (has_table_privilege(r.role, (quote_ident(n.nspname) || '.' || x.name)::regclass, 'select, insert, update, delete')
              or has_function_privilege(r.role, (quote_ident(n.nspname) || '.h_probe_fn()')::regprocedure, 'execute'))`,
        [SCHEMAS, [...CLIENTS]],
      );
      expect(rows).toEqual([]);
    } finally {
      await db.query("rollback");
    }
  });

  it("reading every table and view of these schemas as a client fails with 42501", async () => {
    const { rows } = await db.query<{ name: string }>(
      `select quote_ident(n.nspname) || '.' || quote_ident(c.relname) as name
         from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = any($1) and c.relkind in ('r', 'p', 'v', 'm')`,
      [SCHEMAS],
    );
    expect(rows.map((r) => r.name)).toEqual(expect.arrayContaining(["net.http_request_queue", "net._http_response", "cron.job"]));
    for (const role of CLIENTS) {
      for (const { name } of rows) {
        const state = await sqlState(asRole(db, who(role), (c) => c.query(`select 1 from ${name} limit 1`)));
        expect(`${role} ${name}: ${state}`).toBe(`${role} ${name}: 42501`);
      }
    }
  });

  it("clients cannot send HTTP through pg_net, schedule cron jobs, use queues or read Vault", async () => {
    const calls = [
      "select net.http_get('http://127.0.0.1:9/')",
      "select net.http_post('http://127.0.0.1:9/')",
      "select cron.schedule('h-probe', '* * * * *', 'select 1')",
      "select pgmq.send(queue_name => 'storage_cleanup', msg => '{}'::jsonb)",
      "select decrypted_secret from vault.decrypted_secrets",
      "select private.invoke_worker('storage-cleanup')",
    ];
    for (const role of CLIENTS) {
      for (const sql of calls) {
        expect(`${role}: ${sql}: ${await sqlState(asRole(db, who(role), (c) => c.query(sql)))}`).toBe(`${role}: ${sql}: 42501`);
      }
    }
  });
});

describe("worker wake-ups", () => {
  let db: pg.Client;
  beforeAll(async () => {
    db = await connect();
  });
  afterAll(async () => {
    await db.end();
  });

  it("carry the Vault wake-up secret and no service-role key in the pg_net request row", async () => {
    await db.query("begin");
    try {
      const id = (await db.query<{ id: string }>("select private.invoke_worker('storage-cleanup') as id")).rows[0]!.id;
      // The row is visible to the enqueuing transaction only, before commit.
      const row = (await db.query<{ headers: Record<string, string> }>("select headers from net.http_request_queue where id = $1", [id])).rows[0]!;
      const secret = (await db.query<{ s: string }>(
        "select decrypted_secret as s from vault.decrypted_secrets where name = 'worker_wakeup_secret'",
      )).rows[0]!.s;
      expect(row.headers["x-worker-wakeup-secret"]).toBe(secret);
      expect(JSON.stringify(row.headers)).not.toContain(testStack().SERVICE_ROLE_KEY);
      expect(Object.keys(row.headers).map((k) => k.toLowerCase())).not.toContain("authorization");
    } finally {
      await db.query("rollback");
    }
  });

  it("Vault holds no service-role key for the database to send", async () => {
    const { rows } = await db.query("select name from vault.decrypted_secrets where decrypted_secret = $1", [testStack().SERVICE_ROLE_KEY]);
    expect(rows).toEqual([]);
  });

  it("prune_net_responses() drops successful responses after 5 minutes and failed ones after an hour", async () => {
    await db.query("begin");
    try {
      const ids = (await db.query<{ id: string }>(
        `insert into net._http_response (id, status_code, content, created, timed_out, error_msg)
         select -g, s, 'x', now() - age, false, null
           from (values (1, 200, interval '10 minutes'), (2, 200, interval '1 minute'),
                        (3, 500, interval '10 minutes'), (4, 500, interval '2 hours')) v(g, s, age)
         returning id::text`,
      )).rows.map((r) => r.id);
      expect(ids).toHaveLength(4);
      await db.query("select private.prune_net_responses()");
      const left = (await db.query<{ id: string }>("select r.id::text as id from net._http_response r where r.id < 0 order by r.id desc")).rows;
      expect(left.map((r) => r.id)).toEqual(["-2", "-3"]);
    } finally {
      await db.query("rollback");
    }
  });

  it("pg_cron runs the pruning every minute", async () => {
    const { rows } = await db.query("select schedule, command from cron.job where jobname = 'prune-net-responses'");
    expect(rows).toEqual([{ schedule: "* * * * *", command: "select private.prune_net_responses()" }]);
  });
});
