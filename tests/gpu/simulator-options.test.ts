/**
 * The training options beyond plain 16-bit LoRA, as the simulator honours
 * them: 4-bit QLoRA (memory and speed), cosine with hard restarts,
 * validation data (a held-out split or a separate file fetched like the
 * dataset), early stopping on eval loss, and continuing from a checkpoint.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GpuClusterClient } from "../../functions/_shared/gpu/client.ts";
import { PermanentUserError } from "../../functions/_shared/gpu/errors.ts";
import { type GpuSimulator, startGpuSimulator } from "../../gpu-cluster/simulator/index.ts";
import {
  earlyStopStep,
  evalLossAt,
  isEvalStep,
  learningRateAt,
  memoryPerGpu,
  planTraining,
  QLORA_THROUGHPUT_FACTOR,
  throughput,
} from "../../gpu-cluster/simulator/training.ts";
import { type GpuTrainingConfig, type Job, type SubmitJobRequest, TERMINAL_JOB_STATUSES } from "../../types/gpu-cluster.ts";
import { type FakeBackend, startFakeBackend } from "./support/backend.ts";
import { API_KEY, config, jsonl, submitBody, WEBHOOK_SECRET, waitFor } from "./support/fixtures.ts";

const LLAMA_70B = { base_model: "meta-llama/Llama-3.1-70B", parameter_count: 70_600_000_000 };
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe("learningRateAt() with cosine_with_restarts", () => {
  const total = 110;
  const c = (cycles?: number) =>
    config({ learning_rate: 1e-3, warmup_steps: 10, lr_scheduler: "cosine_with_restarts", ...(cycles ? { lr_scheduler_num_cycles: cycles } : {}) });

  it("restarts at the peak after each of num_cycles cosine decays, and ends at 0", () => {
    const three = c(3);
    expect(learningRateAt(three, 5, total)).toBeCloseTo(5e-4); // warmup as usual
    // 100 post-warmup steps in three cycles of 33.3 steps: a decay to near 0, then back to the peak.
    expect(learningRateAt(three, 10 + 16, total)).toBeCloseTo(1e-3 * 0.5 * (1 + Math.cos(Math.PI * 0.48)), 8);
    expect(learningRateAt(three, 43, total)).toBeLessThan(1e-5);
    expect(learningRateAt(three, 44, total)).toBeGreaterThan(0.99e-3);
    expect(learningRateAt(three, 77, total)).toBeGreaterThan(0.99e-3);
    expect(learningRateAt(three, total, total)).toBe(0);
    const rises = range(11, total).filter((s) => learningRateAt(three, s, total) > learningRateAt(three, s - 1, total));
    expect(rises).toEqual([44, 77]);
  });

  it("with one cycle (the default) is the cosine schedule", () => {
    const cosine = config({ learning_rate: 1e-3, warmup_steps: 10, lr_scheduler: "cosine" });
    for (const s of range(1, total)) expect(learningRateAt(c(), s, total)).toBeCloseTo(learningRateAt(cosine, s, total), 12);
  });
});

describe("4-bit quantization (QLoRA)", () => {
  it("needs about a quarter of the weight memory and runs at 0.8x the derived speed", () => {
    const bf16 = memoryPerGpu(config(LLAMA_70B));
    const nf4 = memoryPerGpu(config({ ...LLAMA_70B, quantization: "4bit" }));
    expect(bf16.neededGb).toBeGreaterThan(bf16.availableGb); // 70B in bf16 does not fit one A100-80GB
    expect(nf4.neededGb).toBeLessThan(nf4.availableGb);
    expect(nf4.neededGb / bf16.neededGb).toBeCloseTo(0.26, 2);
    expect(memoryPerGpu(config({ ...LLAMA_70B, gpu_count: 4 })).neededGb).toBeCloseTo(bf16.neededGb / 4, 6);
    expect(throughput(config({ quantization: "4bit" }))).toBeCloseTo(throughput(config()) * QLORA_THROUGHPUT_FACTOR, 6);
    expect(QLORA_THROUGHPUT_FACTOR).toBe(0.8);
    // The caller's own estimate is for the run as configured: taken as is.
    expect(throughput(config({ quantization: "4bit", expected_tokens_per_second: 900 }))).toBe(900);
  });
});

describe("validation and early stopping (pure)", () => {
  it("holds a validation split out of the training examples, so the run has fewer steps", () => {
    const plan = planTraining(config({ epochs: 1, batch_size: 4, gradient_accumulation_steps: 1 }), {
      examples: 90, avgTokensPerExample: 100, validationExamples: 10,
    });
    expect(plan).toMatchObject({ examples: 90, validationExamples: 10, totalSteps: 23 });
  });

  const es = (patience: number | null, over: Partial<GpuTrainingConfig> = {}) =>
    config({ epochs: 3, eval_every_steps: 5, checkpoint_every_steps: 20, validation: { split_fraction: 0.1 }, early_stopping_patience: patience, ...over });
  const stats = { examples: 2000, avgTokensPerExample: 300, validationExamples: 200 };

  it("stops at the evaluation that makes `patience` evaluations in a row without a new best eval loss", () => {
    const c = es(3);
    const plan = planTraining(c, stats);
    expect(plan.stopStep).not.toBeNull();
    expect(plan.stopStep!).toBeLessThan(plan.totalSteps);
    // Recount by hand: the three evaluations up to the stop are all worse than the best before them.
    const evals = range(1, plan.stopStep!).filter((s) => isEvalStep(plan, c, s));
    const losses = evals.map((s) => evalLossAt(plan, c.seed, s));
    const bestBefore = (i: number) => Math.min(...losses.slice(0, i));
    for (const i of [evals.length - 3, evals.length - 2, evals.length - 1]) expect(losses[i]!).toBeGreaterThanOrEqual(bestBefore(i));
    const earlier = evals.slice(0, -1).some((_, j) => j >= 2 && [j - 2, j - 1, j].every((i) => losses[i]! >= bestBefore(i)));
    expect(earlier).toBe(false);
  });

  it("patience 0 stops after the first evaluation; null or a patience never reached runs every step", () => {
    const c = es(0);
    expect(earlyStopStep(planTraining(c, stats), c)).toBe(5);
    expect(planTraining(es(null), stats).stopStep).toBeNull();
    expect(planTraining(es(10_000), stats).stopStep).toBeNull();
  });
});

describe("the options through the simulator", () => {
  let backend: FakeBackend;
  let sim: GpuSimulator;
  let client: GpuClusterClient;
  const fetched: string[] = [];

  beforeAll(async () => {
    backend = await startFakeBackend({ webhookSecret: WEBHOOK_SECRET });
    sim = await startGpuSimulator({
      apiKey: API_KEY, webhookSecret: WEBHOOK_SECRET, timeScale: 20_000, tickMs: 10, progressIntervalSeconds: 60,
      fetch: (input, init) => {
        if (init?.method === undefined || init.method === "GET") fetched.push(String(input));
        return fetch(input, init);
      },
    });
    client = new GpuClusterClient({ baseUrl: sim.url, apiKey: API_KEY, maxAttempts: 1 });
  });
  afterAll(async () => {
    await sim?.close();
    await backend?.close();
  });

  async function run(c: GpuTrainingConfig, data: string, extra: Partial<SubmitJobRequest> = {}): Promise<Job> {
    const url = backend.dataset(`${crypto.randomUUID()}.jsonl`, data);
    const { job } = await client.submitJob(submitBody(url, { config: c, upload_urls_callback_url: backend.uploadUrlsUrl, ...extra }));
    return waitFor(async () => {
      const j = await client.getJob(job.id);
      return TERMINAL_JOB_STATUSES.includes(j.status) ? j : undefined;
    }, { timeoutMs: 20_000, what: "the job to finish" });
  }

  it("a 70B model in bf16 on one GPU fails out of memory for the user; in 4-bit it trains, slower, and says so", async () => {
    const oom = await run(config(LLAMA_70B), jsonl(40));
    expect(oom.status).toBe("failed");
    expect(oom.error).toMatchObject({ code: "oom", category: "user", retryable: false, step: 0 });
    expect(oom.error!.message).toContain('use quantization "4bit" or more GPUs');
    expect(oom.gpu_seconds).toBe(0);

    const qlora = await run(config({ ...LLAMA_70B, quantization: "4bit" }), jsonl(40));
    expect(qlora.status).toBe("succeeded");
    expect(qlora.config.quantization).toBe("4bit");
    const derived = throughput(config(LLAMA_70B)) * QLORA_THROUGHPUT_FACTOR;
    for (const m of qlora.metrics) expect(Math.abs(m.tokens_per_second / derived - 1)).toBeLessThanOrEqual(0.031);
  });

  it("a validation split trains on the rest, reports both counts and evaluates", async () => {
    const job = await run(config({ epochs: 1, batch_size: 4, gradient_accumulation_steps: 1, validation: { split_fraction: 0.15 } }), jsonl(100));
    expect(job.status).toBe("succeeded");
    expect(job).toMatchObject({ examples: 85, validation_examples: 15, progress: { total_steps: 22 } });
    expect(job.metrics.at(-1)!.eval_loss).not.toBeNull();
    expect(job.early_stopping).toBeNull();
  });

  it("a split that leaves nothing to train on fails the job as dataset_invalid", async () => {
    const job = await run(config({ validation: { split_fraction: 0.5 } }), jsonl(1));
    expect(job.error).toMatchObject({ code: "dataset_invalid", category: "user", retryable: false, step: null });
  });

  it("a validation dataset is fetched once from its URL and counted", async () => {
    const validationUrl = backend.dataset(`${crypto.randomUUID()}.jsonl`, jsonl(12));
    const job = await run(config({ epochs: 1, validation: { dataset_url: validationUrl } }), jsonl(60));
    expect(job.status).toBe("succeeded");
    expect(job).toMatchObject({ examples: 60, validation_examples: 12 });
    expect(fetched.filter((u) => u === validationUrl)).toHaveLength(1);
  });

  it("an unreachable or unreadable validation dataset fails the job for the user", async () => {
    const gone = await run(config({ validation: { dataset_url: `${backend.url}/datasets/missing.jsonl` } }), jsonl(20));
    expect(gone).toMatchObject({ status: "failed", examples: null });
    expect(gone.error).toMatchObject({ code: "validation_dataset_unreachable", category: "user", retryable: false, step: null });
    expect(gone.error!.message).toBe("Validation dataset URL answered 404");
    const bad = await run(config({ validation: { dataset_url: backend.dataset(`${crypto.randomUUID()}.jsonl`, '{"a":1}\n[2]\n') } }), jsonl(20));
    expect(bad.error).toMatchObject({ code: "validation_dataset_invalid", message: "Validation dataset line 2 is not a JSON object" });
  });

  it("early stopping ends the run at the stopping evaluation: succeeded, billed to there, best evaluation and checkpoint noted", async () => {
    const c = config({ epochs: 3, batch_size: 4, gradient_accumulation_steps: 1, eval_every_steps: 5, checkpoint_every_steps: 20, validation: { split_fraction: 0.1 }, early_stopping_patience: 3 });
    const data = jsonl(400, 200);
    const plan = planTraining(c, { examples: 360, avgTokensPerExample: 50, validationExamples: 40 });
    expect(plan.stopStep).not.toBeNull();
    const job = await run(c, data, { callback_url: backend.webhookUrl });
    expect(job.status).toBe("succeeded");
    expect(job.progress).toMatchObject({ step: plan.stopStep, total_steps: plan.totalSteps, fraction: 1 });
    expect(job.metrics.at(-1)!.step).toBe(plan.stopStep);
    expect(job.gpu_seconds).toBeCloseTo(job.metrics.at(-1)!.elapsed_seconds, 1);
    const evals = job.metrics.filter((m) => m.eval_loss !== null);
    const best = evals.reduce((a, b) => (b.eval_loss! < a.eval_loss! ? b : a));
    const bestCheckpoint = job.checkpoints.reduce((a, b) => (b.eval_loss! < a.eval_loss! ? b : a));
    expect(job.early_stopping).toEqual({
      patience: 3, stopped_early: true, best_step: best.step, best_eval_loss: best.eval_loss, best_checkpoint: bestCheckpoint.name,
    });
    expect(job.artifacts.map((a) => a.path).sort()).toEqual(["adapter_config.json", "adapter_model.safetensors"]);

    await waitFor(() => backend.events.some((e) => e.event.type === "job.succeeded" && e.event.data.job_id === job.id));
    const succeeded = backend.events.find((e) => e.event.type === "job.succeeded" && e.event.data.job_id === job.id)!.event;
    expect(succeeded.type === "job.succeeded" && succeeded.data.early_stopping).toEqual(job.early_stopping);
    const started = backend.events.find((e) => e.event.type === "job.started" && e.event.data.job_id === job.id)!.event;
    expect(started.data).toMatchObject({ examples: 360, validation_examples: 40, total_steps: plan.totalSteps });
  });

  it("refuses early stopping without validation data (422 invalid_config)", async () => {
    const url = backend.dataset("es.jsonl", jsonl(10));
    const refused = await client.submitJob(submitBody(url, { config: config({ early_stopping_patience: 2 }) })).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(PermanentUserError);
    expect(refused).toMatchObject({ upstreamStatus: 422, upstreamCode: "invalid_config" });
  });

  describe("resume_from", () => {
    // 80 examples, 2 epochs, 8 per step: 20 steps, a checkpoint every 5.
    const base = () => config({ checkpoint_every_steps: 5, logging_steps: 1 });
    let first: Job;
    beforeAll(async () => {
      first = await run(base(), jsonl(80));
    });

    it("continues a run after the checkpoint's step: same total, later metrics and checkpoints only, only its steps billed", async () => {
      expect(first.status).toBe("succeeded");
      expect(first.checkpoints.map((c) => c.step)).toEqual([5, 10, 15, 20]);
      const resumed = await run(base(), jsonl(80), { resume_from: { job_id: first.id, checkpoint: "checkpoint-10", step: 10 } });
      expect(resumed.status).toBe("succeeded");
      expect(resumed.resume_from).toEqual({ job_id: first.id, checkpoint: "checkpoint-10", step: 10 });
      expect(resumed.progress).toMatchObject({ step: 20, total_steps: 20 });
      expect(resumed.metrics.map((m) => m.step)).toEqual(range(11, 20));
      expect(resumed.checkpoints.map((c) => c.step)).toEqual([15, 20]);
      // The curve goes on where the checkpoint left it (same seed, same schedule).
      expect(resumed.metrics).toEqual(first.metrics.filter((m) => m.step > 10));
      expect(resumed.gpu_seconds).toBeCloseTo(first.gpu_seconds / 2, 2);
      expect(first.resume_from).toBeNull();
    });

    it("a resumed run's best checkpoint is the best of the whole history, not of its own steps only", async () => {
      const c = config({ epochs: 3, batch_size: 4, gradient_accumulation_steps: 1, eval_every_steps: 5, checkpoint_every_steps: 20, validation: { split_fraction: 0.1 }, early_stopping_patience: 3 });
      const data = jsonl(400, 200);
      const stopped = await run(c, data);
      const best = stopped.checkpoints.find((k) => k.name === stopped.early_stopping!.best_checkpoint)!;
      // Continue from the last checkpoint at or after the best one (before the stop): only worse evaluations follow.
      const from = stopped.checkpoints.filter((k) => k.step >= best.step && k.step < stopped.progress.step).at(-1)!;
      const resumed = await run(c, data, { resume_from: { job_id: stopped.id, checkpoint: from.name, step: from.step } });
      expect(resumed.status).toBe("succeeded");
      expect(resumed.checkpoints.every((k) => k.step > from.step)).toBe(true);
      expect(resumed.early_stopping).toMatchObject({ best_checkpoint: best.name, best_step: stopped.early_stopping!.best_step });
    });

    it("raising epochs continues a finished run to the new last step", async () => {
      const longer = await run({ ...base(), epochs: 3 }, jsonl(80), { resume_from: { job_id: first.id, checkpoint: "checkpoint-20", step: 20 } });
      expect(longer.status).toBe("succeeded");
      expect(longer.progress.total_steps).toBe(30);
      expect(longer.metrics[0]!.step).toBe(21);
      expect(longer.checkpoints.map((c) => c.step)).toEqual([25, 30]);
    });

    it("fails the run with checkpoint_unavailable when the cluster does not have the checkpoint", async () => {
      for (const resume_from of [
        { job_id: "job_unknown", checkpoint: "checkpoint-10", step: 10 },
        { job_id: first.id, checkpoint: "checkpoint-12", step: 12 },
        { job_id: first.id, checkpoint: "checkpoint-10", step: 11 },
      ]) {
        const gone = await run(base(), jsonl(80), { resume_from });
        expect(gone.status, JSON.stringify(resume_from)).toBe("failed");
        expect(gone.error).toMatchObject({ code: "checkpoint_unavailable", category: "system", retryable: false, step: null });
        expect(gone.gpu_seconds).toBe(0);
      }
    });

    it("fails the run with invalid_config when nothing is left to train after the checkpoint", async () => {
      const done = await run(base(), jsonl(80), { resume_from: { job_id: first.id, checkpoint: "checkpoint-20", step: 20 } });
      expect(done.status).toBe("failed");
      expect(done.error).toMatchObject({ code: "invalid_config", category: "user", retryable: false });
      expect(done.error!.message).toContain("raise epochs");
    });

    it("refuses a checkpoint of another LoRA shape (422 invalid_config); other hyperparameters may change", async () => {
      const url = backend.dataset(`${crypto.randomUUID()}.jsonl`, jsonl(80));
      const resume_from = { job_id: first.id, checkpoint: "checkpoint-10", step: 10 };
      for (const over of [{ r: 32 }, { target_modules: ["q_proj", "v_proj"] }, { use_dora: true }, { base_model: "Qwen/Qwen3-8B" }]) {
        const refused = await client.submitJob(submitBody(url, { config: { ...base(), ...over }, resume_from })).catch((e: unknown) => e);
        expect(refused, JSON.stringify(over)).toBeInstanceOf(PermanentUserError);
        expect(refused).toMatchObject({ upstreamStatus: 422, upstreamCode: "invalid_config" });
      }
      const reordered = { ...base(), target_modules: ["v_proj", "o_proj", "q_proj", "k_proj"], learning_rate: 1e-4, lora_dropout: 0.1 };
      const { job } = await client.submitJob(submitBody(url, { config: reordered, resume_from }));
      expect(job.resume_from).toEqual(resume_from);
    });
  });
});

describe("a simulator restart (sim.restart(), POST /_sim/restart)", () => {
  let backend: FakeBackend;
  let sim: GpuSimulator;
  let client: GpuClusterClient;
  beforeAll(async () => {
    backend = await startFakeBackend({ webhookSecret: WEBHOOK_SECRET });
    sim = await startGpuSimulator({ apiKey: API_KEY, webhookSecret: WEBHOOK_SECRET, timeScale: 20_000, tickMs: 10 });
    client = new GpuClusterClient({ baseUrl: sim.url, apiKey: API_KEY, maxAttempts: 1 });
  });
  afterAll(async () => {
    await sim?.close();
    await backend?.close();
  });
  const finished = (id: string) => waitFor(async () => {
    const j = await client.getJob(id);
    return TERMINAL_JOB_STATUSES.includes(j.status) ? j : undefined;
  }, { timeoutMs: 20_000, what: "the job to finish" });

  it("forgets every job: it answers 404, a resume from its checkpoint fails with checkpoint_unavailable, its key is free", async () => {
    const c = config({ checkpoint_every_steps: 5 });
    const body = (extra: Partial<SubmitJobRequest> = {}) =>
      submitBody(backend.dataset(`${crypto.randomUUID()}.jsonl`, jsonl(80)), { config: c, upload_urls_callback_url: backend.uploadUrlsUrl, ...extra });
    const { job } = await client.submitJob(body(), { idempotencyKey: "restart-key" });
    const first = await finished(job.id);
    expect(first.checkpoints.length).toBeGreaterThan(0);

    const res = await fetch(`${sim.url}/_sim/restart`, { method: "POST", headers: { authorization: `Bearer ${API_KEY}` } });
    expect(res.status).toBe(200);
    expect(sim.jobs.count()).toBe(0);
    await expect(client.getJob(job.id)).rejects.toMatchObject({ upstreamStatus: 404 });
    expect(await client.findJobByIdempotencyKey("restart-key")).toBeNull();

    const resumed = await finished((await client.submitJob(body({
      resume_from: { job_id: first.id, checkpoint: first.checkpoints[0]!.name, step: first.checkpoints[0]!.step },
    }), { idempotencyKey: "restart-key" })).job.id);
    expect(resumed.error).toMatchObject({ code: "checkpoint_unavailable", category: "system" });
  });
});
