/**
 * Reads committed row changes of the `supabase_realtime` publication from a
 * logical replication slot (pgoutput), in commit order.
 *
 * The slot is temporary: it belongs to this reader's session, so a crashed
 * stack (or a crashed Postgres) cannot leave a slot that pins WAL forever.
 * A permanent slot of the same name left by something else is dropped at
 * start when nobody uses it.
 */
import pg from "pg";
import { decodeMessage, type Relation, type Tuple } from "./pgoutput.ts";

export const SLOT_NAME = "supabase_realtime_replication_slot";
export const PUBLICATION = "supabase_realtime";

export type ChangeType = "INSERT" | "UPDATE" | "DELETE";

/** One row change as Realtime describes it (values in Postgres' text format). */
export type Change = {
  schema: string;
  table: string;
  type: ChangeType;
  commitTimestamp: string;
  columns: Array<{ name: string; type: string }>;
  keyColumns: string[];
  record?: Tuple;
  oldRecord?: Tuple;
  rlsEnabled: boolean;
};

export type WalReader = {
  /** Resolves once a poll that started after this call has decided whether to decode (see `wanted`). */
  afterNextPoll: () => Promise<void>;
  stop: () => Promise<void>;
};

export type WalReaderOptions = {
  dbUrl: string;
  /** Called once per batch, awaited before the next poll (keeps commit order). */
  onChanges: (changes: Change[]) => Promise<void>;
  /** False while nobody listens: the slot is then fast-forwarded instead of decoded (bulk loads stay cheap). */
  wanted?: () => boolean;
  /** Poll interval when idle; Supabase Realtime polls every 100 ms by default. */
  pollMs?: number;
  maxChanges?: number;
  onError?: (err: Error) => void;
};

/** Create the slot and start polling it. */
export async function startWalReader(opts: WalReaderOptions): Promise<WalReader> {
  const db = new pg.Client({ connectionString: opts.dbUrl, application_name: "realtime-standin-wal" });
  await db.connect();
  await db.query(
    `select pg_catalog.pg_drop_replication_slot(slot_name) from pg_catalog.pg_replication_slots
      where slot_name = $1 and not active`,
    [SLOT_NAME],
  );
  await db.query("select pg_catalog.pg_create_logical_replication_slot($1, 'pgoutput', true)", [SLOT_NAME]);

  const relations = new Map<number, Relation>();
  const typeNames = new Map<number, string>();
  const rls = new Map<number, boolean>();
  const pollMs = opts.pollMs ?? 100;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();

  const describe = async (rel: Relation) => {
    const missing = rel.columns.map((c) => c.typeOid).filter((o) => !typeNames.has(o));
    if (missing.length) {
      const { rows } = await db.query("select oid::int as oid, typname from pg_catalog.pg_type where oid = any($1)", [missing]);
      for (const r of rows) typeNames.set(r.oid, r.typname);
    }
    const { rows } = await db.query("select relrowsecurity from pg_catalog.pg_class where oid = $1", [rel.oid]);
    rls.set(rel.oid, rows[0]?.relrowsecurity === true);
  };

  let waiters: Array<() => void> = [];
  const poll = async (): Promise<number> => {
    const want = opts.wanted?.() ?? true;
    const woken = waiters;
    waiters = [];
    for (const w of woken) w();
    if (!want) {
      await db.query("select pg_catalog.pg_replication_slot_advance($1, pg_catalog.pg_current_wal_lsn())", [SLOT_NAME]);
      return 0;
    }
    const max = opts.maxChanges ?? 1000;
    const { rows } = await db.query<{ data: Buffer }>(
      `select data from pg_catalog.pg_logical_slot_get_binary_changes($1, null, $2,
         'proto_version', '1', 'publication_names', $3)`,
      [SLOT_NAME, max, PUBLICATION],
    );
    const changes: Change[] = [];
    let commitTimestamp = new Date().toISOString();
    for (const { data } of rows) {
      const m = decodeMessage(data, relations);
      if (m.tag === "begin") commitTimestamp = m.commitTime.toISOString();
      else if (m.tag === "relation") {
        relations.set(m.relation.oid, m.relation);
        await describe(m.relation);
      } else if (m.tag === "insert" || m.tag === "update" || m.tag === "delete") {
        const rel = relations.get(m.relationOid);
        if (!rel) continue;
        const keyColumns = rel.columns.filter((c) => c.key).map((c) => c.name);
        const change: Change = {
          schema: rel.schema, table: rel.table, commitTimestamp, keyColumns,
          type: m.tag === "insert" ? "INSERT" : m.tag === "update" ? "UPDATE" : "DELETE",
          columns: rel.columns.map((c) => ({ name: c.name, type: typeNames.get(c.typeOid) ?? "text" })),
          rlsEnabled: rls.get(rel.oid) ?? true,
        };
        if (m.tag !== "delete") change.record = m.next;
        if (m.tag === "update") {
          // Replica identity default: the WAL has the old key only when it changed; the key is the new one otherwise.
          change.oldRecord = m.previous ?? Object.fromEntries(keyColumns.map((k) => [k, m.next[k] ?? null]));
        }
        if (m.tag === "delete") change.oldRecord = m.previous;
        changes.push(change);
      }
    }
    if (changes.length) await opts.onChanges(changes);
    return rows.length;
  };

  const loop = () => {
    if (stopped) return;
    running = poll()
      .then((n) => {
        if (!stopped) timer = setTimeout(loop, n > 0 ? 0 : pollMs);
      })
      .catch((err: unknown) => {
        opts.onError?.(err as Error);
        if (!stopped) timer = setTimeout(loop, pollMs * 10);
      });
  };
  loop();

  return {
    afterNextPoll: () => (stopped ? Promise.resolve() : new Promise<void>((ok) => waiters.push(ok))),
    stop: async () => {
      stopped = true;
      for (const w of waiters.splice(0)) w();
      clearTimeout(timer);
      await running;
      // Ending the session drops the temporary slot.
      await db.end().catch(() => {});
    },
  };
}
