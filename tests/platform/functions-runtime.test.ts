import { once } from "node:events";
import { request } from "node:http";
import type { AddressInfo } from "node:net";
import { resolve } from "node:path";
import { supabaseClient } from "../helpers/supabase.ts";
import { SignJWT } from "jose";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startApiServer, type ApiServer } from "../../stack/api-server.ts";
import { PROJECT_ROOT } from "../../stack/config.ts";
import { startFunctionsRuntime, type FunctionsRuntime } from "../../stack/functions-runtime.ts";
import { mintUserToken } from "../helpers/tokens.ts";
import { connect, newUser } from "../helpers/db.ts";
import { testStack } from "../helpers/stack.ts";
import { waitFor } from "../helpers/wait.ts";

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe("the stack's /functions/v1 gateway (functions/health, verify_jwt = true)", () => {
  const url = () => `${testStack().API_URL}/functions/v1/health`;
  let db: pg.Client;
  beforeAll(async () => {
    db = await connect();
  });
  afterAll(async () => {
    await db.end();
  });

  it("rejects a request without Authorization with 401 as the Supabase relay does", async () => {
    const res = await fetch(url());
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ msg: "Error: Missing authorization header" });
  });

  it("rejects a non-Bearer Authorization header with 401", async () => {
    const res = await fetch(url(), { headers: { authorization: `Basic ${testStack().ANON_KEY}` } });
    expect(res.status).toBe(401);
  });

  it("rejects tampered, foreign-signed, expired and malformed tokens with 401 Invalid JWT", async () => {
    const s = testStack();
    const [header, payload, signature] = s.ANON_KEY.split(".");
    const forged = Buffer.from(JSON.stringify({ iss: "supabase-demo", role: "service_role" })).toString("base64url");
    const tampered = `${header}.${forged}.${signature}`;
    const foreign = await new SignJWT({ role: "anon" })
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setExpirationTime("1h")
      .sign(new TextEncoder().encode("another-secret-that-is-at-least-32-characters"));
    const expired = await mintUserToken(s.JWT_SECRET, "8d3b2a4e-0000-4000-8000-000000000001", { expiresIn: -60 });
    for (const token of [tampered, foreign, expired, "not-a-jwt", `${header}.${payload}`]) {
      const res = await fetch(url(), { headers: bearer(token) });
      expect(res.status, token).toBe(401);
      expect(await res.json()).toEqual({ msg: "Invalid JWT" });
    }
  });

  it("lets the anon key through and the function reaches Postgres via the injected SUPABASE_DB_URL", async () => {
    const res = await fetch(url(), { headers: bearer(testStack().ANON_KEY) });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ success: true, data: { ok: true, db: 1, function: "health" } });
  });

  it("lets a signed-in user's access token and the service role key through", async () => {
    const user = await newUser(db);
    for (const token of [user.token, testStack().SERVICE_ROLE_KEY]) {
      const res = await fetch(url(), { headers: bearer(token) });
      expect(res.status).toBe(200);
    }
  });

  it("answers supabase-js functions.invoke() unchanged", async () => {
    const supabase = supabaseClient(testStack().ANON_KEY);
    const { data, error } = await supabase.functions.invoke("health");
    expect(error).toBeNull();
    expect(data).toEqual({ success: true, data: { ok: true, db: 1, function: "health" } });
  });

  it("passes CORS preflights to the function without a token", async () => {
    const res = await fetch(url(), { method: "OPTIONS", headers: { origin: "http://localhost:3000" } });
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
  });

  it("answers 404 Function not found for a function that is not declared", async () => {
    const res = await fetch(`${testStack().API_URL}/functions/v1/no-such-function`, { headers: bearer(testStack().ANON_KEY) });
    expect(res.status).toBe(404);
    expect(await res.text()).toBe("Function not found");
  });
});

describe("the functions runtime with fixture functions (tests/fixtures/functions)", () => {
  const fixtures = resolve(PROJECT_ROOT, "tests/fixtures/functions");
  const logs: string[] = [];
  let runtime: FunctionsRuntime;
  let api: ApiServer;
  let base: string;
  const env = {
    SUPABASE_URL: "http://127.0.0.1:9/injected",
    SUPABASE_ANON_KEY: "anon-key",
    SUPABASE_SERVICE_ROLE_KEY: "service-key",
    SUPABASE_DB_URL: "postgresql://postgres:postgres@127.0.0.1:9/postgres",
  };

  beforeAll(async () => {
    process.env.FUNCTIONS_RUNTIME_TEST_SENTINEL = "must not reach functions";
    runtime = await startFunctionsRuntime({
      root: PROJECT_ROOT,
      jwtSecret: testStack().JWT_SECRET,
      env,
      configPath: resolve(fixtures, "config.toml"),
      envFile: resolve(fixtures, "fixture.env"),
      log: (line) => logs.push(line),
    });
    api = await startApiServer(0, { "/functions/v1": runtime.handler });
    base = `http://127.0.0.1:${(api.server.address() as AddressInfo).port}/functions/v1`;
  });
  afterAll(async () => {
    delete process.env.FUNCTIONS_RUNTIME_TEST_SENTINEL;
    await api?.close();
    await runtime?.close();
  });

  type Echo = {
    method: string; path: string; search: string; headers: Record<string, string>; body: string; pid: number;
    env: Record<string, string | null> & { names: string[] };
  };
  const echo = async (path: string, init?: RequestInit): Promise<Echo> => {
    const res = await fetch(`${base}${path}`, init);
    expect(res.status).toBe(200);
    return (await res.json()) as Echo;
  };

  it("serves a verify_jwt = false function to unauthenticated callers, and defaults verify_jwt to true", async () => {
    expect((await fetch(`${base}/echo`)).status).toBe(200);
    expect((await fetch(`${base}/guarded`)).status).toBe(401);
    expect((await fetch(`${base}/guarded`, { headers: bearer(testStack().ANON_KEY) })).status).toBe(200);
  });

  it("does not serve functions with enabled = false", async () => {
    expect((await fetch(`${base}/disabled`)).status).toBe(404);
    expect([...runtime.functions.keys()].sort()).toEqual(["broken", "crash", "default-export", "echo", "guarded"]);
  });

  it("passes method, the path from /<slug> on, query string, headers and body through", async () => {
    const seen = await echo("/echo/jobs/42?expand=events&limit=2", {
      method: "PATCH",
      headers: { "content-type": "application/json", "x-request-id": "req-1" },
      body: JSON.stringify({ status: "cancelled" }),
    });
    expect(seen).toMatchObject({
      method: "PATCH",
      path: "/echo/jobs/42",
      search: "?expand=events&limit=2",
      body: '{"status":"cancelled"}',
    });
    expect(seen.headers).toMatchObject({ "content-type": "application/json", "x-request-id": "req-1" });
  });

  it("streams the response back while the request body is still being sent", async () => {
    const req = request(`${base}/echo/stream`, { method: "POST", headers: { "content-type": "application/octet-stream" } });
    req.write("first;");
    const [res] = (await once(req, "response")) as [import("node:http").IncomingMessage];
    const chunks = res[Symbol.asyncIterator]();
    const first = await chunks.next();
    expect(Buffer.from(first.value as Buffer).toString()).toBe("first;");
    req.end("second");
    let rest = "";
    for (let c = await chunks.next(); !c.done; c = await chunks.next()) rest += Buffer.from(c.value as Buffer).toString();
    expect(rest).toBe("second");
  });

  it("injects the platform env, adds env-file secrets, and keeps SUPABASE_* and the stack's own env out of the file's reach", async () => {
    const seen = await echo("/echo");
    expect(seen.env).toMatchObject({
      SUPABASE_URL: env.SUPABASE_URL,
      SUPABASE_DB_URL: env.SUPABASE_DB_URL,
      GREETING: "hello from the env file",
      QUOTED: "single # quoted",
      PLAIN: "plain value",
    });
    expect(seen.env.names).not.toContain("FUNCTIONS_RUNTIME_TEST_SENTINEL");
    expect(seen.env.names).not.toContain("HOME");
    expect(logs.some((l) => l.includes('skipping "SUPABASE_URL"'))).toBe(true);
  });

  it("serves a function that exports default { fetch } instead of calling Deno.serve()", async () => {
    const res = await fetch(`${base}/default-export/x`);
    expect(await res.json()).toEqual({ servedBy: "default export", path: "/default-export/x" });
  });

  it("runs EdgeRuntime.waitUntil() tasks after the response", async () => {
    const tag = `t-${Date.now()}`;
    expect((await fetch(`${base}/echo/background?tag=${tag}`)).status).toBe(202);
    await waitFor(() => logs.some((l) => l === `[functions/echo] background task done: ${tag}`));
  });

  it("answers a request whose process dies with 500 WORKER_ERROR and boots a new process for the next one", async () => {
    const before = await (await fetch(`${base}/crash`)).json();
    const crashed = await fetch(`${base}/crash/exit`);
    expect(crashed.status).toBe(500);
    expect(await crashed.json()).toMatchObject({ code: "WORKER_ERROR" });
    const after = await fetch(`${base}/crash`);
    expect(after.status).toBe(200);
    expect((await after.json()).pid).not.toBe(before.pid);
  });

  it("answers 503 BOOT_ERROR for a function that fails at start-up, on every request, with its error in the log", async () => {
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`${base}/broken`);
      expect(res.status).toBe(503);
      expect(await res.json()).toEqual({ code: "BOOT_ERROR", message: "Worker failed to boot (please check logs)" });
    }
    expect(logs.some((l) => l.startsWith("[functions/broken]") && l.includes("Invalid function environment"))).toBe(true);
  });

  it("close() kills every function process", async () => {
    const pids = [(await echo("/echo")).pid, (await echo("/guarded", { headers: bearer(testStack().ANON_KEY) })).pid];
    const rt2 = await startFunctionsRuntime({
      root: PROJECT_ROOT, jwtSecret: testStack().JWT_SECRET, env, configPath: resolve(fixtures, "config.toml"), log: () => {},
    });
    const api2 = await startApiServer(0, { "/functions/v1": rt2.handler });
    const res = await fetch(`http://127.0.0.1:${(api2.server.address() as AddressInfo).port}/functions/v1/crash`);
    const pid2 = ((await res.json()) as { pid: number }).pid;
    await api2.close();
    await rt2.close();
    expect(isAlive(pid2)).toBe(false);
    // The shared runtime's processes are untouched by another runtime's close().
    expect(pids.map(isAlive)).toEqual([true, true]);
  });
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
