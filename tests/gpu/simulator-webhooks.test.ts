/**
 * The simulator's webhook events, received and verified by a fake backend
 * over real HTTP: order and content, failures, cancellation, and the
 * delivery faults (duplicates, out of order, retries).
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { GpuClusterClient } from "../../functions/_shared/gpu/client.ts";
import { classifyJobError, PermanentUserError, RetryableError } from "../../functions/_shared/gpu/errors.ts";
import { type GpuSimulator, type GpuSimulatorOptions, startGpuSimulator } from "../../gpu-cluster/simulator/index.ts";
import type { GpuWebhookEvent } from "../../types/gpu-cluster.ts";
import { type FakeBackend, type ReceivedEvent, startFakeBackend } from "./support/backend.ts";
import { API_KEY, jsonl, submitBody, WEBHOOK_SECRET, waitFor } from "./support/fixtures.ts";

let backend: FakeBackend;
let sim: GpuSimulator | undefined;

beforeEach(async () => {
  backend = await startFakeBackend({ webhookSecret: WEBHOOK_SECRET });
});
afterEach(async () => {
  await sim?.close();
  sim = undefined;
  await backend.close();
});

async function simulator(opts: Partial<GpuSimulatorOptions> = {}): Promise<GpuClusterClient> {
  sim = await startGpuSimulator({
    apiKey: API_KEY,
    webhookSecret: WEBHOOK_SECRET,
    timeScale: 5000,
    tickMs: 10,
    progressIntervalSeconds: 2,
    webhookRetryDelaysMs: [10, 10],
    ...opts,
  });
  return new GpuClusterClient({ baseUrl: sim.url, apiKey: API_KEY });
}

async function submit(client: GpuClusterClient, extra: Parameters<typeof submitBody>[1] = {}): Promise<string> {
  const url = backend.dataset("d.jsonl", jsonl(200));
  const body = submitBody(url, { callback_url: backend.webhookUrl, upload_urls_callback_url: backend.uploadUrlsUrl, ...extra });
  return (await client.submitJob(body)).job.id;
}

const TERMINAL = ["job.succeeded", "job.failed", "job.cancelled"];

/** Wait until the job's terminal event has arrived and every delivery is done. */
async function terminalEvent(jobId: string): Promise<ReceivedEvent> {
  const found = await waitFor(
    () => backend.events.find((e) => e.event.data.job_id === jobId && TERMINAL.includes(e.event.type)),
    { what: "a terminal event" },
  );
  await sim!.webhooks.idle();
  return found;
}

const ofType = <T extends GpuWebhookEvent["type"]>(type: T) =>
  backend.events.map((e) => e.event).filter((e): e is Extract<GpuWebhookEvent, { type: T }> => e.type === type);

describe("webhook events", () => {
  it("are signed, in order, and tell the whole story: started, checkpoints, progress, succeeded", async () => {
    // ~11 simulated seconds of training at 50x with a progress event every simulated second.
    const client = await simulator({ timeScale: 50, queueDelaySeconds: 0, progressIntervalSeconds: 1 });
    const jobId = await submit(client);
    await terminalEvent(jobId);
    expect(backend.rejected).toEqual([]);
    const types = backend.events.map((e) => e.event.type);
    expect(types[0]).toBe("job.started");
    expect(types.at(-1)).toBe("job.succeeded");
    expect(types.filter((t) => t === "job.checkpoint")).toHaveLength(2);
    expect(types.filter((t) => t === "job.progress").length).toBeGreaterThan(1);
    const sequences = backend.events.map((e) => e.event.data.sequence);
    expect(sequences).toEqual(sequences.map((_, i) => i + 1));
    expect(new Set(backend.events.map((e) => e.webhookId)).size).toBe(backend.events.length);

    const job = await client.getJob(jobId);
    expect(ofType("job.started")[0]!.data).toMatchObject({ examples: 200, total_steps: 50, status: "running" });
    const progressed = ofType("job.progress").flatMap((e) => e.data.metrics);
    expect(progressed).toEqual(job.metrics); // progress events together carry every point, once
    const done = ofType("job.succeeded")[0]!.data;
    expect(done.artifacts).toEqual(job.artifacts);
    expect(done.final_metrics).toEqual(job.metrics.at(-1));
    expect(done.gpu_seconds).toBe(job.gpu_seconds);
  });

  it("job.failed reports an out-of-memory failure at step N as a retryable system error", async () => {
    const client = await simulator({ faults: { failAtStep: { step: 30 } } });
    const jobId = await submit(client);
    const { event } = await terminalEvent(jobId);
    expect(event.type).toBe("job.failed");
    if (event.type !== "job.failed") return;
    expect(event.data.error).toEqual({ code: "oom", message: "CUDA out of memory at step 30", retryable: true, category: "system", step: 30 });
    expect(event.data.progress.step).toBe(29);
    expect(classifyJobError(event.data.error)).toBeInstanceOf(RetryableError);
    expect(ofType("job.checkpoint").map((e) => e.data.checkpoint.step)).toEqual([20]);
  });

  it("job.failed reports an unreachable dataset URL as a permanent user error", async () => {
    const client = await simulator();
    const jobId = await submit(client, { dataset_url: `${backend.url}/datasets/missing.jsonl` });
    const { event } = await terminalEvent(jobId);
    expect(event).toMatchObject({ type: "job.failed", data: { error: { code: "dataset_unreachable", retryable: false, category: "user" } } });
    if (event.type === "job.failed") expect(classifyJobError(event.data.error)).toBeInstanceOf(PermanentUserError);
    expect(backend.events.map((e) => e.event.type)).toEqual(["job.failed"]); // it never started
  });

  it("the datasetUnreachable fault fails the job the same way without fetching", async () => {
    const client = await simulator({ faults: { datasetUnreachable: true } });
    const jobId = await submit(client);
    const { event } = await terminalEvent(jobId);
    expect(event).toMatchObject({ type: "job.failed", data: { error: { code: "dataset_unreachable" } } });
  });

  it("a dataset line that is not a JSON object fails the job as dataset_invalid with its line number", async () => {
    const client = await simulator();
    const url = backend.dataset("bad.jsonl", '{"a":1}\nnot json\n');
    const jobId = (await client.submitJob(submitBody(url, { callback_url: backend.webhookUrl }))).job.id;
    const { event } = await terminalEvent(jobId);
    expect(event).toMatchObject({ type: "job.failed", data: { error: { code: "dataset_invalid", message: "Dataset line 2 is not a JSON object" } } });
  });

  it("job.cancelled follows a cancel of a running job, and nothing comes after it", async () => {
    const client = await simulator({ timeScale: 5, queueDelaySeconds: 0 }); // a 2-second run: time to cancel it
    const jobId = await submit(client);
    await waitFor(() => backend.events.some((e) => e.event.type === "job.started"), { what: "job.started" });
    await client.cancelJob(jobId);
    const { event } = await terminalEvent(jobId);
    expect(event.type).toBe("job.cancelled");
    expect(event.data.status).toBe("cancelled");
    const stepAtCancel = (await client.getJob(jobId)).progress.step;
    sim!.tick();
    expect((await client.getJob(jobId)).progress.step).toBe(stepAtCancel);
    expect(backend.events.at(-1)?.event.type).toBe("job.cancelled");
  });
});

describe("webhook delivery faults", () => {
  it("duplicates: every event arrives twice with the same webhook-id and body", async () => {
    const client = await simulator({ faults: { duplicateWebhookRate: 1 } });
    const jobId = await submit(client);
    await terminalEvent(jobId);
    const byId = new Map<string, ReceivedEvent[]>();
    for (const e of backend.events) byId.set(e.webhookId, [...(byId.get(e.webhookId) ?? []), e]);
    expect(byId.size).toBeGreaterThan(3);
    for (const copies of byId.values()) {
      expect(copies).toHaveLength(2);
      expect(copies[1]!.event).toEqual(copies[0]!.event);
    }
    expect(sim!.webhooks.deliveries.filter((d) => d.duplicate)).toHaveLength(byId.size);
  });

  it("out of order: some events arrive after later ones, none is lost", async () => {
    const client = await simulator({ faults: { outOfOrderWebhookRate: 1 } });
    const jobId = await submit(client);
    await terminalEvent(jobId);
    const sequences = backend.events.map((e) => e.event.data.sequence);
    expect(sequences).not.toEqual([...sequences].sort((a, b) => a - b));
    expect([...sequences].sort((a, b) => a - b)).toEqual(sequences.map((_, i) => i + 1));
    // Each held-back event arrives right after the one that overtook it.
    const inversions = sequences.slice(1).filter((s, i) => s < sequences[i]!).length;
    expect(inversions).toBeGreaterThanOrEqual(Math.floor(sequences.length / 3));
  });

  it("a receiver that rejects an event gets retries with the same webhook-id", async () => {
    const client = await simulator({ webhookSecret: "whsec_" + Buffer.from("another secret 24 bytes!").toString("base64") });
    const jobId = await submit(client, { upload_urls_callback_url: undefined });
    await waitFor(() => sim!.webhooks.deliveries.some((d) => d.type === "job.failed" && d.attempt === 3), { what: "3 attempts" });
    await sim!.webhooks.idle();
    const started = sim!.webhooks.deliveries.filter((d) => d.jobId === jobId && d.type === "job.started");
    expect(started.map((d) => [d.attempt, d.status])).toEqual([[1, 401], [2, 401], [3, 401]]);
    expect(new Set(started.map((d) => d.webhookId)).size).toBe(1);
    expect(backend.events).toEqual([]);
    expect(backend.rejected.length).toBeGreaterThan(0);
  });
});
