/**
 * Realtime sessions through supabase-js: the token is checked at join with
 * Realtime's error replies, an expiring token stops delivery, a refreshed
 * token that does not verify closes the channel, and a dropped connection
 * reconnects and resubscribes. The API key is checked at connect.
 */
import type pg from "pg";
import { SignJWT } from "jose";
import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "../helpers/db.ts";
import { testStack } from "../helpers/stack.ts";
import { waitFor } from "../helpers/wait.ts";
import { idsSeen, shortLivedToken, userWithDataset, watch, type Row, type Watcher } from "./support.ts";

const subscribedCount = (w: Watcher) =>
  w.system.filter((s) => s.extension === "postgres_changes" && s.status === "ok").length;

/** The HTTP status a WebSocket upgrade gets. */
function upgradeStatus(query: string): Promise<number> {
  return new Promise((ok, fail) => {
    const ws = new WebSocket(`${testStack().API_URL.replace("http", "ws")}/realtime/v1/websocket?vsn=2.0.0${query}`);
    ws.on("unexpected-response", (_req, res) => (ok(res.statusCode ?? 0), ws.terminate()));
    ws.on("open", () => (ok(101), ws.close()));
    ws.on("error", (err) => fail(err));
  });
}

describe("realtime sessions", () => {
  let db: pg.Client;
  const open: Watcher[] = [];
  const track = (w: Watcher) => (open.push(w), w);
  beforeAll(async () => {
    db = await connect();
  });
  afterAll(async () => {
    await Promise.all(open.map((w) => w.close()));
    await db.end();
  });

  it("refuses a connection without an API key (401) or with one that does not verify (403)", async () => {
    expect(await upgradeStatus("")).toBe(401);
    expect(await upgradeStatus("&apikey=not-a-jwt")).toBe(403);
    expect(await upgradeStatus(`&apikey=${testStack().ANON_KEY}`)).toBe(101);
  });

  it("answers a join with an expired token with Realtime's InvalidJWTToken error", async () => {
    const owner = await userWithDataset(db, "rt-expired-join");
    const w = track(await watch({ token: await shortLivedToken(owner, -10), await: false }));
    await waitFor(() => w.statuses.includes("CHANNEL_ERROR"), { timeoutMs: 30_000, what: "CHANNEL_ERROR" });
    expect(w.errors[0]).toMatch(/^InvalidJWTToken: Token has expired \d+ seconds ago$/);
  });

  it("answers a join with a token signed by another secret with JwtSignatureError", async () => {
    const owner = await userWithDataset(db, "rt-forged");
    const forged = await new SignJWT({ sub: owner.id, role: "authenticated" })
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setExpirationTime("1h")
      .sign(new TextEncoder().encode("another-secret-another-secret-another-secret"));
    const w = track(await watch({ token: forged, await: false }));
    await waitFor(() => w.statuses.includes("CHANNEL_ERROR"), { timeoutMs: 30_000, what: "CHANNEL_ERROR" });
    expect(w.errors[0]).toBe("JwtSignatureError: Failed to validate JWT signature");
  });

  it("stops delivering to a subscriber whose token expired, while a live subscriber of the same user still receives", async () => {
    const owner = await userWithDataset(db, "rt-expiring");
    // Long enough to subscribe on a loaded machine, short enough to wait for.
    const expiring = track(await watch({ token: await shortLivedToken(owner, 8), event: "UPDATE" }));
    const live = track(await watch({ token: owner.token, event: "UPDATE" }));
    await waitFor(() => expiring.statuses.includes("CLOSED"), { timeoutMs: 30_000, what: "the expiring channel to close" });
    expect(expiring.system.at(-1)).toMatchObject({ extension: "system", status: "error", message: "Token has expired 0 seconds ago" });
    await db.query("update public.datasets set name = 'after expiry' where id = $1", [owner.dataset]);
    await waitFor(() => idsSeen(live).includes(owner.dataset), { timeoutMs: 30_000, what: "the live subscriber's change" });
    expect(idsSeen(expiring)).not.toContain(owner.dataset);
  });

  it("closes the channel when the client refreshes to a token that does not verify", async () => {
    const owner = await userWithDataset(db, "rt-refresh");
    const w = track(await watch({ token: owner.token }));
    await w.client.realtime.setAuth(`${owner.token.slice(0, -4)}AAAA`);
    await waitFor(() => w.statuses.includes("CLOSED"), { timeoutMs: 30_000, what: "the channel to close" });
    expect(w.system.at(-1)).toMatchObject({ extension: "system", status: "error", message: "Failed to validate JWT signature" });
  });

  it("resubscribes after the connection drops and delivers changes committed after the rejoin", async () => {
    const owner = await userWithDataset(db, "rt-reconnect");
    const w = track(await watch({ token: owner.token, event: "UPDATE" }));
    // What a network failure looks like to the client: the socket dies without a close frame.
    (w.client.realtime as unknown as { socketAdapter: { socket: { conn: WebSocket } } }).socketAdapter.socket.conn.terminate();
    await waitFor(() => subscribedCount(w) === 2, { timeoutMs: 60_000, what: "the channel to rejoin" });
    await db.query("update public.datasets set name = 'after reconnect' where id = $1", [owner.dataset]);
    await waitFor(() => w.changes.find((c) => (c.new as Row).name === "after reconnect"), { timeoutMs: 30_000, what: "the change" });
    expect(w.statuses.filter((s) => s === "SUBSCRIBED")).toHaveLength(2);
  });
});
