/**
 * Fan-out of decoded changes to the channels whose postgres_changes
 * bindings match and whose subscriber may see the row, in commit order.
 * Payloads are shaped as Realtime's PostgresCdcRls sends them.
 */
import type pg from "pg";
import { matchesFilter } from "./filters.ts";
import { allChannels, send, type Channel, type Hub, type PgBinding } from "./hub.ts";
import { audienceKey, visibleAudiences, type Audience } from "./visibility.ts";
import type { Change } from "./wal.ts";

const NUMBER_TYPES = new Set(["int2", "int4", "int8", "float4", "float8", "numeric", "oid"]);

/** Text values to the JSON Realtime sends (as walrus casts them to jsonb). */
function toJson(change: Change, row: Record<string, string | null>): Record<string, unknown> {
  const types = new Map(change.columns.map((c) => [c.name, c.type]));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) {
    const t = types.get(k) ?? "text";
    if (v === null) out[k] = null;
    else if (t === "bool") out[k] = v === "t";
    else if (NUMBER_TYPES.has(t) && Number.isFinite(Number(v))) out[k] = Number(v);
    else if (t === "json" || t === "jsonb") out[k] = JSON.parse(v);
    else out[k] = v;
  }
  return out;
}

function bindingMatches(b: PgBinding, change: Change): boolean {
  if (b.event !== "*" && b.event !== change.type) return false;
  if (b.schema !== "*" && b.schema !== change.schema) return false;
  if (b.table && b.table !== "*" && b.table !== change.table) return false;
  if (!b.filter) return true;
  const row = change.type === "DELETE" ? change.oldRecord : change.record;
  const type = change.columns.find((c) => c.name === b.filter!.column)?.type ?? "text";
  return row ? matchesFilter(b.filter, type, row) : false;
}

/** The payload `data` of a postgres_changes message. */
export function changeData(change: Change): Record<string, unknown> {
  const data: Record<string, unknown> = {
    schema: change.schema, table: change.table, commit_timestamp: change.commitTimestamp, type: change.type,
    columns: change.columns, errors: null,
  };
  if (change.record) data.record = toJson(change, change.record);
  if (change.oldRecord) {
    // With RLS on, a deleted row's old image is cut to its primary key: it was never checked against policies.
    const old = change.type === "DELETE" && change.rlsEnabled
      ? Object.fromEntries(change.keyColumns.map((k) => [k, change.oldRecord![k] ?? null]))
      : change.oldRecord;
    data.old_record = toJson(change, old);
  }
  return data;
}

/** Deliver a batch of changes; returns how many messages were sent. */
export async function dispatch(hub: Hub, db: pg.Pool, changes: Change[], log: (msg: string) => void = () => {}): Promise<number> {
  let sent = 0;
  for (const change of changes) {
    const targets: Array<{ ch: Channel; ids: number[]; audience: Audience }> = [];
    for (const ch of allChannels(hub)) {
      if (!ch.subscribed) continue;
      const ids = [...new Set(ch.bindings.filter((b) => bindingMatches(b, change)).map((b) => b.id))];
      if (ids.length) targets.push({ ch, ids, audience: { role: ch.claims.role, claims: ch.claims } });
    }
    if (targets.length === 0) continue;
    const unique = new Map(targets.map((t) => [audienceKey(t.audience), t.audience]));
    // A failed check delivers the change to no one rather than to everyone.
    const visible = await visibleAudiences(db, change, [...unique.values()]).catch((err: unknown) => {
      log(`realtime: RLS check for ${change.schema}.${change.table} failed, change not delivered: ${(err as Error).message}`);
      return new Set<string>();
    });
    const data = changeData(change);
    for (const t of targets) {
      if (!visible.has(audienceKey(t.audience))) continue;
      send(t.ch.conn, { join_ref: null, ref: null, topic: t.ch.topic, event: "postgres_changes", payload: { ids: t.ids, data } });
      sent++;
    }
  }
  return sent;
}
