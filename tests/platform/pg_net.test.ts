/**
 * pg_net behaviour the project relies on, through its public API only
 * (net.http_get/post/delete and net._http_response), so this file passes
 * against the embedded stand-in and against the real extension.
 * Set NET_TEST_HOST (e.g. host.docker.internal) when the database cannot
 * reach this process on 127.0.0.1, as with a Docker `supabase start`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { randomUUID } from "node:crypto";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type pg from "pg";
import { asRole, connect, newUser, sqlState } from "../helpers/db.ts";
import { waitFor } from "../helpers/wait.ts";

type Seen = { method: string; url: string; headers: IncomingMessage["headers"]; body: string };
type ResponseRow = {
  status_code: number | null;
  content_type: string | null;
  headers: Record<string, string> | null;
  content: string | null;
  timed_out: boolean | null;
  error_msg: string | null;
};

const HOST = process.env.NET_TEST_HOST ?? "127.0.0.1";

async function listen(server: Server): Promise<number> {
  await new Promise<void>((ok) => server.listen(0, HOST === "127.0.0.1" ? HOST : "0.0.0.0", ok));
  return (server.address() as AddressInfo).port;
}


describe("pg_net", () => {
  let db: pg.Client;
  let server: Server;
  let base: string;
  const seen: Seen[] = [];
  const held = new Set<ServerResponse>();

  const arrived = (token: string) => waitFor(() => seen.find((s) => s.url.includes(token)), { what: `a request for ${token}`, timeoutMs: 15_000 });
  const responseOf = (id: string) =>
    waitFor(async () => (await db.query<ResponseRow>("select * from net._http_response where id = $1", [id])).rows[0], {
      what: `the response to request ${id}`,
      timeoutMs: 15_000,
    });
  const headerOf = (row: ResponseRow, name: string) =>
    Object.entries(row.headers ?? {}).find(([k]) => k.toLowerCase() === name)?.[1];

  /** Queue a committed GET and wait for it to arrive: everything committed before it has been picked up. */
  async function sentinel(): Promise<void> {
    const token = `sentinel-${randomUUID()}`;
    await db.query("select net.http_get($1)", [`${base}/hook/${token}`]);
    await arrived(token);
  }

  beforeAll(async () => {
    db = await connect();
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks).toString() });
        if (req.url?.startsWith("/slow")) {
          held.add(res); // answered only when the suite ends
          return;
        }
        if (req.url?.startsWith("/reply")) {
          res.writeHead(201, { "Content-Type": "application/json; charset=utf-8", "X-Reply": "yes" });
          res.end(JSON.stringify({ ok: true, n: 1 }));
          return;
        }
        res.writeHead(200, { "Content-Type": "text/plain" });
        res.end("ok");
      });
    });
    base = `http://${HOST}:${await listen(server)}`;
  });

  afterAll(async () => {
    for (const res of held) res.end();
    server.closeAllConnections();
    await new Promise((ok) => server.close(ok));
    await db.end();
  });

  it("net.http_post() sends method, headers and JSON body only once the transaction commits", async () => {
    const token = `post-${randomUUID()}`;
    const writer = await connect();
    try {
      await writer.query("begin");
      await writer.query("select net.http_post($1, body := $2, headers := $3)", [
        `${base}/hook/${token}`,
        { event: "dataset.uploaded", n: 3 },
        { "Content-Type": "application/json", "X-Token": "abc" },
      ]);
      await sentinel(); // committed after ours was queued, and already delivered
      expect(seen.some((s) => s.url.includes(token))).toBe(false);
      await writer.query("commit");
    } finally {
      await writer.end();
    }
    const req = await arrived(token);
    expect(req.method).toBe("POST");
    expect(req.headers["x-token"]).toBe("abc");
    expect(req.headers["content-type"]).toBe("application/json");
    expect(JSON.parse(req.body)).toEqual({ event: "dataset.uploaded", n: 3 });
  });

  it("a request queued in a rolled-back transaction is never sent and never gets a response", async () => {
    const token = `rolled-back-${randomUUID()}`;
    await db.query("begin");
    const { rows } = await db.query<{ id: string }>("select net.http_post($1) as id", [`${base}/hook/${token}`]);
    await db.query("rollback");
    await sentinel();
    expect(seen.some((s) => s.url.includes(token))).toBe(false);
    const after = await db.query("select 1 from net._http_response where id = $1", [rows[0]!.id]);
    expect(after.rowCount).toBe(0);
  });

  it("net.http_get() url-encodes params into the query string after any existing query", async () => {
    const token = `get-${randomUUID()}`;
    await db.query("select net.http_get($1, params := $2)", [
      `${base}/hook/${token}?fixed=1`,
      { q: "a b&c", "ü": "x/y" },
    ]);
    const req = await arrived(token);
    expect(req.method).toBe("GET");
    expect(req.url).toBe(`/hook/${token}?fixed=1&q=a%20b%26c&%C3%BC=x%2Fy`);
    expect(req.body).toBe("");
  });

  it("net.http_delete() sends DELETE with its params and optional JSON body", async () => {
    const token = `delete-${randomUUID()}`;
    await db.query("select net.http_delete($1, params := $2, body := $3)", [
      `${base}/hook/${token}`, { id: "42" }, { reason: "cleanup" },
    ]);
    const req = await arrived(token);
    expect(req.method).toBe("DELETE");
    expect(req.url).toBe(`/hook/${token}?id=42`);
    expect(JSON.parse(req.body)).toEqual({ reason: "cleanup" });
  });

  it("the response is recorded under the request id with status, headers, content type and content", async () => {
    const { rows } = await db.query<{ id: string }>("select net.http_get($1) as id", [`${base}/reply/${randomUUID()}`]);
    const row = await responseOf(rows[0]!.id);
    expect(row).toMatchObject({
      status_code: 201,
      content_type: "application/json; charset=utf-8",
      timed_out: false,
      error_msg: null,
    });
    expect(JSON.parse(row.content ?? "")).toEqual({ ok: true, n: 1 });
    expect(headerOf(row, "x-reply")).toBe("yes");
  });

  it("a server slower than timeout_milliseconds gives timed_out and a timeout message", async () => {
    const { rows } = await db.query<{ id: string }>("select net.http_get($1, timeout_milliseconds := 300) as id", [
      `${base}/slow/${randomUUID()}`,
    ]);
    const row = await responseOf(rows[0]!.id);
    expect(row.timed_out).toBe(true);
    expect(row.status_code).toBeNull();
    expect(row.error_msg).toMatch(/^Timeout of 300 ms reached/);
  });

  it("a refused connection is recorded as an error, not a timeout", async () => {
    const closed = createServer();
    const port = await listen(closed);
    await new Promise((ok) => closed.close(ok));
    const { rows } = await db.query<{ id: string }>("select net.http_get($1) as id", [`http://${HOST}:${port}/`]);
    const row = await responseOf(rows[0]!.id);
    expect(row).toMatchObject({ status_code: null, timed_out: false, error_msg: "Couldn't connect to server" });
  });

  it("net.http_post() rejects a Content-Type other than application/json", async () => {
    const code = await sqlState(
      db.query("select net.http_post($1, headers := $2)", [`${base}/hook/x`, { "Content-Type": "text/plain" }]),
    );
    expect(code).toBe("P0001");
  });

  // pg_net grants net.* to PUBLIC (as on Supabase); the project's migration
  // 20261203130000 revokes that, so clients cannot send requests or read them.
  it("anon and authenticated cannot enqueue with net.http_post() or read the queue (migration 20261203130000)", async () => {
    const user = await newUser(db);
    for (const who of [{ role: "anon" as const }, { role: "authenticated" as const, user }]) {
      expect(await sqlState(asRole(db, who, (c) => c.query("select net.http_post($1)", [`${base}/hook/${randomUUID()}`])))).toBe("42501");
      expect(await sqlState(asRole(db, who, (c) => c.query("select * from net.http_request_queue")))).toBe("42501");
    }
  });
});
