/** The stand-in's shared state: connections, their joined channels, presence. */
import type { WebSocket } from "ws";
import type { Filter } from "./filters.ts";
import { encodeMessage, type PhxMessage } from "./protocol.ts";
import type { Claims } from "./tokens.ts";

/** One `postgres_changes` entry of a join's config, with the id Realtime gives it. */
export type PgBinding = {
  id: number;
  event: "*" | "INSERT" | "UPDATE" | "DELETE";
  schema: string;
  table?: string;
  filter?: Filter;
  params: Record<string, unknown>;
};

export type Channel = {
  conn: Connection;
  topic: string;
  subTopic: string;
  joinRef: string | null;
  private: boolean;
  token: string;
  claims: Claims;
  bindings: PgBinding[];
  /** Bindings receive changes only after the subscription was validated (as Realtime's "Subscribed to PostgreSQL"). */
  subscribed: boolean;
  broadcastSelf: boolean;
  broadcastAck: boolean;
  presenceKey: string;
  presenceRef?: string;
  expiry?: NodeJS.Timeout;
};

export type Connection = { ws: WebSocket; vsn: string; apiKey: string; channels: Map<string, Channel> };

export type Hub = {
  jwtSecret: string;
  connections: Set<Connection>;
  /** Resolves once the change reader has seen the current subscriptions (so none of their changes is skipped). */
  sync: () => Promise<void>;
  /** Presence per public topic: key -> phx_ref -> meta. */
  presence: Map<string, Map<string, Map<string, Record<string, unknown>>>>;
};

/** Send one message to a connection, ignoring sockets that are already closing. */
export function send(conn: Connection, m: PhxMessage | Buffer): void {
  if (conn.ws.readyState !== conn.ws.OPEN) return;
  conn.ws.send(Buffer.isBuffer(m) ? m : encodeMessage(m));
}

/** Reply to a client push. */
export function reply(conn: Connection, m: PhxMessage, status: "ok" | "error", response: Record<string, unknown> = {}): void {
  send(conn, { join_ref: m.join_ref, ref: m.ref, topic: m.topic, event: "phx_reply", payload: { status, response } });
}

/** Push a `system` message to a channel, as Realtime's push_system_message. */
export function pushSystem(ch: Channel, extension: string, status: "ok" | "error", message: string): void {
  send(ch.conn, {
    join_ref: ch.joinRef, ref: null, topic: ch.topic, event: "system",
    payload: { extension, status, message, channel: ch.subTopic },
  });
}

/** Every joined channel on every connection. */
export function* allChannels(hub: Hub): Generator<Channel> {
  for (const c of hub.connections) yield* c.channels.values();
}
