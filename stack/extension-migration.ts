/**
 * Moving a component from our stand-in to the real extension without losing
 * data (`npm run stack -- --migrate-extensions`, stack/platform.ts), in one
 * transaction: either everything moved or nothing changed.
 *
 * 1. Refuse when an object outside the schema other than a view depends on
 *    the stand-in (a table column or function signature of one of its types):
 *    dropping the schema would take it along.
 * 2. Keep the stand-in's rows (pgmq queues and their messages and archives,
 *    pg_net's pending requests and responses, Vault's decrypted secrets) in
 *    temporary tables, the definitions of views that use it, and the grants
 *    on the schema and its objects.
 * 3. Drop the stand-in's schema, create the extension, then put back the
 *    queues, rows (same ids, sequences moved past them), secrets (Vault gives
 *    them new ids: look them up by name), grants and views.
 */
import type pg from "pg";
import type { Component } from "./platform.ts";

const q = (name: string) => `"${name.replaceAll('"', '""')}"`;

type View = { schema: string; name: string; def: string; options: string[] | null; owner: string; comment: string | null; depth: number };
type Grant = { kind: "schema" | "relation" | "function"; name: string; args: string | null; grantee: string; privilege: string; grantable: boolean };

export async function migrateToExtension(client: pg.ClientBase, c: Component, createExtension: () => Promise<void>): Promise<void> {
  if (c.name === "pg_net") {
    const { rows } = await client.query<{ libs: string }>("select current_setting('shared_preload_libraries') as libs");
    if (!rows[0]!.libs.split(",").map((l) => l.trim()).includes("pg_net")) {
      throw new Error("pg_net: the real extension's worker needs pg_net in shared_preload_libraries (postgresql.conf) and a restart; nothing was changed");
    }
  }
  await client.query("begin");
  try {
    await refuseHardDependents(client, c.schema);
    const views = await dependentViews(client, c.schema);
    const grants = await grantsIn(client, c.schema);
    const kept = await keepRows(client, c);
    await client.query(`drop schema ${q(c.schema)} cascade`);
    if (c.name === "vault") await client.query("create schema vault");
    await createExtension();
    await restoreRows(client, c, kept);
    await replayGrants(client, c.schema, grants);
    for (const v of views) {
      await client.query(`create view ${q(v.schema)}.${q(v.name)}${v.options ? ` with (${v.options.join(", ")})` : ""} as ${v.def}`);
      await client.query(`alter view ${q(v.schema)}.${q(v.name)} owner to ${q(v.owner)}`);
      if (v.comment !== null) await client.query(`comment on view ${q(v.schema)}.${q(v.name)} is ${literal(v.comment)}`);
    }
    await replayGrants(client, null, grants.filter((g) => g.kind === "relation" && g.name.includes(".")));
    await client.query("commit");
  } catch (err) {
    await client.query("rollback").catch(() => {});
    throw new Error(`${c.name}: moving to the ${c.extension} extension failed, nothing was changed: ${(err as Error).message}`, { cause: err });
  }
}

async function refuseHardDependents(client: pg.ClientBase, schema: string): Promise<void> {
  const { rows } = await client.query<{ what: string }>(
    `with mine as (
       select 'pg_class'::regclass as classid, oid from pg_catalog.pg_class where relnamespace = $1::regnamespace
       union all select 'pg_proc'::regclass, oid from pg_catalog.pg_proc where pronamespace = $1::regnamespace
       union all select 'pg_type'::regclass, oid from pg_catalog.pg_type where typnamespace = $1::regnamespace)
     select distinct (select i.type || ' ' || i.identity from pg_catalog.pg_identify_object(d.classid, d.objid, d.objsubid) i) as what
       from pg_catalog.pg_depend d join mine m on m.classid = d.refclassid and m.oid = d.refobjid
      where d.deptype = 'n' and d.classid <> 'pg_rewrite'::regclass
        and not exists (select 1 from mine o where o.classid = d.classid and o.oid = d.objid)
        -- Defaults, constraints, triggers and policies of the schema's own tables go with them.
        and coalesce((select c.relnamespace from pg_catalog.pg_class c where c.oid = case d.classid
              when 'pg_attrdef'::regclass then (select adrelid from pg_catalog.pg_attrdef where oid = d.objid)
              when 'pg_constraint'::regclass then (select conrelid from pg_catalog.pg_constraint where oid = d.objid)
              when 'pg_trigger'::regclass then (select tgrelid from pg_catalog.pg_trigger where oid = d.objid)
              when 'pg_policy'::regclass then (select polrelid from pg_catalog.pg_policy where oid = d.objid) end), 0)
            <> $1::regnamespace`,
    [schema],
  );
  if (rows.length > 0) {
    throw new Error(`objects outside schema "${schema}" depend on it and would be dropped: ${rows.map((r) => r.what).join("; ")}`);
  }
}

async function dependentViews(client: pg.ClientBase, schema: string): Promise<View[]> {
  const { rows } = await client.query<View>(
    `with recursive dep (oid, depth) as (
       select r.ev_class, 1
         from pg_catalog.pg_depend d join pg_catalog.pg_rewrite r on r.oid = d.objid
        where d.classid = 'pg_rewrite'::regclass and (
          d.refobjid in (select oid from pg_catalog.pg_class where relnamespace = $1::regnamespace)
          or d.refobjid in (select oid from pg_catalog.pg_proc where pronamespace = $1::regnamespace)
          or d.refobjid in (select oid from pg_catalog.pg_type where typnamespace = $1::regnamespace))
       union
       select r.ev_class, dep.depth + 1
         from dep join pg_catalog.pg_depend d on d.refobjid = dep.oid and d.classid = 'pg_rewrite'::regclass
         join pg_catalog.pg_rewrite r on r.oid = d.objid
        where r.ev_class <> dep.oid and dep.depth < 20)
     select n.nspname as schema, c.relname as name, pg_catalog.pg_get_viewdef(c.oid) as def, c.reloptions as options,
            pg_catalog.pg_get_userbyid(c.relowner) as owner, pg_catalog.obj_description(c.oid, 'pg_class') as comment,
            max(dep.depth)::int as depth
       from dep join pg_catalog.pg_class c on c.oid = dep.oid join pg_catalog.pg_namespace n on n.oid = c.relnamespace
      where c.relkind = 'v' and n.nspname <> $1::text
      group by n.nspname, c.relname, c.oid
      order by depth, schema, name`,
    [schema],
  );
  return rows;
}

async function grantsIn(client: pg.ClientBase, schema: string): Promise<Grant[]> {
  const { rows } = await client.query<Grant>(
    `with objs as (
       select 'schema' as kind, n.nspname::text as name, null::text as args, n.nspacl as acl
         from pg_catalog.pg_namespace n where n.nspname = $1::text
       union all
       select 'relation', c.relname::text, null, c.relacl from pg_catalog.pg_class c
        where c.relnamespace = $1::regnamespace and c.relkind in ('r', 'v', 'S', 'p') and c.relacl is not null
       union all
       select 'relation', n.nspname || '.' || c.relname, null, c.relacl
         from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
        where c.relkind = 'v' and n.nspname <> $1::text and c.relacl is not null
       union all
       select 'function', p.proname::text, pg_catalog.oidvectortypes(p.proargtypes), p.proacl
         from pg_catalog.pg_proc p where p.pronamespace = $1::regnamespace and p.proacl is not null)
     select o.kind, o.name, o.args, case when a.grantee = 0 then 'public' else pg_catalog.pg_get_userbyid(a.grantee) end as grantee,
            a.privilege_type as privilege, a.is_grantable as grantable
       from objs o cross join lateral pg_catalog.aclexplode(o.acl) a`,
    [schema],
  );
  return rows;
}

async function replayGrants(client: pg.ClientBase, schema: string | null, grants: Grant[]): Promise<void> {
  for (const g of grants) {
    if (schema === null ? !g.name.includes(".") : g.name.includes(".")) continue;
    const role = g.grantee === "public" ? "public" : q(g.grantee);
    const target = g.kind === "schema"
      ? `schema ${q(g.name)}`
      : g.kind === "function"
      ? `function ${q(schema!)}.${q(g.name)}(${g.args})`
      : schema === null
      ? g.name.split(".").map(q).join(".")
      : `${q(schema)}.${q(g.name)}`;
    const exists = g.kind === "schema" ? true : g.kind === "function"
      ? (await client.query("select to_regprocedure($1) is not null as ok", [`${q(schema!)}.${q(g.name)}(${g.args})`])).rows[0].ok
      : (await client.query("select to_regclass($1) is not null as ok", [schema === null ? g.name : `${q(schema)}.${q(g.name)}`])).rows[0].ok;
    if (!exists) continue;
    await client.query(`grant ${g.privilege} on ${g.kind === "relation" ? "table " : ""}${target} to ${role}${g.grantable ? " with grant option" : ""}`);
  }
}

type Kept = { tables: string[]; queues: Array<{ queue_name: string; is_unlogged: boolean }> };

async function keepRows(client: pg.ClientBase, c: Component): Promise<Kept> {
  if (c.name === "vault") {
    await client.query("create temp table keep_vault on commit drop as select name, description, decrypted_secret from vault.decrypted_secrets");
    return { tables: [], queues: [] };
  }
  const queues = c.name === "pgmq"
    ? (await client.query<{ queue_name: string; is_unlogged: boolean }>("select queue_name::text, is_unlogged from pgmq.meta order by queue_name")).rows
    : [];
  const { rows } = await client.query<{ name: string }>(
    "select relname::text as name from pg_catalog.pg_class where relnamespace = $1::regnamespace and relkind in ('r', 'p') and relname <> 'meta' order by relname",
    [c.schema],
  );
  for (const t of rows) {
    await client.query(`create temp table ${q(`keep_${t.name}`)} on commit drop as select * from ${q(c.schema)}.${q(t.name)}`);
  }
  return { tables: rows.map((r) => r.name), queues };
}

async function restoreRows(client: pg.ClientBase, c: Component, kept: Kept): Promise<void> {
  if (c.name === "vault") {
    await client.query("select vault.create_secret(decrypted_secret, name, description) from pg_temp.keep_vault");
    return;
  }
  for (const queue of kept.queues) {
    await client.query(queue.is_unlogged ? "select pgmq.create_unlogged($1)" : "select pgmq.create($1)", [queue.queue_name]);
  }
  for (const t of kept.tables) {
    const { rows: cols } = await client.query<{ name: string; seq: string | null }>(
      `select a.attname::text as name, pg_catalog.pg_get_serial_sequence($1, a.attname) as seq
         from pg_catalog.pg_attribute a
        where a.attrelid = to_regclass($1) and a.attnum > 0 and not a.attisdropped and a.attgenerated = ''
          and a.attname in (select b.attname from pg_catalog.pg_attribute b
                             where b.attrelid = to_regclass($2) and b.attnum > 0 and not b.attisdropped)`,
      [`${q(c.schema)}.${q(t)}`, `pg_temp.${q(`keep_${t}`)}`],
    );
    if (cols.length === 0) continue;
    const list = cols.map((col) => q(col.name)).join(", ");
    await client.query(`insert into ${q(c.schema)}.${q(t)} (${list}) overriding system value select ${list} from pg_temp.${q(`keep_${t}`)}`);
    for (const col of cols.filter((x) => x.seq !== null)) {
      await client.query(`select setval($1, m) from (select max(${q(col.name)}) as m from ${q(c.schema)}.${q(t)}) s where m is not null`, [col.seq]);
    }
  }
  // A queue's ids continue past its archive too: an archived id must never be handed out again.
  for (const queue of kept.queues) {
    await client.query(
      `select setval(pg_catalog.pg_get_serial_sequence($1, 'msg_id'), m)
         from (select max(msg_id) as m from (select msg_id from pgmq.${q(`q_${queue.queue_name}`)}
                                               union all select msg_id from pgmq.${q(`a_${queue.queue_name}`)}) ids) s
        where m is not null`,
      [`pgmq.${q(`q_${queue.queue_name}`)}`],
    );
  }
}

function literal(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}
