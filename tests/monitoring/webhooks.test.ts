/**
 * gpu-webhook through the gateway of the shared stack (verify_jwt = false,
 * Standard Webhooks signature instead): a signed event is applied; every
 * attack is refused and changes nothing; duplicates and out-of-order
 * deliveries never move a job backwards. Jobs run on made-up cluster jobs,
 * so only these requests change them.
 */
import { randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateWebhookSecret } from "../../functions/_shared/webhooks.ts";
import { testStack } from "../helpers/stack.ts";
import { event, oom, points } from "./support/events.ts";
import { job, runningJob, signedPost, snapshot } from "./support/fixtures.ts";

describe("gpu-webhook", () => {
  let db: pg.Pool;
  let url: string;
  let secret: string;
  beforeAll(() => {
    db = new pg.Pool({ connectionString: testStack().DB_URL, max: 3 });
    url = `${testStack().API_URL}/functions/v1/gpu-webhook`;
    secret = testStack().GPU_WEBHOOK_SECRET;
  });
  afterAll(async () => {
    await db.end();
  });
  const running = () => runningJob(db, testStack().JWT_SECRET);
  const progressBody = (ext: string, sequence: number, step: number) =>
    JSON.stringify(event("job.progress", ext, { sequence, step, gpuSeconds: step }, { metrics: points(Math.max(1, step - 4), step) }));
  const errorOf = async (res: Response) => ((await res.json()) as { error: { code: string; details?: { reason?: string } } }).error;

  it("applies a signed event without any Supabase credentials", async () => {
    const j = await running();
    const res = await signedPost(url, secret, progressBody(j.externalJobId, 1, 5));
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ received: true, type: "job.progress", outcome: "applied", metrics_written: 5 });
    expect((await job(db, j.jobId)).current_step).toBe(5);
  });

  describe("refuses attacks and changes nothing", () => {
    const cases: Array<[string, (ext: string, jobId: string, other: string) => Promise<Response>, number, string, string?]> = [
      ["a signature made with another secret", (ext) => signedPost(url, generateWebhookSecret(), progressBody(ext, 1, 5)), 401, "LT430", "no_matching_signature"],
      ["a tampered body", async (ext) => {
        const signed = progressBody(ext, 1, 5);
        const { webhookHeaders } = await import("../../functions/_shared/webhooks.ts");
        const headers = await webhookHeaders(secret, { id: `msg_${randomUUID()}`, body: signed });
        return await fetch(url, { method: "POST", headers: { ...headers, "content-type": "application/json" }, body: signed.replace('"step":5', '"step":95') });
      }, 401, "LT430", "no_matching_signature"],
      ["a timestamp six minutes old", (ext) =>
        signedPost(url, secret, progressBody(ext, 1, 5), { timestamp: Math.floor(Date.now() / 1000) - 360 }), 401, "LT430", "timestamp_too_old"],
      ["a timestamp six minutes ahead", (ext) =>
        signedPost(url, secret, progressBody(ext, 1, 5), { timestamp: Math.floor(Date.now() / 1000) + 360 }), 401, "LT430", "timestamp_too_new"],
      ["no signature headers", (ext) =>
        fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: progressBody(ext, 1, 5) }), 401, "LT430", "missing_headers"],
      ["an event about another tenant's job sent to this job's callback", (_ext, jobId, other) =>
        signedPost(`${url}?job=${jobId}`, secret, JSON.stringify(event("job.failed", other, { sequence: 7 }, { error: oom(3) }))), 403, "LT434"],
      ["a body over the size cap", (ext) => {
        const e = event("job.progress", ext, { sequence: 1, step: 5 }, { metrics: points(1, 5) }) as unknown as Record<string, unknown>;
        return signedPost(url, secret, JSON.stringify({ ...e, padding: "x".repeat(600 * 1024) }), { fresh: true });
      }, 413, "LT432"],
      ["a signed body that is not an event", () => signedPost(url, secret, JSON.stringify({ type: "job.progress", data: {} })), 400, "LT435"],
      ["an event about a cluster job nobody knows", () => signedPost(url, secret, progressBody(`nope_${randomUUID()}`, 1, 5)), 404, "LT433"],
    ];
    it.each(cases)("%s", async (_name, send, status, code, reason) => {
      const j = await running();
      const other = await running();
      const before = [await snapshot(db, j.jobId), await snapshot(db, other.jobId)];
      const res = await send(j.externalJobId, j.jobId, other.externalJobId);
      expect(res.status).toBe(status);
      const error = await errorOf(res);
      expect(error.code).toBe(code);
      if (reason) expect(error.details?.reason).toBe(reason);
      expect([await snapshot(db, j.jobId), await snapshot(db, other.jobId)]).toEqual(before);
    });

    it("a replayed request (same webhook id) is acknowledged as a duplicate and changes nothing", async () => {
      const j = await running();
      const body = progressBody(j.externalJobId, 1, 5);
      const id = `msg_${randomUUID()}`;
      expect((await signedPost(url, secret, body, { id })).status).toBe(200);
      const before = await snapshot(db, j.jobId);
      // Same id, fresh timestamp and signature: exactly what a captured-and-resent or redelivered request looks like.
      const again = await signedPost(url, secret, body, { id });
      expect(again.status).toBe(200);
      expect(await again.json()).toMatchObject({ outcome: "duplicate" });
      expect(await snapshot(db, j.jobId)).toEqual(before);
    });

    it("other methods are refused", async () => {
      const res = await fetch(url, { method: "GET" });
      expect(res.status).toBe(405);
    });
  });

  it("accepts a message signed with several keys during a rotation when one matches", async () => {
    const j = await running();
    const res = await signedPost(url, [generateWebhookSecret(), secret], progressBody(j.externalJobId, 1, 5));
    expect(res.status).toBe(200);
  });

  it("out-of-order and duplicate deliveries never move a job backwards", async () => {
    const j = await running();
    const send = (sequence: number, step: number, id?: string) =>
      signedPost(url, secret, progressBody(j.externalJobId, sequence, step), id ? { id } : {});
    expect((await send(3, 30)).status).toBe(200);
    const late = await send(2, 20);
    expect(await late.json()).toMatchObject({ outcome: "stale", metrics_written: 5 });
    expect((await send(3, 30)).status).toBe(200); // the same event under a new id: stale, nothing moves
    const row = await job(db, j.jobId);
    expect(row.current_step).toBe(30);
    const failed = JSON.stringify(event("job.failed", j.externalJobId, { sequence: 5, step: 31 }, {
      error: { code: "invalid_config", message: "r too large", retryable: false, category: "user", step: null },
    }));
    const id = `msg_${randomUUID()}`;
    expect((await signedPost(url, secret, failed, { id })).status).toBe(200);
    expect((await signedPost(url, secret, failed, { id })).status).toBe(200);
    expect((await send(4, 40)).status).toBe(200); // older than the failure: the job stays failed
    const end = await job(db, j.jobId);
    expect(end).toMatchObject({ status: "failed", current_step: 31 });
    expect(end.error).toMatchObject({ code: "LT404", kind: "user" });
    const notes = await db.query("select count(*)::int as n from public.notifications where job_id = $1 and kind = 'job.failed'", [j.jobId]);
    expect(notes.rows[0].n).toBe(1);
  });
});
