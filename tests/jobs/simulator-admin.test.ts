/**
 * The GPU simulator's admin API (`/_sim/*`), which lets tests in other
 * processes steer the stack's shared simulator: faults scoped to one
 * idempotency key leave every other request alone, and jobs can be listed
 * by key or metadata; both need the API key. Also: the stack publishes the
 * simulator in its status.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GpuClusterClient } from "../../functions/_shared/gpu/client.ts";
import { RetryableError } from "../../functions/_shared/gpu/errors.ts";
import { startGpuSimulator, type GpuSimulator } from "../../gpu-cluster/simulator/index.ts";
import { testStack } from "../helpers/stack.ts";

const API_KEY = "admin-test-key";
const body = (n: number) => ({
  dataset_url: "http://127.0.0.1:9/none.jsonl",
  config: {
    base_model: "meta-llama/Llama-3.1-8B-Instruct", parameter_count: 8_030_261_248, r: 8, lora_alpha: 16, lora_dropout: 0.05,
    target_modules: ["q_proj"], use_rslora: false, use_dora: false, epochs: 1, batch_size: 1, gradient_accumulation_steps: 1,
    learning_rate: 1e-4, lr_scheduler: "linear" as const, warmup_steps: 0, max_seq_length: 512, seed: n, checkpoint_every_steps: 10,
  },
  metadata: { training_job_id: `tj-${n}` },
});

describe("GPU simulator admin API", () => {
  let sim: GpuSimulator;
  let client: GpuClusterClient;
  const admin = (path: string, init: RequestInit = {}, key = API_KEY) =>
    fetch(`${sim.url}${path}`, { ...init, headers: { authorization: `Bearer ${key}`, "content-type": "application/json" } });

  beforeAll(async () => {
    sim = await startGpuSimulator({ apiKey: API_KEY, webhookSecret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", queueDelaySeconds: 1e9 });
    client = new GpuClusterClient({ baseUrl: sim.url, apiKey: API_KEY, maxAttempts: 1 });
  });
  afterAll(async () => {
    await sim.close();
  });

  it("scopes faults to one idempotency key", async () => {
    const res = await admin("/_sim/faults", { method: "POST", body: JSON.stringify({ idempotency_key: "k-bad", faults: { capacityRefusalRate: 1 } }) });
    expect(res.status).toBe(200);
    const refused = await client.submitJob(body(1), { idempotencyKey: "k-bad" }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(RetryableError);
    expect((refused as RetryableError).upstreamCode).toBe("capacity_unavailable");
    const ok = await client.submitJob(body(2), { idempotencyKey: "k-good" });
    expect(ok.job.status).toBe("queued");
    expect(sim.jobs.count()).toBe(1);
  });

  it("lists jobs by idempotency key and by metadata", async () => {
    await client.submitJob(body(3), { idempotencyKey: "k-3" });
    await client.submitJob(body(3)); // same training job, no key: a second cluster job
    const byMeta = (await (await admin("/_sim/jobs?metadata.training_job_id=tj-3")).json()) as { data: Array<{ id: string }> };
    expect(byMeta.data).toHaveLength(2);
    const byKey = (await (await admin("/_sim/jobs?idempotency_key=k-3")).json()) as { data: Array<{ idempotency_key: string }> };
    expect(byKey.data.map((j) => j.idempotency_key)).toEqual(["k-3"]);
  });

  it("needs the API key", async () => {
    expect((await admin("/_sim/jobs", {}, "wrong")).status).toBe(401);
    expect((await admin("/_sim/faults", { method: "POST", body: "{}" }, "wrong")).status).toBe(401);
    expect((await admin("/_sim/faults", { method: "POST", body: '{"faults": 1}' })).status).toBe(400);
  });

  it("runs in the stack, published in its status", async () => {
    const s = testStack();
    const res = await fetch(`${s.GPU_CLUSTER_URL}/_sim/jobs?idempotency_key=none`, { headers: { authorization: `Bearer ${s.GPU_CLUSTER_API_KEY}` } });
    expect(await res.json()).toEqual({ data: [] });
    expect(s.GPU_WEBHOOK_SECRET).toMatch(/^whsec_/);
  });
});
