/**
 * The per-subscriber RLS check Supabase Realtime makes (walrus'
 * `apply_rls`): for each distinct (role, claims) among the subscribers of a
 * change, act as that role with those JWT claims and ask whether the changed
 * row can be selected. One round trip per change, whatever the number of
 * subscribers; each check is its own transaction that rolls back.
 */
import pg from "pg";

const { escapeIdentifier: ident, escapeLiteral: literal } = pg;
import type { Change } from "./wal.ts";

export type Audience = { role: string; claims: Record<string, unknown> };

/** The key under which an audience is checked once per change. */
export const audienceKey = (a: Audience) => `${a.role}\u0000${JSON.stringify(a.claims)}`;

/**
 * Which audiences may see the change. DELETEs are not checked (the row is
 * gone; Realtime sends them to every subscriber of the table, with only the
 * primary key when RLS is on), nor are tables without RLS beyond the role's
 * SELECT privilege.
 */
export async function visibleAudiences(db: pg.Pool, change: Change, audiences: Audience[]): Promise<Set<string>> {
  const out = new Set<string>();
  if (audiences.length === 0) return out;
  const table = `${ident(change.schema)}.${ident(change.table)}`;
  const privileged = await selectPrivileges(db, table, [...new Set(audiences.map((a) => a.role))]);
  const allowed = audiences.filter((a) => privileged.has(a.role));
  if (change.type === "DELETE" || !change.rlsEnabled) {
    for (const a of allowed) out.add(audienceKey(a));
    return out;
  }
  const record = change.record ?? {};
  const where = change.keyColumns
    .map((k) => (record[k] === null || record[k] === undefined ? "false" : `${ident(k)} = ${literal(record[k]!)}`))
    .join(" and ") || "false";
  const statements = allowed.map((a) =>
    [
      "begin",
      `set local role ${ident(a.role)}`,
      `select pg_catalog.set_config('request.jwt.claims', ${literal(JSON.stringify(a.claims))}, true)`,
      `select exists (select 1 from ${table} where ${where}) as visible`,
      "rollback",
    ].join(";\n"),
  );
  if (statements.length === 0) return out;
  const client = await db.connect();
  let results: pg.QueryResult[];
  try {
    results = (await client.query(statements.join(";\n"))) as unknown as pg.QueryResult[];
    client.release();
  } catch (err) {
    // The batch stopped inside one of its transactions: never hand that session back to the pool.
    client.release(err as Error);
    throw err;
  }
  allowed.forEach((a, i) => {
    if (results[i * 5 + 3]?.rows[0]?.visible === true) out.add(audienceKey(a));
  });
  return out;
}

async function selectPrivileges(db: pg.Pool, table: string, roles: string[]): Promise<Set<string>> {
  const { rows } = await db.query(
    `select r.rolname from pg_catalog.pg_roles r
      where r.rolname = any($1) and pg_catalog.has_table_privilege(r.rolname, $2::regclass, 'select')`,
    [roles, table],
  );
  return new Set(rows.map((r) => r.rolname as string));
}
