/**
 * The gateway's request body limits (stack/body-limits.ts): oversized bodies
 * are 413 before they are read, stalled bodies 408, malformed framing 400,
 * every answer JSON, and the gateway keeps serving everyone else afterwards.
 * Raw sockets where fetch cannot lie about a body.
 */
import { connect as tcpConnect } from "node:net";
import { request } from "node:http";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LocalUser } from "../../stack/jwt.ts";
import { connect, newUser } from "../helpers/db.ts";
import { testStack } from "../helpers/stack.ts";
import { supabaseClient } from "../helpers/supabase.ts";

const MiB = 1024 * 1024;
const FUNCTIONS = ["list-artifacts", "health", "gpu-webhook", "validate-dataset"];

/** Send raw bytes, collect everything the server answers until it closes (or `until` matches). */
function raw(head: string, body: string | Buffer, opts: { until?: RegExp; timeoutMs?: number } = {}): Promise<string> {
  const api = new URL(testStack().API_URL);
  return new Promise((resolve, reject) => {
    const socket = tcpConnect(Number(api.port), api.hostname);
    let got = "";
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete answer within ${opts.timeoutMs ?? 60_000} ms; got: ${got.slice(0, 300)}`));
    }, opts.timeoutMs ?? 60_000);
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(got);
    };
    socket.on("data", (d) => {
      got += d.toString("latin1");
      if (opts.until?.test(got)) done();
    });
    socket.on("close", done);
    socket.on("error", () => done());
    socket.write(head);
    socket.write(body);
  });
}

const statusOf = (answer: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1]);
const jsonOf = (answer: string) => JSON.parse(answer.slice(answer.indexOf("\r\n\r\n") + 4)) as Record<string, unknown>;

describe("gateway body limits", () => {
  let db: pg.Client;
  let user: LocalUser;
  beforeAll(async () => {
    db = await connect();
    user = await newUser(db, "limits");
  });
  afterAll(async () => {
    await db.end();
  });

  const auth = () => ({ authorization: `Bearer ${user.token}`, apikey: testStack().ANON_KEY });

  it.each(FUNCTIONS)("a 5 MiB JSON body to %s is answered 413 LT520 (not a reset)", async (fn) => {
    const res = await fetch(`${testStack().FUNCTIONS_URL}/${fn}`, {
      method: "POST", headers: { ...auth(), "content-type": "application/json" },
      body: JSON.stringify({ job_id: "x", pad: "a".repeat(5 * MiB) }),
    });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ error: { code: "LT520" } });
  });

  it("a Content-Length of 10 GB with 1 KiB sent is answered 413 at once", async () => {
    const answer = await raw(
      `POST /functions/v1/health HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${testStack().ANON_KEY}\r\nContent-Type: application/json\r\nContent-Length: ${10 * 1024 ** 3}\r\n\r\n`,
      "a".repeat(1024),
      { until: /\r\n\r\n\{.*\}$/s },
    );
    expect(statusOf(answer)).toBe(413);
    expect(jsonOf(answer)).toMatchObject({ error: { code: "LT520" } });
  });

  it("a chunked body growing past the 2 MiB cap is answered 413", async () => {
    const api = new URL(testStack().FUNCTIONS_URL);
    const status = await new Promise<number>((resolve, reject) => {
      const req = request({
        host: api.hostname, port: api.port, path: "/functions/v1/list-artifacts", method: "POST",
        headers: { ...auth(), "content-type": "application/json", "transfer-encoding": "chunked" },
      }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on("error", reject);
      const chunk = Buffer.alloc(256 * 1024, 0x61);
      let sent = 0;
      const pump = () => {
        while (sent < 3 * MiB) {
          sent += chunk.length;
          if (!req.write(chunk)) return void req.once("drain", pump);
        }
        req.end();
      };
      pump();
    });
    expect(status).toBe(413);
  });

  it("a body that stops arriving is answered 408 LT521", async () => {
    const answer = await raw(
      `POST /functions/v1/health HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${testStack().ANON_KEY}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n`,
      '{"partial":',
      { until: /\r\n\r\n\{.*\}$/s },
    );
    expect(statusOf(answer)).toBe(408);
    expect(jsonOf(answer)).toMatchObject({ error: { code: "LT521" } });
  });

  it("bytes beyond the Content-Length are a malformed request: 400", async () => {
    const answer = await raw(
      `POST /functions/v1/health HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${testStack().ANON_KEY}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n`,
      "{}\u0001\u0002 not a request line\r\n\r\n",
    );
    expect(answer).toMatch(/HTTP\/1\.1 400 Bad Request/);
  });

  it("Storage: a Content-Length over the file size limit is 413 EntityTooLarge before the body is read", async () => {
    const answer = await raw(
      `POST /storage/v1/object/lora-datasets/${user.id}/x/train.jsonl HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${user.token}\r\nContent-Type: text/plain\r\nContent-Length: ${10 * 1024 ** 3}\r\n\r\n`,
      "a".repeat(1024),
      { until: /\r\n\r\n\{.*\}$/s },
    );
    expect(statusOf(answer)).toBe(413);
    expect(jsonOf(answer)).toMatchObject({ statusCode: "413", code: "EntityTooLarge" });
  });

  it("Storage still takes a dataset larger than the functions' cap (3 MiB through supabase-js)", async () => {
    const path = (await db.query<{ p: string }>(
      "insert into public.datasets (user_id, name, file_name) values ($1, 'big', 'train.jsonl') returning storage_path as p", [user.id],
    )).rows[0]!.p;
    const line = '{"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello"}]}\n';
    const body = line.repeat(Math.ceil((3 * MiB) / line.length));
    const { error } = await supabaseClient(testStack().ANON_KEY, user.token).storage.from("lora-datasets").upload(path, body);
    expect(error).toBeNull();
    const size = (await db.query("select (metadata ->> 'size')::bigint as n from storage.objects where name = $1", [path])).rows[0].n;
    expect(Number(size)).toBe(Buffer.byteLength(body));
  });

  it("after a burst of oversized, lying and stalled requests, a normal list-artifacts call succeeds", async () => {
    const head = (len: number) =>
      `POST /functions/v1/list-artifacts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${user.token}\r\nContent-Type: application/json\r\nContent-Length: ${len}\r\n\r\n`;
    const burst = [
      ...Array.from({ length: 8 }, () => raw(head(10 * 1024 ** 3), "a".repeat(1024), { until: /\r\n\r\n\{.*\}$/s })),
      ...Array.from({ length: 4 }, () => raw(head(1000), "{", { until: /\r\n\r\n\{.*\}$/s })),
      ...Array.from({ length: 4 }, () =>
        fetch(`${testStack().FUNCTIONS_URL}/list-artifacts`, {
          method: "POST", headers: { ...auth(), "content-type": "application/json" }, body: "a".repeat(5 * MiB),
        }).then(async (r) => `HTTP/1.1 ${r.status} \r\n\r\n${await r.text()}`)),
    ];
    const answers = await Promise.all(burst);
    expect(answers.map(statusOf).sort()).toEqual([...Array(4).fill(408), ...Array(12).fill(413)].sort());

    const { data, error } = await supabaseClient(testStack().ANON_KEY, user.token).functions.invoke("list-artifacts", {
      body: { job_id: "00000000-0000-4000-8000-000000000000" },
    });
    // The job does not exist: the function ran and answered (404 LT420), the gateway did not fail it.
    expect(data).toBeNull();
    const res = (error as { context?: Response }).context!;
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: { code: "LT420" } });
  });
});
