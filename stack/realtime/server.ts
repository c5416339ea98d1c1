/**
 * Realtime stand-in (see docs/standins/realtime.md): the WebSocket endpoint
 * `/realtime/v1/websocket` speaking the Phoenix protocol realtime-js uses,
 * postgres_changes from logical decoding of the `supabase_realtime`
 * publication filtered by each subscriber's RLS, broadcast and presence on
 * public channels.
 */
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import pg from "pg";
import { WebSocketServer, type RawData } from "ws";
import { join, refreshToken, removeChannel } from "./channels.ts";
import { dispatch } from "./dispatch.ts";
import { allChannels, reply, send, type Connection, type Hub } from "./hub.ts";
import { track, untrack } from "./presence.ts";
import { decodeFrame, encodeUserBroadcast, type PhxMessage } from "./protocol.ts";
import { checkToken } from "./tokens.ts";
import { startWalReader } from "./wal.ts";

export type RealtimeServer = {
  /** The gateway's upgrade hook for `/realtime/v1/*`. */
  upgrade: (req: IncomingMessage, socket: Duplex, head: Buffer, path: string) => void;
  close: () => Promise<void>;
};

export type RealtimeOptions = { dbUrl: string; jwtSecret: string; log?: (msg: string) => void };

function refuse(socket: Duplex, status: number, body: Record<string, unknown>): void {
  const text = JSON.stringify(body);
  const reason = status === 401 ? "Unauthorized" : status === 403 ? "Forbidden" : "Not Found";
  socket.end(`HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`);
}

function broadcast(hub: Hub, from: Connection, m: PhxMessage): void {
  const sender = from.channels.get(m.topic);
  if (!sender) return;
  const { event, payload } = m.payload as { event?: unknown; payload?: unknown };
  if (typeof event !== "string") return;
  for (const ch of allChannels(hub)) {
    if (ch.topic !== m.topic || ch.private || (ch === sender && !sender.broadcastSelf)) continue;
    send(ch.conn, ch.conn.vsn === "1.0.0"
      ? { join_ref: null, ref: null, topic: ch.topic, event: "broadcast", payload: { type: "broadcast", event, payload } }
      : encodeUserBroadcast(ch.topic, event, payload));
  }
  if (sender.broadcastAck) reply(from, m, "ok");
}

async function onMessage(hub: Hub, db: pg.Pool, conn: Connection, m: PhxMessage): Promise<void> {
  if (m.topic === "phoenix" && m.event === "heartbeat") return reply(conn, m, "ok");
  if (m.event === "phx_join") return join(hub, db, conn, m);
  const ch = conn.channels.get(m.topic);
  if (!ch) return reply(conn, m, "error", { reason: "unmatched topic" });
  switch (m.event) {
    case "phx_leave":
      removeChannel(hub, ch);
      return reply(conn, m, "ok");
    case "access_token":
      return refreshToken(hub, ch, m.payload.access_token);
    case "broadcast":
      return broadcast(hub, conn, m);
    case "presence": {
      const p = m.payload as { event?: string; payload?: unknown };
      if (p.event === "track") {
        if (!p.payload || typeof p.payload !== "object" || Array.isArray(p.payload)) {
          return reply(conn, m, "error", { reason: "Presence track payload must be a map" });
        }
        track(hub, ch, p.payload as Record<string, unknown>);
      } else if (p.event === "untrack") untrack(hub, ch);
      return reply(conn, m, "ok");
    }
    default:
      // Realtime ignores unexpected client messages.
      return;
  }
}

/** Start the stand-in: the replication slot reader, the RLS-check connection and the socket hub. */
export async function startRealtime(opts: RealtimeOptions): Promise<RealtimeServer> {
  const log = opts.log ?? (() => {});
  const hub: Hub = { jwtSecret: opts.jwtSecret, connections: new Set(), presence: new Map(), sync: async () => {} };
  // Joins (subscription checks) and dispatch (RLS checks) query concurrently.
  const db = new pg.Pool({ connectionString: opts.dbUrl, application_name: "realtime-standin-rls", max: 4 });
  await db.query("select 1");
  const wss = new WebSocketServer({ noServer: true, maxPayload: 3 * 1024 * 1024 });
  const wal = await startWalReader({
    dbUrl: opts.dbUrl,
    onChanges: async (changes) => {
      await dispatch(hub, db, changes, log);
    },
    wanted: () => {
      for (const ch of allChannels(hub)) if (ch.subscribed) return true;
      return false;
    },
    onError: (err) => log(`realtime: reading changes failed: ${err.message}`),
  }).catch(async (err: unknown) => {
    await db.end();
    throw err;
  });
  hub.sync = wal.afterNextPoll;

  const upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer, path: string) => {
    // A client that resets mid-handshake must not take the gateway down.
    socket.on("error", () => socket.destroy());
    void (async () => {
      if (path !== "/websocket") return refuse(socket, 404, { message: "no Route matched with those values" });
      const url = new URL(req.url ?? "/", "http://localhost");
      const apiKey = url.searchParams.get("apikey") ?? (req.headers.apikey as string | undefined);
      if (!apiKey) return refuse(socket, 401, { message: "No API key found in request" });
      const checked = await checkToken(opts.jwtSecret, apiKey);
      // Realtime refuses the connection itself (403) when the key does not verify.
      if (!checked.ok) return refuse(socket, 403, { message: `${checked.code}: ${checked.message}` });
      wss.handleUpgrade(req, socket, head, (ws) => {
        const conn: Connection = { ws, vsn: url.searchParams.get("vsn") ?? "1.0.0", apiKey, channels: new Map() };
        hub.connections.add(conn);
        // Frames of one connection are handled in order.
        let queue = Promise.resolve();
        ws.on("message", (data: RawData, isBinary: boolean) => {
          queue = queue.then(async () => {
            const m = decodeFrame(Buffer.isBuffer(data) ? data : Buffer.from(data as ArrayBuffer), isBinary);
            if (m) await onMessage(hub, db, conn, m);
          }).catch((err: unknown) => log(`realtime: message failed: ${(err as Error).message}`));
        });
        ws.on("error", () => ws.terminate());
        ws.on("close", () => {
          for (const ch of [...conn.channels.values()]) removeChannel(hub, ch);
          hub.connections.delete(conn);
        });
      });
    })().catch(() => socket.destroy());
  };

  return {
    upgrade,
    close: async () => {
      // Dropped, not closed per channel: clients reconnect and rejoin, as after a Realtime restart.
      for (const conn of hub.connections) conn.ws.terminate();
      hub.connections.clear();
      wss.close();
      await wal.stop();
      await db.end().catch(() => {});
    },
  };
}
