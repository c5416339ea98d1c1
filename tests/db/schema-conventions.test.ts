/**
 * Conventions the LoRA schema promises (and the advisors check on Supabase),
 * asserted on the migrated database so a new migration cannot quietly break
 * them: documented objects, indexed foreign keys and policy columns,
 * policies that evaluate auth.uid() once and only for signed-in users,
 * nothing for anon, ordered trigger names, pinned search paths.
 */
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "../helpers/db.ts";

const LORA_TABLES = [
  "base_models", "checkpoints", "cost_records", "datasets", "job_events", "metrics_points", "model_artifacts", "notifications", "training_jobs",
];

describe("schema conventions", () => {
  let db: pg.Client;
  beforeAll(async () => {
    db = await connect();
  });
  afterAll(async () => {
    await db.end();
  });

  const list = async (sql: string, params: unknown[] = []): Promise<string[]> =>
    (await db.query<{ x: string }>(sql, params)).rows.map((r) => r.x);

  it("every LoRA table and column in public has a comment", async () => {
    const missing = await list(
      `select c.relname::text as x from pg_class c
        where c.relnamespace = 'public'::regnamespace and c.relname = any($1) and obj_description(c.oid, 'pg_class') is null
       union all
       select c.relname || '.' || a.attname from pg_class c
         join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
        where c.relnamespace = 'public'::regnamespace and c.relname = any($1) and col_description(c.oid, a.attnum) is null
       order by 1`,
      [LORA_TABLES],
    );
    expect(missing).toEqual([]);
  });

  it("every function, enum type and table in public and private has a comment", async () => {
    const missing = await list(
      `select p.oid::regprocedure::text as x from pg_proc p
        where p.pronamespace in ('public'::regnamespace, 'private'::regnamespace) and obj_description(p.oid, 'pg_proc') is null
       union all
       select t.oid::regtype::text from pg_type t
        where t.typnamespace in ('public'::regnamespace, 'private'::regnamespace) and t.typtype = 'e' and obj_description(t.oid, 'pg_type') is null
       union all
       select c.oid::regclass::text from pg_class c
        where c.relnamespace in ('public'::regnamespace, 'private'::regnamespace) and c.relkind in ('r', 'p', 'v') and obj_description(c.oid, 'pg_class') is null
       order by 1`,
    );
    expect(missing).toEqual([]);
  });

  it("every foreign key in public and private has an index led by exactly its columns", async () => {
    const unindexed = await list(
      `select format('%s.%s', ct.conrelid::regclass, ct.conname) as x from pg_constraint ct
        where ct.contype = 'f' and ct.connamespace in ('public'::regnamespace, 'private'::regnamespace)
          and not exists (
            select 1 from pg_index i where i.indrelid = ct.conrelid and i.indisvalid
              and (string_to_array(i.indkey::text, ' ')::smallint[])[1:cardinality(ct.conkey)] = ct.conkey)
        order by 1`,
    );
    expect(unindexed).toEqual([]);
  });

  it("every LoRA table filtered by user_id in a policy has an index led by user_id", async () => {
    const unindexed = await list(
      `select distinct p.tablename::text as x from pg_policies p
        where p.schemaname = 'public' and p.tablename = any($1)
          and coalesce(p.qual, '') || coalesce(p.with_check, '') like '%user_id%'
          and not exists (
            select 1 from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
             where i.indrelid = ('public.' || p.tablename)::regclass and a.attname = 'user_id')`,
      [LORA_TABLES],
    );
    expect(unindexed).toEqual([]);
  });

  it("policies run for signed-in users only and evaluate auth.uid() once per statement", async () => {
    const { rows } = await db.query(
      `select schemaname || '.' || tablename || ': ' || policyname as name, roles::text[] as roles,
              coalesce(qual, '') || ' ' || coalesce(with_check, '') as expr
         from pg_policies where schemaname in ('public', 'storage') and (schemaname = 'storage' or tablename = any($1))`,
      [LORA_TABLES],
    );
    expect(rows.length).toBeGreaterThanOrEqual(LORA_TABLES.length);
    for (const p of rows) {
      expect(p.roles, p.name).toEqual(["authenticated"]);
      const bare = (p.expr.match(/auth\.uid\(\)/g) ?? []).length;
      const wrapped = (p.expr.match(/SELECT auth\.uid\(\) AS uid/g) ?? []).length;
      expect(wrapped, p.name).toBe(bare);
    }
  });

  it("anon holds no privilege on any table in public or private", async () => {
    const granted = await list(
      `select c.oid::regclass::text as x from pg_class c
        where c.relnamespace in ('public'::regnamespace, 'private'::regnamespace) and c.relkind in ('r', 'p', 'v', 'm')
          and (has_table_privilege('anon', c.oid, 'select, insert, update, delete, truncate, references, trigger'))`,
    );
    expect(granted).toEqual([]);
  });

  it("triggers on LoRA tables are named by firing order and call private.tg_<table>__<action>", async () => {
    const { rows } = await db.query(
      `select t.tgname as name, c.relname as tbl, p.proname as fn, p.pronamespace::regnamespace::text as schema
         from pg_trigger t join pg_class c on c.oid = t.tgrelid join pg_proc p on p.oid = t.tgfoid
        where not t.tgisinternal and c.relnamespace = 'public'::regnamespace and c.relname = any($1)`,
      [LORA_TABLES],
    );
    expect(rows.length).toBeGreaterThan(10);
    for (const r of rows) {
      expect(r.name, `${r.tbl}.${r.name}`).toMatch(/^_\d{3}_[a-z0-9_]+$/);
      expect(`${r.schema}.${r.fn}`, `${r.tbl}.${r.name}`).toMatch(/^private\.tg_[a-z0-9_]+__[a-z0-9_]+$/);
    }
  });

  it("security definer functions pin an empty search_path; private ones are not executable by API roles", async () => {
    // Public RPCs are granted on purpose, one by one; private internals never are.
    const { rows } = await db.query(
      `select p.oid::regprocedure::text as fn, p.proconfig as config,
              p.pronamespace = 'private'::regnamespace
              and (has_function_privilege('anon', p.oid, 'execute') or has_function_privilege('authenticated', p.oid, 'execute')) as exposed
         from pg_proc p where p.prosecdef and p.pronamespace in ('public'::regnamespace, 'private'::regnamespace)`,
    );
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) {
      expect(r.config, r.fn).toContain('search_path=""');
      expect(r.exposed, r.fn).toBe(false);
    }
  });
});
