/**
 * Channel lifecycle as RealtimeWeb.RealtimeChannel: phx_join (token check,
 * postgres_changes ids, the "Subscribed to PostgreSQL" system message),
 * phx_leave, access_token refresh, and the shutdown Realtime sends when a
 * token expires (a `system` error, then `phx_close`).
 */
import { randomUUID } from "node:crypto";
import type pg from "pg";
import { parseFilter } from "./filters.ts";
import { pushSystem, reply, send, type Channel, type Connection, type Hub, type PgBinding } from "./hub.ts";
import { pushPresenceState, untrack } from "./presence.ts";
import type { PhxMessage } from "./protocol.ts";
import { checkToken, type Claims } from "./tokens.ts";
import { PUBLICATION } from "./wal.ts";

// setTimeout's ceiling; Realtime also re-checks at most hourly.
const MAX_TIMER_MS = 3_600_000;
const EVENTS = new Set(["*", "INSERT", "UPDATE", "DELETE"]);

/** A stable small integer per binding params, like Realtime's :erlang.phash2. */
function bindingId(params: Record<string, unknown>): number {
  let h = 0x811c9dc5;
  for (const ch of JSON.stringify(params, Object.keys(params).sort())) {
    h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  }
  return h & 0x7ffffff;
}

function scheduleExpiry(hub: Hub, ch: Channel): void {
  clearTimeout(ch.expiry);
  const ms = Math.min(MAX_TIMER_MS, ch.claims.exp * 1000 - Date.now());
  ch.expiry = setTimeout(() => {
    void checkToken(hub.jwtSecret, ch.token).then((c) => {
      if (c.ok) scheduleExpiry(hub, ch);
      else shutdown(hub, ch, c.message);
    });
  }, Math.max(0, ms));
}

/** Close a channel from the server side, saying why. */
export function shutdown(hub: Hub, ch: Channel, message: string): void {
  pushSystem(ch, "system", "error", message);
  send(ch.conn, { join_ref: ch.joinRef, ref: ch.joinRef, topic: ch.topic, event: "phx_close", payload: {} });
  removeChannel(hub, ch);
}

/** Forget a channel (leave, close, disconnect). */
export function removeChannel(hub: Hub, ch: Channel): void {
  clearTimeout(ch.expiry);
  untrack(hub, ch);
  if (ch.conn.channels.get(ch.topic) === ch) ch.conn.channels.delete(ch.topic);
}

async function invalidBindings(db: pg.Pool, role: string, bindings: PgBinding[]): Promise<PgBinding[]> {
  const bad: PgBinding[] = [];
  const roleOk = (await db.query("select 1 from pg_catalog.pg_roles where rolname = $1", [role])).rowCount === 1;
  for (const b of bindings) {
    const filterText = b.params.filter;
    if (!roleOk || !EVENTS.has(b.event) || typeof b.schema !== "string" || (filterText !== undefined && !b.filter)) {
      bad.push(b);
      continue;
    }
    const table = b.table && b.table !== "*" ? b.table : null;
    if (!table) {
      if (b.filter) bad.push(b);
      continue;
    }
    const { rows } = await db.query(
      `select array(select a.attname::text from pg_catalog.pg_attribute a
                     where a.attrelid = format('%I.%I', p.schemaname, p.tablename)::regclass and a.attnum > 0 and not a.attisdropped) as cols
         from pg_catalog.pg_publication_tables p
        where p.pubname = $1 and ($2 = '*' or p.schemaname = $2) and p.tablename = $3`,
      [PUBLICATION, b.schema, table],
    );
    if (rows.length === 0 || (b.filter && !(rows[0].cols as string[]).includes(b.filter.column))) bad.push(b);
  }
  return bad;
}

function describe(b: PgBinding): string {
  const filters = b.filter ? `[{"${b.filter.column}", "${b.filter.op}", "${b.filter.values.join(",")}"}]` : "[]";
  return `[event: ${b.event}, schema: ${b.schema}, table: ${b.table ?? "*"}, filters: ${filters}]`;
}

type JoinConfig = {
  postgres_changes?: unknown;
  private?: unknown;
  broadcast?: { self?: unknown; ack?: unknown };
  presence?: { key?: unknown; enabled?: unknown };
};

/** Handle phx_join. */
export async function join(hub: Hub, db: pg.Pool, conn: Connection, m: PhxMessage): Promise<void> {
  const subTopic = m.topic.replace(/^realtime:/, "");
  if (!m.topic.startsWith("realtime:") || subTopic === "") {
    reply(conn, m, "error", { reason: "TopicNameRequired: You must provide a topic name" });
    return;
  }
  const config = (m.payload.config ?? {}) as JoinConfig;
  const given = m.payload.access_token ?? m.payload.user_token;
  const token = typeof given === "string" && !given.startsWith("sb_") ? given : conn.apiKey;
  const checked = await checkToken(hub.jwtSecret, token);
  if (!checked.ok) {
    reply(conn, m, "error", { reason: `${checked.code}: ${checked.message}` });
    return;
  }
  if (config.private === true) {
    // Private channels are authorized by RLS on realtime.messages, which this stand-in does not have.
    reply(conn, m, "error", { reason: `Unauthorized: You do not have permissions to read from this Channel topic: ${subTopic}` });
    return;
  }
  const previous = conn.channels.get(m.topic);
  if (previous) removeChannel(hub, previous);

  const params = (Array.isArray(config.postgres_changes) ? config.postgres_changes : []).filter(
    (p: unknown) => p && typeof p === "object",
  ) as Array<Record<string, unknown>>;
  const bindings: PgBinding[] = params.map((p) => ({
    id: bindingId(p),
    event: String(p.event ?? "*").toUpperCase() as PgBinding["event"],
    schema: String(p.schema ?? "public"),
    table: typeof p.table === "string" ? p.table : undefined,
    filter: typeof p.filter === "string" ? parseFilter(p.filter) : undefined,
    params: p,
  }));
  const claims: Claims = checked.claims;
  const ch: Channel = {
    conn, topic: m.topic, subTopic, joinRef: m.join_ref, private: false, token, claims, bindings,
    subscribed: false,
    broadcastSelf: config.broadcast?.self === true,
    broadcastAck: config.broadcast?.ack === true,
    presenceKey: typeof config.presence?.key === "string" && config.presence.key !== "" ? config.presence.key : randomUUID(),
  };
  // Validate before replying so that SUBSCRIBED on the client means changes flow.
  const bad = bindings.length ? await invalidBindings(db, claims.role, bindings) : [];
  ch.subscribed = bindings.length > 0 && bad.length === 0;
  conn.channels.set(m.topic, ch);
  scheduleExpiry(hub, ch);
  // While nobody listens the slot is fast-forwarded; reply only once the reader decodes for this channel.
  if (ch.subscribed) await hub.sync();
  reply(conn, m, "ok", { postgres_changes: bindings.map((b) => ({ ...b.params, id: b.id })) });
  if (config.presence?.enabled === true) pushPresenceState(hub, ch);
  if (bad.length) {
    pushSystem(ch, "postgres_changes", "error",
      `Unable to subscribe to changes with given parameters. Please check Realtime is enabled for the given connect parameters: ${describe(bad[0]!)}`);
  } else if (bindings.length) {
    pushSystem(ch, "postgres_changes", "ok", "Subscribed to PostgreSQL");
  }
}

/** Handle an access_token push: a valid new token replaces the claims, a bad one closes the channel. */
export async function refreshToken(hub: Hub, ch: Channel, token: unknown): Promise<void> {
  if (token === null || token === undefined || token === ch.token) return;
  if (typeof token === "string" && token.startsWith("sb_")) return;
  const checked = await checkToken(hub.jwtSecret, token);
  if (!checked.ok) {
    shutdown(hub, ch, checked.message);
    return;
  }
  ch.token = token as string;
  ch.claims = checked.claims;
  scheduleExpiry(hub, ch);
}
