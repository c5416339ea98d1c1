/**
 * The typed GPU cluster client against the simulator over real HTTP on
 * 127.0.0.1, one injected fault at a time. Sleeps are injected and recorded,
 * so backoff and Retry-After are asserted without waiting for them.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { GpuClusterClient, type GpuClusterClientOptions } from "../../functions/_shared/gpu/client.ts";
import {
  classifyJobError,
  type GpuClusterError,
  PermanentSystemError,
  PermanentUserError,
  RetryableError,
  UnknownOutcomeError,
} from "../../functions/_shared/gpu/errors.ts";
import { TERMINAL_JOB_STATUSES, type Job } from "../../types/gpu-cluster.ts";
import { type GpuSimulator, startGpuSimulator } from "../../gpu-cluster/simulator/index.ts";
import { type FakeBackend, startFakeBackend } from "./support/backend.ts";
import { API_KEY, config, jsonl, submitBody, WEBHOOK_SECRET, waitFor } from "./support/fixtures.ts";

let sim: GpuSimulator;
let backend: FakeBackend;
let datasetUrl: string;
let delays: number[];

beforeAll(async () => {
  backend = await startFakeBackend({ webhookSecret: WEBHOOK_SECRET });
  datasetUrl = backend.dataset("client.jsonl", jsonl(200));
  sim = await startGpuSimulator({ apiKey: API_KEY, webhookSecret: WEBHOOK_SECRET, timeScale: 5000, tickMs: 10 });
});
afterAll(async () => {
  await sim?.close();
  await backend?.close();
});
beforeEach(() => {
  sim.setFaults({});
  delays = [];
});

function client(opts: Partial<GpuClusterClientOptions> = {}): GpuClusterClient {
  return new GpuClusterClient({
    baseUrl: sim.url,
    apiKey: API_KEY,
    timeoutMs: 2000,
    maxAttempts: 4,
    baseDelayMs: 100,
    maxDelayMs: 1000,
    sleep: async (ms) => {
      delays.push(ms);
    },
    ...opts,
  });
}

async function failure(promise: Promise<unknown>): Promise<GpuClusterError> {
  try {
    await promise;
  } catch (err) {
    return err as GpuClusterError;
  }
  throw new Error("expected the call to fail");
}

const body = (extra = {}) =>
  submitBody(datasetUrl, { callback_url: backend.webhookUrl, upload_urls_callback_url: backend.uploadUrlsUrl, ...extra });

async function finished(c: GpuClusterClient, id: string): Promise<Job> {
  return waitFor(async () => {
    const job = await c.getJob(id);
    return TERMINAL_JOB_STATUSES.includes(job.status) ? job : undefined;
  }, { what: `job ${id} to finish` });
}

describe("GpuClusterClient against the simulator", () => {
  it("submits a job and follows it to success with metrics, checkpoints, artifacts and GPU seconds", async () => {
    const c = client();
    const { job, replayed } = await c.submitJob(body(), { idempotencyKey: "ok-1" });
    expect(replayed).toBe(false);
    expect(job.status).toBe("queued");
    const done = await finished(c, job.id);
    expect(done.status).toBe("succeeded");
    expect(done.progress).toMatchObject({ step: 50, total_steps: 50, fraction: 1 }); // ceil(200*2/(4*2))
    expect(done.metrics.at(-1)?.step).toBe(50);
    expect(done.checkpoints.map((k) => k.step)).toEqual([20, 40]);
    expect(done.artifacts.map((a) => a.path).sort()).toEqual(["adapter_config.json", "adapter_model.safetensors"]);
    expect(done.gpu_seconds).toBeGreaterThan(0);
    expect(done.error).toBeNull();
  });

  it("getJob() with metricsSinceStep returns only later metric points", async () => {
    const c = client();
    const { job } = await c.submitJob(body(), { idempotencyKey: "since-1" });
    await finished(c, job.id);
    const later = await c.getJob(job.id, { metricsSinceStep: 40 });
    expect(later.metrics.map((m) => m.step)).toEqual([41, 42, 43, 44, 45, 46, 47, 48, 49, 50]);
  });

  it("retries 5xx answers with full-jitter exponential backoff and ends with one cluster job", async () => {
    sim.setFaults({ script: [{ fault: "server_error", on: "submit", status: 500 }, { fault: "server_error", on: "submit", status: 502 }] });
    const before = sim.jobs.count();
    const { job } = await client({ random: () => 0.999 }).submitJob(body(), { idempotencyKey: "5xx-1" });
    expect(delays).toEqual([99, 199]); // floor(0.999 * 100 * 2^(n-1))
    expect(sim.jobs.count()).toBe(before + 1);
    expect(sim.jobs.byIdempotencyKey("5xx-1").map((j) => j.id)).toEqual([job.id]);
  });

  it("caps the backoff at maxDelayMs and gives up after maxAttempts with a RetryableError", async () => {
    sim.setFaults({ serverErrorRate: 1, serverErrorStatuses: [500] });
    const err = await failure(client({ random: () => 0.999, maxAttempts: 6 }).getJob("job_any"));
    expect(err).toBeInstanceOf(RetryableError);
    expect(err.attempts).toBe(6);
    expect(err.upstreamStatus).toBe(500);
    expect(delays).toEqual([99, 199, 399, 799, 999]);
  });

  it("rides out a 50 % rate of 5xx answers on reads by retrying", async () => {
    const c = client({ maxAttempts: 8 });
    const { job } = await c.submitJob(body(), { idempotencyKey: "rate-5xx" });
    sim.setFaults({ serverErrorRate: 0.5, seed: 3 });
    for (let i = 0; i < 20; i++) expect((await c.getJob(job.id)).id).toBe(job.id);
    expect(delays.length).toBeGreaterThan(5); // about one retry per call
  });

  it("injected latency delays every answer, and beyond the timeout it is a timeout", async () => {
    sim.setFaults({ latencyMs: 200 });
    const started = Date.now();
    await expect(client().findJobByIdempotencyKey("none")).resolves.toBeNull();
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    const err = await failure(client({ timeoutMs: 50, maxAttempts: 1 }).findJobByIdempotencyKey("none"));
    expect(err).toBeInstanceOf(RetryableError);
    expect(err.message).toMatch(/timed out/);
  });

  it("honours Retry-After on 429 instead of its own backoff", async () => {
    sim.setFaults({ script: [{ fault: "rate_limit", retryAfterSeconds: 7 }, { fault: "rate_limit", retryAfterSeconds: 2 }] });
    const { job } = await client().submitJob(body(), { idempotencyKey: "429-1" });
    expect(job.id).toMatch(/^job_/);
    expect(delays).toEqual([7000, 2000]);
  });

  it("does not wait for a Retry-After beyond maxRetryAfterMs: the RetryableError carries it", async () => {
    sim.setFaults({ rateLimitRate: 1, retryAfterSeconds: 120 });
    const err = await failure(client({ maxRetryAfterMs: 30_000 }).getJob("job_any"));
    expect(err).toBeInstanceOf(RetryableError);
    expect(err.retryAfterMs).toBe(120_000);
    expect(err.attempts).toBe(1);
    expect(delays).toEqual([]);
  });

  it("times out a hanging read, retries it, and gives up with a RetryableError", async () => {
    sim.setFaults({ timeoutRate: 1 });
    const started = Date.now();
    const err = await failure(client({ timeoutMs: 150, maxAttempts: 2 }).getJob("job_any"));
    expect(err).toBeInstanceOf(RetryableError);
    expect(err.message).toMatch(/timed out after 150 ms/);
    expect(err.attempts).toBe(2);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it("a submit without an idempotency key that times out is an UnknownOutcomeError and is not retried", async () => {
    sim.setFaults({ script: [{ fault: "timeout", on: "submit" }] });
    const err = await failure(client({ timeoutMs: 150 }).submitJob(body()));
    expect(err).toBeInstanceOf(UnknownOutcomeError);
    expect(err.attempts).toBe(1);
    expect(delays).toEqual([]);
  });

  it("accepted-but-lost submits end in UnknownOutcomeError and the lookup by key finds exactly one job", async () => {
    sim.setFaults({ lostSubmissionRate: 1 });
    const before = sim.jobs.count();
    const err = await failure(client({ maxAttempts: 3 }).submitJob(body(), { idempotencyKey: "lost-1" }));
    expect(err).toBeInstanceOf(UnknownOutcomeError);
    expect(err.attempts).toBe(3);
    expect(err.message).toMatch(/lost the connection/);
    sim.setFaults({});
    const found = await client().findJobByIdempotencyKey("lost-1");
    expect(found?.idempotency_key).toBe("lost-1");
    expect(sim.jobs.count()).toBe(before + 1);
    expect(sim.jobs.byIdempotencyKey("lost-1").map((j) => j.id)).toEqual([found?.id]);
  });

  it("a lost submit without an idempotency key is not retried (a retry could create a second job)", async () => {
    sim.setFaults({ lostSubmissionRate: 1 });
    const before = sim.jobs.count();
    const err = await failure(client().submitJob(body()));
    expect(err).toBeInstanceOf(UnknownOutcomeError);
    expect(err.attempts).toBe(1);
    expect(sim.jobs.count()).toBe(before + 1);
  });

  it("findJobByIdempotencyKey() answers null for a key the cluster has never seen", async () => {
    await expect(client().findJobByIdempotencyKey("never-used")).resolves.toBeNull();
  });

  it("retries a 503 capacity refusal after its Retry-After, then succeeds", async () => {
    sim.setFaults({ script: [{ fault: "capacity", on: "submit", retryAfterSeconds: 3 }] });
    const { job } = await client().submitJob(body());
    expect(job.status).toBe("queued");
    expect(delays).toEqual([3000]);
  });

  it("reports a lasting capacity refusal as a RetryableError with the cluster's code and creates no job", async () => {
    sim.setFaults({ capacityRefusalRate: 1, retryAfterSeconds: 1 });
    const before = sim.jobs.count();
    const err = await failure(client({ maxAttempts: 2 }).submitJob(body(), { idempotencyKey: "cap-1" }));
    expect(err).toBeInstanceOf(RetryableError);
    expect(err).toMatchObject({ upstreamStatus: 503, upstreamCode: "capacity_unavailable", retryAfterMs: 1000, attempts: 2 });
    expect(sim.jobs.count()).toBe(before);
  });

  it("retries a submit without a key after connection refused (the request never left)", async () => {
    const nobody = await startGpuSimulator({ apiKey: API_KEY, webhookSecret: WEBHOOK_SECRET });
    await nobody.close(); // its port is now free: connecting is refused
    const closed = client({ baseUrl: nobody.url, maxAttempts: 3 });
    const err = await failure(closed.submitJob(body()));
    expect(err).toBeInstanceOf(RetryableError);
    expect(err.attempts).toBe(3);
    expect(delays).toHaveLength(2);
  });
});

describe("idempotency", () => {
  it("the same key and body twice give the same job, the second marked replayed", async () => {
    const c = client();
    const first = await c.submitJob(body(), { idempotencyKey: "idem-1" });
    const second = await c.submitJob(body(), { idempotencyKey: "idem-1" });
    expect(second.job.id).toBe(first.job.id);
    expect([first.replayed, second.replayed]).toEqual([false, true]);
    expect(sim.jobs.byIdempotencyKey("idem-1")).toHaveLength(1);
  });

  it("the same key with a different body is a 409 PermanentUserError and is not retried", async () => {
    const c = client();
    await c.submitJob(body(), { idempotencyKey: "idem-2" });
    const err = await failure(c.submitJob(body({ config: config({ r: 8 }) }), { idempotencyKey: "idem-2" }));
    expect(err).toBeInstanceOf(PermanentUserError);
    expect(err).toMatchObject({ upstreamStatus: 409, upstreamCode: "idempotency_key_reused", attempts: 1 });
    expect(sim.jobs.byIdempotencyKey("idem-2")).toHaveLength(1);
  });
});

describe("permanent errors", () => {
  it("an invalid configuration is a 422 PermanentUserError", async () => {
    const raw = new GpuClusterClient({ baseUrl: sim.url, apiKey: API_KEY, sleep: async (ms) => void delays.push(ms) });
    // Bypass the client's own validation to see the cluster's answer.
    const res = await fetch(`${sim.url}/v1/jobs`, {
      method: "POST",
      headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ dataset_url: datasetUrl, config: { ...config(), r: 0 } }),
    });
    expect(res.status).toBe(422);
    expect(await res.json()).toMatchObject({ error: { code: "invalid_config", retryable: false } });
    const err = await failure(raw.submitJob(body({ config: config({ gpu_type: "TPU-v9" }) })));
    expect(err).toBeInstanceOf(PermanentUserError);
    expect(err).toMatchObject({ upstreamStatus: 422, upstreamCode: "invalid_config" });
    expect(delays).toEqual([]);
  });

  it("a request that fails the contract's schema is a PermanentUserError before any call", async () => {
    const before = sim.jobs.count();
    const err = await failure(client().submitJob(body({ config: config({ lr_scheduler: "step" as "linear" }) })));
    expect(err).toBeInstanceOf(PermanentUserError);
    expect(err.attempts).toBe(0);
    expect(err.details).toEqual([expect.objectContaining({ path: "config.lr_scheduler" })]);
    expect(sim.jobs.count()).toBe(before);
  });

  it("a wrong API key is a PermanentSystemError (401)", async () => {
    const err = await failure(client({ apiKey: "wrong" }).getJob("job_any"));
    expect(err).toBeInstanceOf(PermanentSystemError);
    expect(err).toMatchObject({ upstreamStatus: 401, upstreamCode: "unauthorized", attempts: 1 });
  });

  it("an unknown job is a 404 PermanentUserError", async () => {
    const err = await failure(client().getJob("job_missing"));
    expect(err).toBeInstanceOf(PermanentUserError);
    expect(err).toMatchObject({ upstreamStatus: 404, upstreamCode: "job_not_found" });
  });

  it("a 2xx body that violates the contract is a PermanentSystemError", async () => {
    const liar = client({ fetch: async () => new Response(JSON.stringify({ id: 1 }), { status: 200 }) });
    const err = await failure(liar.getJob("job_any"));
    expect(err).toBeInstanceOf(PermanentSystemError);
    expect(err.details).toEqual(expect.arrayContaining([expect.objectContaining({ path: "id" })]));
  });
});

describe("cancel and job failures", () => {
  it("cancels a queued job, is a no-op the second time, and refuses to cancel a finished one", async () => {
    const c = client();
    const slow = await startGpuSimulator({ apiKey: API_KEY, webhookSecret: WEBHOOK_SECRET, timeScale: 1 });
    try {
      const sc = client({ baseUrl: slow.url });
      const { job } = await sc.submitJob(body());
      expect((await sc.cancelJob(job.id)).status).toBe("cancelled");
      expect((await sc.cancelJob(job.id)).status).toBe("cancelled");
    } finally {
      await slow.close();
    }
    const { job } = await c.submitJob(body());
    await finished(c, job.id);
    const err = await failure(c.cancelJob(job.id));
    expect(err).toBeInstanceOf(PermanentUserError);
    expect(err).toMatchObject({ upstreamStatus: 409, upstreamCode: "job_not_cancellable" });
  });

  it("an out-of-memory failure at step N fails the job with a retryable system error", async () => {
    sim.setFaults({ failAtStep: { step: 13 } });
    const c = client();
    const { job } = await c.submitJob(body());
    const done = await finished(c, job.id);
    expect(done.status).toBe("failed");
    expect(done.error).toMatchObject({ code: "oom", category: "system", retryable: true, step: 13 });
    expect(done.progress.step).toBe(12);
    expect(classifyJobError(done.error!)).toBeInstanceOf(RetryableError);
  });
});
