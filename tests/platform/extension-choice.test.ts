/**
 * stack/platform.ts keeps the pgmq / pg_net / Vault implementation a
 * database already holds (issue 16.4) and moves a stand-in's data to the
 * real extension only when asked (`--migrate-extensions`).
 *
 * The real pgmq, pg_net and supabase_vault are not installable here, so
 * "the server has the extension" is a test double of serverHasExtension, and
 * for the migration the double of `create extension` installs our stand-in
 * SQL again (same schema, tables and functions: what the real extension
 * would create). Each test runs in a database of its own on the shared
 * stack's server.
 */
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyExtensions, type Component, type PlatformOptions } from "../../stack/platform.ts";
import { testStack } from "../helpers/stack.ts";

const ROOT = resolve(import.meta.dirname, "../..");

describe("extension choice", () => {
  let admin: pg.Client;
  const made: string[] = [];
  beforeAll(async () => {
    admin = new pg.Client({ connectionString: testStack().DB_URL });
    await admin.connect();
  });
  afterAll(async () => {
    for (const name of made) await admin.query(`drop database if exists "${name}" with (force)`);
    await admin.end();
  });

  /** A new database on the stand-ins, with queues, messages, an archive, a secret and a view over pgmq. */
  async function standInDatabase(): Promise<{ db: pg.Client; apply: (opts: PlatformOptions) => ReturnType<typeof applyExtensions> }> {
    const name = `ext_${randomUUID().replaceAll("-", "").slice(0, 12)}`;
    await admin.query(`create database "${name}"`);
    made.push(name);
    const url = new URL(testStack().DB_URL);
    url.pathname = `/${name}`;
    const db = new pg.Client({ connectionString: url.toString() });
    // Dropping the database at the end ends this session, whatever state a failed test left it in.
    db.on("error", () => {});
    await db.connect();
    // What sql/platform sets up before the extensions (the rest of it needs pg_cron, which lives in the stack's database only).
    await db.query("create schema if not exists extensions; create extension if not exists pgcrypto with schema extensions");
    expect(await applyExtensions(db, ROOT, { hasExtension: () => false }))
      .toEqual({ pgmq: "stand-in", pg_net: "stand-in", vault: "stand-in" });
    await db.query("select pgmq.create(queue_name => 'work')");
    await db.query("select pgmq.send(queue_name => 'work', msg => jsonb_build_object('n', n)) from generate_series(1, 5) n");
    await db.query("select pgmq.read(queue_name => 'work', vt => 0, qty => 2)");
    await db.query("select pgmq.archive(queue_name => 'work', msg_id => 5)");
    await db.query("select vault.create_secret('s3cret', 'project_url', 'where the API is')");
    await db.query("create view public.queue_sizes with (security_invoker = true) as select queue_name, queue_length from pgmq.metrics_all()");
    await db.query("comment on view public.queue_sizes is 'Queue lengths'");
    await db.query("grant select on public.queue_sizes to service_role");
    return { db, apply: (opts) => applyExtensions(db, ROOT, opts) };
  }

  async function contents(db: pg.Client) {
    const q = await db.query("select msg_id::int, read_ct, message from pgmq.q_work order by msg_id");
    const a = await db.query("select msg_id::int, message from pgmq.a_work order by msg_id");
    const s = await db.query("select decrypted_secret from vault.decrypted_secrets where name = 'project_url'");
    const v = await db.query(
      `select obj_description('public.queue_sizes'::regclass, 'pg_class') as comment,
              has_table_privilege('service_role', 'public.queue_sizes', 'select') as granted,
              (select queue_length::int from public.queue_sizes where queue_name = 'work') as length`);
    return { queue: q.rows, archive: a.rows, secret: s.rows[0]?.decrypted_secret, view: v.rows[0] };
  }

  const standinAsExtension = async (client: pg.ClientBase, c: Component) =>
    void (await client.query(readFileSync(resolve(ROOT, "sql/standins", c.standin), "utf8")));

  it("a database made on the stand-ins keeps them, and its data, when the server gains the real extensions", async () => {
    const { db, apply } = await standInDatabase();
    try {
      const before = await contents(db);
      expect(before.queue).toHaveLength(4);
      const created: string[] = [];
      const logs: string[] = [];
      const report = await apply({
        hasExtension: () => true,
        createExtension: async (_c, comp) => void created.push(comp.extension),
        log: (m) => logs.push(m),
      });
      expect(report).toEqual({ pgmq: "stand-in", pg_net: "stand-in", vault: "stand-in" });
      expect(created).toEqual([]);
      expect(logs.filter((m) => m.includes("--migrate-extensions"))).toHaveLength(3);
      expect(await contents(db)).toEqual(before);
    } finally {
      await db.end();
    }
  });

  it("--migrate-extensions moves queues, messages, archives, secrets, views and grants to the extension", async () => {
    const { db, apply } = await standInDatabase();
    try {
      const before = await contents(db);
      const created: string[] = [];
      const report = await apply({
        // pg_net's switch needs the library preloaded, which this server does not do (next test).
        hasExtension: (e) => e !== "pg_net",
        migrateExtensions: true,
        createExtension: async (client, comp) => {
          created.push(comp.extension);
          await standinAsExtension(client, comp);
        },
      });
      expect(report).toEqual({ pgmq: "real", pg_net: "stand-in", vault: "real" });
      expect(created).toEqual(["pgmq", "supabase_vault"]);
      expect(await contents(db)).toEqual(before);
      // Ids continue past the archive: the next message is not a reused id.
      const next = await db.query("select pgmq.send(queue_name => 'work', msg => '{}'::jsonb) as id");
      expect(Number(next.rows[0].id)).toBe(6);
    } finally {
      await db.end();
    }
  });

  it("a migration that fails changes nothing", async () => {
    const { db, apply } = await standInDatabase();
    try {
      const before = await contents(db);
      await expect(apply({
        hasExtension: (e) => e === "pgmq",
        migrateExtensions: true,
        createExtension: async () => {
          throw new Error('could not open extension control file "pgmq.control"');
        },
      })).rejects.toThrow(/pgmq: moving to the pgmq extension failed, nothing was changed/);
      expect(await contents(db)).toEqual(before);
      // pg_net's real worker needs the library preloaded: refused before anything is touched.
      await expect(apply({ hasExtension: (e) => e === "pg_net", migrateExtensions: true, createExtension: standinAsExtension }))
        .rejects.toThrow(/shared_preload_libraries/);
      expect(await contents(db)).toEqual(before);
    } finally {
      await db.end();
    }
  });

  it("a migration is refused, changing nothing, while something outside the schema is built on the stand-in's types", async () => {
    const { db, apply } = await standInDatabase();
    try {
      await db.query("create function public.peek() returns setof pgmq.message_record language sql as 'select * from pgmq.read(''work'', 0, 1)'");
      const before = await contents(db);
      await expect(apply({
        hasExtension: (e) => e === "pgmq", migrateExtensions: true, createExtension: standinAsExtension,
      })).rejects.toThrow(/function public\.peek\(\)/);
      expect(await contents(db)).toEqual(before);
      expect((await db.query("select to_regprocedure('public.peek()') is not null as ok")).rows[0].ok).toBe(true);
    } finally {
      await db.end();
    }
  });
});
