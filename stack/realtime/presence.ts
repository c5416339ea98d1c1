/** Presence on public channels: track/untrack with Phoenix presence_state/presence_diff messages. */
import { randomUUID } from "node:crypto";
import { allChannels, send, type Channel, type Hub } from "./hub.ts";

type Metas = Record<string, { metas: Array<Record<string, unknown>> }>;

function stateOf(hub: Hub, topic: string): Metas {
  const out: Metas = {};
  for (const [key, refs] of hub.presence.get(topic) ?? []) {
    out[key] = { metas: [...refs].map(([phx_ref, meta]) => ({ ...meta, phx_ref })) };
  }
  return out;
}

function diff(hub: Hub, topic: string, joins: Metas, leaves: Metas): void {
  for (const ch of allChannels(hub)) {
    if (ch.topic === topic && !ch.private) {
      send(ch.conn, { join_ref: null, ref: null, topic, event: "presence_diff", payload: { joins, leaves } });
    }
  }
}

/** Send the topic's presence state to a channel that just joined. */
export function pushPresenceState(hub: Hub, ch: Channel): void {
  send(ch.conn, { join_ref: ch.joinRef, ref: null, topic: ch.topic, event: "presence_state", payload: stateOf(hub, ch.topic) });
}

/** Remove what a channel tracks and tell everyone on the topic. */
export function untrack(hub: Hub, ch: Channel): void {
  if (!ch.presenceRef) return;
  const refs = hub.presence.get(ch.topic)?.get(ch.presenceKey);
  const meta = refs?.get(ch.presenceRef);
  refs?.delete(ch.presenceRef);
  if (refs && refs.size === 0) hub.presence.get(ch.topic)?.delete(ch.presenceKey);
  const leaves = { [ch.presenceKey]: { metas: [{ ...meta, phx_ref: ch.presenceRef }] } };
  ch.presenceRef = undefined;
  diff(hub, ch.topic, {}, leaves);
}

/** Track `meta` for a channel (replacing what it tracked before). */
export function track(hub: Hub, ch: Channel, meta: Record<string, unknown>): void {
  if (ch.presenceRef) untrack(hub, ch);
  const phx_ref = randomUUID();
  let keys = hub.presence.get(ch.topic);
  if (!keys) hub.presence.set(ch.topic, (keys = new Map()));
  let refs = keys.get(ch.presenceKey);
  if (!refs) keys.set(ch.presenceKey, (refs = new Map()));
  refs.set(phx_ref, meta);
  ch.presenceRef = phx_ref;
  diff(hub, ch.topic, { [ch.presenceKey]: { metas: [{ ...meta, phx_ref }] } }, {});
}
