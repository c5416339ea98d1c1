/**
 * The worker functions' door over HTTP (through the gateway): the database's
 * wake-up secret or the service-role key opens it; nothing else does, not the
 * anon key nor a user's token (functions/_shared/auth.ts requireWorkerCaller).
 */
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireWorkerCaller } from "../../functions/_shared/auth.ts";
import { wakeupSecrets } from "../../functions/_shared/env.ts";
import { connect, newUser } from "../helpers/db.ts";
import { testStack } from "../helpers/stack.ts";

const WORKERS = ["dispatch-training-job", "validate-dataset", "poll-training-jobs", "storage-cleanup", "verify-artifacts"];

async function call(worker: string, headers: Record<string, string>): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${testStack().API_URL}/functions/v1/${worker}`, {
    method: "POST", headers: { "content-type": "application/json", ...headers }, body: "{}",
  });
  return { status: res.status, body: await res.json() };
}

describe("worker functions refuse callers without the wake-up secret or the service-role key", () => {
  let db: pg.Client;
  let userToken: string;
  let wakeup: string;
  beforeAll(async () => {
    db = await connect();
    userToken = (await newUser(db, "door")).token;
    wakeup = (await db.query<{ s: string }>(
      "select decrypted_secret as s from vault.decrypted_secrets where name = 'worker_wakeup_secret'",
    )).rows[0]!.s;
  });
  afterAll(async () => {
    await db.end();
  });

  it.each(WORKERS)("%s: no credentials is 401, a wrong wake-up secret, the anon key or a user's token is 403", async (worker) => {
    const anon = testStack().ANON_KEY;
    const cases: Array<[string, Record<string, string>, number]> = [
      ["nothing", {}, 401],
      ["wrong wake-up secret", { "x-worker-wakeup-secret": `${wakeup}x` }, 403],
      ["empty wake-up secret", { "x-worker-wakeup-secret": "" }, 403],
      ["wrong wake-up secret with the anon key", { "x-worker-wakeup-secret": "nope", authorization: `Bearer ${anon}`, apikey: anon }, 403],
      ["anon key", { authorization: `Bearer ${anon}`, apikey: anon }, 403],
      ["user's token", { authorization: `Bearer ${userToken}`, apikey: anon }, 403],
    ];
    for (const [what, headers, status] of cases) {
      const res = await call(worker, headers);
      expect(`${what}: ${res.status}`).toBe(`${what}: ${status}`);
      expect(res.body).toMatchObject({ error: { code: status === 401 ? "unauthorized" : "forbidden" } });
    }
  });

  it("the wake-up secret from Vault and the service-role key both start a run", async () => {
    expect(await call("storage-cleanup", { "x-worker-wakeup-secret": wakeup })).toMatchObject({
      status: 200, body: { success: true, data: { messages: expect.any(Array) } },
    });
    expect(await call("storage-cleanup", { authorization: `Bearer ${testStack().SERVICE_ROLE_KEY}` })).toMatchObject({
      status: 200, body: { success: true },
    });
  });
});

describe("requireWorkerCaller() during a wake-up secret rotation", () => {
  const secrets = wakeupSecrets("old-secret new-secret");
  const req = (headers: Record<string, string>) => new Request("http://x/", { method: "POST", headers });
  const outcome = (p: Promise<unknown>) => p.then((v) => v, (e: { status?: number }) => e.status);

  it("accepts either listed secret and refuses any other value", async () => {
    expect(secrets).toEqual(["old-secret", "new-secret"]);
    const opts = { serviceRoleKey: "service-key", wakeupSecrets: secrets };
    expect(await outcome(requireWorkerCaller(req({ "x-worker-wakeup-secret": "old-secret" }), opts))).toBe("wakeup");
    expect(await outcome(requireWorkerCaller(req({ "x-worker-wakeup-secret": "new-secret" }), opts))).toBe("wakeup");
    expect(await outcome(requireWorkerCaller(req({ "x-worker-wakeup-secret": "old-secret new-secret" }), opts))).toBe(403);
    expect(await outcome(requireWorkerCaller(req({ authorization: "Bearer service-key" }), opts))).toBe("service_role");
    // A wrong wake-up secret is refused even when a valid service key rides along: the header decides.
    expect(await outcome(requireWorkerCaller(req({ "x-worker-wakeup-secret": "x", authorization: "Bearer service-key" }), opts))).toBe(403);
  });

  it("with no WORKER_WAKEUP_SECRET configured, every wake-up secret is refused", async () => {
    expect(await outcome(requireWorkerCaller(req({ "x-worker-wakeup-secret": "" }), { serviceRoleKey: "k" }))).toBe(403);
    expect(await outcome(requireWorkerCaller(req({ "x-worker-wakeup-secret": "anything" }), { serviceRoleKey: "k", wakeupSecrets: wakeupSecrets(undefined) }))).toBe(403);
  });
});
