/**
 * The final adapter files: how they reach the operator (signed upload-URL
 * request, then PUTs) and whether they are what PEFT and safetensors readers
 * expect.
 */
import { createHash } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { GpuClusterClient } from "../../functions/_shared/gpu/client.ts";
import { type GpuSimulator, type GpuSimulatorOptions, startGpuSimulator } from "../../gpu-cluster/simulator/index.ts";
import { TERMINAL_JOB_STATUSES, type GpuTrainingConfig, type Job, type UploadFile } from "../../types/gpu-cluster.ts";
import { type FakeBackend, startFakeBackend } from "./support/backend.ts";
import { API_KEY, config, jsonl, submitBody, WEBHOOK_SECRET, waitFor } from "./support/fixtures.ts";
import { expectedTensorBytes, readSafetensors } from "./support/safetensors.ts";

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

async function runJob(c: GpuTrainingConfig, opts: Partial<GpuSimulatorOptions> = {}, data = jsonl(100)): Promise<Job> {
  sim = await startGpuSimulator({ apiKey: API_KEY, webhookSecret: WEBHOOK_SECRET, timeScale: 5000, tickMs: 10, ...opts });
  const client = new GpuClusterClient({ baseUrl: sim.url, apiKey: API_KEY });
  const url = backend.dataset("a.jsonl", data);
  const { job } = await client.submitJob(submitBody(url, { config: c, upload_urls_callback_url: backend.uploadUrlsUrl }));
  return waitFor(async () => {
    const j = await client.getJob(job.id);
    return TERMINAL_JOB_STATUSES.includes(j.status) ? j : undefined;
  }, { what: "the job to finish" });
}

function stored(job: Job, path: string): Uint8Array {
  const object = backend.objects.get(`${job.id}/${path}`);
  if (!object) throw new Error(`"${path}" was not uploaded`);
  return object.bytes;
}

describe("artifact upload", () => {
  it("asks for upload URLs with a signed request, PUTs every file, and reports them with their SHA-256", async () => {
    const job = await runJob(config());
    expect(job.status).toBe("succeeded");
    expect(backend.rejected).toEqual([]);
    expect(backend.uploadRequests).toEqual([{ job_id: job.id, files: job.artifacts }]);
    for (const artifact of job.artifacts) {
      const bytes = stored(job, artifact.path);
      expect(bytes.length).toBe(artifact.size_bytes);
      expect(createHash("sha256").update(bytes).digest("hex")).toBe(artifact.sha256);
      expect(backend.objects.get(`${job.id}/${artifact.path}`)?.contentType).toBe(artifact.content_type);
    }
  });

  it("uses an injected requestUploadUrls instead of the HTTP callback", async () => {
    const calls: Array<{ job: Job; files: UploadFile[] }> = [];
    const job = await runJob(config(), {
      requestUploadUrls: async (j, files) => {
        calls.push({ job: j, files });
        return files.map((f) => ({ path: f.path, signedUrl: backend.signedUploadUrl(`${j.id}/${f.path}`) }));
      },
    });
    expect(job.status).toBe("succeeded");
    expect(calls).toHaveLength(1);
    expect(calls[0]!.job).toMatchObject({ id: job.id, status: "running" });
    expect(calls[0]!.files.map((f) => f.path)).toEqual(["adapter_config.json", "adapter_model.safetensors"]);
    expect(backend.uploadRequests).toEqual([]);
    expect(stored(job, "adapter_config.json").length).toBeGreaterThan(0);
  });

  it("fails the job as a retryable system error when the backend refuses to hand out upload URLs", async () => {
    const job = await runJob(config(), { webhookSecret: "whsec_" + Buffer.from("not the backend's secret").toString("base64") });
    expect(job.status).toBe("failed");
    expect(job.error).toMatchObject({ code: "artifact_upload_failed", category: "system", retryable: true });
    expect(job.error?.message).toMatch(/answered 401/);
    expect(job.artifacts).toEqual([]);
    expect(backend.rejected.filter((r) => r.path === "/upload-urls")).toHaveLength(3); // first try + 2 retries
  });
});

describe("adapter files", () => {
  it("adapter_config.json is a PEFT LoRA config matching the job's configuration", async () => {
    const c = config({ r: 8, lora_alpha: 16, lora_dropout: 0.1, use_rslora: true, target_modules: ["q_proj", "v_proj", "down_proj"] });
    const job = await runJob(c);
    const adapter = JSON.parse(new TextDecoder().decode(stored(job, "adapter_config.json")));
    expect(adapter).toMatchObject({
      base_model_name_or_path: c.base_model,
      peft_type: "LORA",
      task_type: "CAUSAL_LM",
      r: 8,
      lora_alpha: 16,
      lora_dropout: 0.1,
      target_modules: ["q_proj", "v_proj", "down_proj"],
      use_rslora: true,
      use_dora: false,
      bias: "none",
      inference_mode: true,
    });
  });

  it("with early stopping the delivered adapter is the best checkpoint's (load_best_model_at_end), not the last step's", async () => {
    const c = config({ epochs: 3, batch_size: 4, gradient_accumulation_steps: 1, eval_every_steps: 5, checkpoint_every_steps: 20, validation: { split_fraction: 0.1 }, early_stopping_patience: 3 });
    const job = await runJob(c, {}, jsonl(400, 200));
    expect(job.early_stopping?.stopped_early).toBe(true);
    const best = job.checkpoints.find((k) => k.name === job.early_stopping!.best_checkpoint)!;
    expect(best.step).toBeLessThan(job.progress.step);
    const adapter = stored(job, "adapter_model.safetensors");
    expect(readSafetensors(adapter).metadata).toEqual({ format: "pt", step: String(best.step) });
    // Another step's weights would be other bytes: the delivered ones are not the last step's.
    const { buildAdapterFiles } = await import("../../gpu-cluster/simulator/adapter.ts");
    const at = (step: number) => buildAdapterFiles(c, { step }).find((f) => f.path === "adapter_model.safetensors")!.bytes;
    expect(Buffer.from(adapter).equals(Buffer.from(at(best.step)))).toBe(true);
    expect(Buffer.from(adapter).equals(Buffer.from(at(job.progress.step)))).toBe(false);
  });

  it("adapter_model.safetensors has a valid header whose data offsets tile the byte buffer exactly", async () => {
    const c = config({ r: 4, target_modules: ["q_proj", "o_proj", "gate_proj", "down_proj"] });
    const job = await runJob(c);
    const file = readSafetensors(stored(job, "adapter_model.safetensors"));
    expect(file.headerSize % 8).toBe(0);
    expect(file.metadata).toEqual({ format: "pt", step: String(job.progress.step) });
    const entries = Object.entries(file.tensors).sort(([, a], [, b]) => a.data_offsets[0] - b.data_offsets[0]);
    let offset = 0;
    for (const [name, t] of entries) {
      expect(t.dtype, name).toBe("F32");
      expect(t.data_offsets[0], name).toBe(offset);
      expect(t.data_offsets[1] - t.data_offsets[0], name).toBe(expectedTensorBytes(t));
      offset = t.data_offsets[1];
    }
    expect(offset).toBe(file.data.length);
    const values = new Float32Array(file.data.slice().buffer);
    expect(values.every(Number.isFinite)).toBe(true);
  });

  it("holds lora_A [r, in] and lora_B [out, r] for every target module and layer, named as PEFT names them", async () => {
    const c = config({ r: 4, target_modules: ["q_proj", "gate_proj"] });
    const { tensors } = readSafetensors(stored(await runJob(c), "adapter_model.safetensors"));
    expect(Object.keys(tensors).sort()).toEqual(
      [0, 1]
        .flatMap((l) => [`self_attn.q_proj`, `mlp.gate_proj`].map((m) => `base_model.model.model.layers.${l}.${m}`))
        .flatMap((p) => [`${p}.lora_A.weight`, `${p}.lora_B.weight`])
        .sort(),
    );
    const q = "base_model.model.model.layers.0.self_attn.q_proj";
    const gate = "base_model.model.model.layers.1.mlp.gate_proj";
    expect(tensors[`${q}.lora_A.weight`]?.shape).toEqual([4, 32]);
    expect(tensors[`${q}.lora_B.weight`]?.shape).toEqual([32, 4]);
    expect(tensors[`${gate}.lora_A.weight`]?.shape).toEqual([4, 32]);
    expect(tensors[`${gate}.lora_B.weight`]?.shape).toEqual([64, 4]);
  });

  it("adds a magnitude vector per module for DoRA", async () => {
    const job = await runJob(config({ use_dora: true, target_modules: ["v_proj"] }));
    const { tensors } = readSafetensors(stored(job, "adapter_model.safetensors"));
    expect(tensors["base_model.model.model.layers.0.self_attn.v_proj.lora_magnitude_vector"]?.shape).toEqual([32]);
    const adapter = JSON.parse(new TextDecoder().decode(stored(job, "adapter_config.json")));
    expect(adapter.use_dora).toBe(true);
  });
});
