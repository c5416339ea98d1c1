/** Broadcast and presence on public channels through supabase-js against the Realtime stand-in. */
import type { RealtimeChannel, SupabaseClient } from "@supabase/supabase-js";
import { afterAll, describe, expect, it } from "vitest";
import { testStack } from "../helpers/stack.ts";
import { supabaseClient } from "../helpers/supabase.ts";
import { waitFor } from "../helpers/wait.ts";

describe("realtime broadcast and presence", () => {
  const clients: SupabaseClient[] = [];
  const client = () => {
    const c = supabaseClient(testStack().ANON_KEY);
    clients.push(c);
    return c;
  };
  const joined = async (ch: RealtimeChannel) => {
    let status = "";
    ch.subscribe((s) => (status = s));
    await waitFor(() => status === "SUBSCRIBED", { timeoutMs: 30_000, what: `${ch.topic} to join` });
    return ch;
  };
  afterAll(async () => {
    for (const c of clients) {
      await c.removeAllChannels();
      c.realtime.disconnect();
    }
  });

  it("delivers a broadcast to other members of the topic, not back to the sender unless self is set", async () => {
    const topic = `room-${Math.random().toString(36).slice(2)}`;
    const got: Record<string, unknown[]> = { sender: [], selfish: [], listener: [], elsewhere: [] };
    const listen = (name: string, t: string, config = {}) =>
      joined(client().channel(t, { config }).on("broadcast", { event: "progress" }, (m) => got[name]!.push(m.payload)));
    const sender = await listen("sender", topic);
    await listen("selfish", topic, { broadcast: { self: true } });
    await listen("listener", topic);
    await listen("elsewhere", `${topic}-other`);
    expect(await sender.send({ type: "broadcast", event: "progress", payload: { pct: 42 } })).toBe("ok");
    await waitFor(() => got.listener!.length === 1 && got.selfish!.length === 1, { timeoutMs: 30_000, what: "the broadcast" });
    expect(got.listener).toEqual([{ pct: 42 }]);
    expect(got.sender).toEqual([]);
    expect(got.elsewhere).toEqual([]);
  });

  it("acknowledges a broadcast when ack is set and echoes it to a self-subscribed sender", async () => {
    const got: unknown[] = [];
    const ch = await joined(client().channel(`ack-${Math.random().toString(36).slice(2)}`, { config: { broadcast: { ack: true, self: true } } })
      .on("broadcast", { event: "ping" }, (m) => got.push(m.payload)));
    expect(await ch.send({ type: "broadcast", event: "ping", payload: { n: 1 } })).toBe("ok");
    await waitFor(() => got.length === 1, { timeoutMs: 30_000, what: "the echo" });
    expect(got).toEqual([{ n: 1 }]);
  });

  it("shows a tracked presence to other members and removes it on untrack", async () => {
    const topic = `presence-${Math.random().toString(36).slice(2)}`;
    const watcher = await joined(client().channel(topic).on("presence", { event: "sync" }, () => {}));
    const tracker = await joined(client().channel(topic, { config: { presence: { key: "alice" } } }).on("presence", { event: "sync" }, () => {}));
    expect(await tracker.track({ status: "online" })).toBe("ok");
    await waitFor(() => watcher.presenceState().alice, { timeoutMs: 30_000, what: "alice's presence" });
    expect(watcher.presenceState().alice).toEqual([expect.objectContaining({ status: "online" })]);
    await tracker.untrack();
    await waitFor(() => !watcher.presenceState().alice, { timeoutMs: 30_000, what: "alice to leave" });
  });
});
