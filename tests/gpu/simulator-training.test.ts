/** The simulator's training model: run size, curves, schedule, throughput, and simulated time. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GpuClusterClient } from "../../functions/_shared/gpu/client.ts";
import { type GpuSimulator, startGpuSimulator } from "../../gpu-cluster/simulator/index.ts";
import {
  evalLossAt,
  learningRateAt,
  metricPointAt,
  planTraining,
  throughput,
  trainLossAt,
} from "../../gpu-cluster/simulator/training.ts";
import { TERMINAL_JOB_STATUSES, type GpuTrainingConfig, type Job } from "../../types/gpu-cluster.ts";
import { type FakeBackend, startFakeBackend } from "./support/backend.ts";
import { API_KEY, config, jsonl, submitBody, WEBHOOK_SECRET, waitFor } from "./support/fixtures.ts";

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe("planTraining()", () => {
  it.each([
    [1000, 3, 4, 2, 375],
    [1000, 1, 8, 1, 125],
    [10, 1, 16, 4, 1],
    [999, 2, 4, 4, 125],
    [200, 1.5, 4, 1, 75],
  ])("%i examples x %s epochs / (%i x %i) = %i steps", (examples, epochs, batch, accum, steps) => {
    const c = config({ epochs, batch_size: batch, gradient_accumulation_steps: accum });
    expect(planTraining(c, { examples, avgTokensPerExample: 100 }).totalSteps).toBe(steps);
  });
});

describe("loss curves", () => {
  const c = config({ epochs: 3 });
  const plan = planTraining(c, { examples: 2000, avgTokensPerExample: 300 });
  const steps = range(1, plan.totalSteps);

  it("train loss decreases on average over the run", () => {
    const losses = steps.map((s) => trainLossAt(plan, c.seed, s));
    const tenth = Math.floor(losses.length / 10);
    const first = mean(losses.slice(0, tenth));
    const last = mean(losses.slice(-tenth));
    expect(last).toBeLessThan(first * 0.7);
    expect(mean(losses.slice(tenth * 4, tenth * 5))).toBeLessThan(first);
    expect(last).toBeGreaterThan(0);
  });

  it("is noisy: not monotonic step to step", () => {
    const losses = steps.map((s) => trainLossAt(plan, c.seed, s));
    const rises = losses.slice(1).filter((l, i) => l > losses[i]!).length;
    expect(rises).toBeGreaterThan(steps.length / 10);
  });

  it("is reproducible for a seed and differs for another seed", () => {
    const again = planTraining(config({ epochs: 3 }), { examples: 2000, avgTokensPerExample: 300 });
    expect(steps.map((s) => metricPointAt(again, c, s))).toEqual(steps.map((s) => metricPointAt(plan, c, s)));
    const other = config({ epochs: 3, seed: 7 });
    const otherPlan = planTraining(other, { examples: 2000, avgTokensPerExample: 300 });
    expect(trainLossAt(otherPlan, other.seed, 10)).not.toBe(trainLossAt(plan, c.seed, 10));
  });

  it("eval loss sits above train loss and pulls away late in a multi-epoch run (overfitting)", () => {
    const gap = (from: number, to: number) => mean(range(from, to).map((s) => evalLossAt(plan, c.seed, s) - trainLossAt(plan, c.seed, s)));
    const n = plan.totalSteps;
    const middle = gap(Math.floor(n * 0.4), Math.floor(n * 0.6));
    const end = gap(Math.floor(n * 0.9), n);
    expect(middle).toBeGreaterThan(0);
    expect(end).toBeGreaterThan(middle + 0.02);
  });

  it("a single-epoch run shows no overfitting uptick", () => {
    const one = config({ epochs: 1 });
    const p = planTraining(one, { examples: 6000, avgTokensPerExample: 300 });
    expect(p.curve.overfit).toBe(0);
  });
});

describe("learningRateAt()", () => {
  const total = 100;
  it("warms up linearly to the peak, then follows the scheduler to 0", () => {
    const cosine = config({ learning_rate: 1e-3, warmup_steps: 10, lr_scheduler: "cosine" });
    expect(learningRateAt(cosine, 5, total)).toBeCloseTo(5e-4);
    expect(learningRateAt(cosine, 10, total)).toBeCloseTo(1e-3);
    expect(learningRateAt(cosine, 55, total)).toBeCloseTo(5e-4); // halfway through the decay
    expect(learningRateAt(cosine, 100, total)).toBeCloseTo(0);
    const linear = config({ learning_rate: 1e-3, warmup_steps: 10, lr_scheduler: "linear" });
    expect(learningRateAt(linear, 55, total)).toBeCloseTo(5e-4);
    expect(learningRateAt(linear, 77.5, total)).toBeCloseTo(2.5e-4);
    const constant = config({ learning_rate: 1e-3, warmup_steps: 0, lr_scheduler: "constant" });
    expect(range(1, total).every((s) => learningRateAt(constant, s, total) === 1e-3)).toBe(true);
  });
});

describe("throughput()", () => {
  it("scales inversely with model size and linearly with GPUs, unless the caller states it", () => {
    const small = throughput(config({ parameter_count: 8e9 }));
    const large = throughput(config({ parameter_count: 70e9 }));
    expect(small).toBeGreaterThan(2000); // an 8B LoRA run on one A100: thousands of tokens/s
    expect(small).toBeLessThan(10_000);
    expect(small / large).toBeCloseTo(70 / 8, 5);
    expect(throughput(config({ gpu_count: 4 }))).toBeCloseTo(4 * throughput(config()), 5);
    expect(throughput(config({ gpu_type: "H100-80GB" }))).toBeGreaterThan(throughput(config()) * 3);
    expect(throughput(config({ expected_tokens_per_second: 1234 }))).toBe(1234);
  });
});

describe("simulated time", () => {
  let backend: FakeBackend;
  let sim: GpuSimulator;
  let client: GpuClusterClient;

  beforeAll(async () => {
    backend = await startFakeBackend({ webhookSecret: WEBHOOK_SECRET });
    sim = await startGpuSimulator({ apiKey: API_KEY, webhookSecret: WEBHOOK_SECRET, timeScale: 20_000, tickMs: 10 });
    client = new GpuClusterClient({ baseUrl: sim.url, apiKey: API_KEY });
  });
  afterAll(async () => {
    await sim?.close();
    await backend?.close();
  });

  async function run(c: GpuTrainingConfig, dataset: string): Promise<Job> {
    const url = backend.dataset(`${crypto.randomUUID()}.jsonl`, dataset);
    const { job } = await client.submitJob(submitBody(url, { config: c, upload_urls_callback_url: backend.uploadUrlsUrl }));
    return waitFor(async () => {
      const j = await client.getJob(job.id);
      return TERMINAL_JOB_STATUSES.includes(j.status) ? j : undefined;
    }, { timeoutMs: 20_000, what: "the job to finish" });
  }

  it("a multi-hour job on a 70B model finishes in a few real seconds", async () => {
    // 4-bit: in bf16 the weights of a 70B model do not fit one A100-80GB.
    const c = config({ base_model: "meta-llama/Llama-3.1-70B", parameter_count: 70_600_000_000, quantization: "4bit", epochs: 4, batch_size: 4, gradient_accumulation_steps: 4, checkpoint_every_steps: 100 });
    const started = Date.now();
    const job = await run(c, jsonl(2000, 2000)); // ~500 tokens per example
    const realSeconds = (Date.now() - started) / 1000;
    expect(job.status).toBe("succeeded");
    expect(job.progress.total_steps).toBe(500);
    const simulatedHours = job.metrics.at(-1)!.elapsed_seconds / 3600;
    expect(simulatedHours).toBeGreaterThan(2);
    expect(realSeconds).toBeLessThan(10);
    expect(job.gpu_seconds).toBeCloseTo(job.metrics.at(-1)!.elapsed_seconds, 0);
    expect(job.checkpoints.map((k) => k.step)).toEqual([100, 200, 300, 400, 500]);
    for (const k of job.checkpoints) {
      expect(k.eval_loss).not.toBeNull();
      expect(job.metrics.find((m) => m.step === k.step)?.train_loss).toBe(k.train_loss);
    }
  });

  it("the same seed and dataset reproduce the same metrics through the whole simulator", async () => {
    const data = jsonl(300);
    const [a, b] = await Promise.all([run(config({ seed: 99 }), data), run(config({ seed: 99 }), data)]);
    expect(a.id).not.toBe(b.id);
    expect(a.metrics.length).toBeGreaterThan(10);
    expect(b.metrics).toEqual(a.metrics);
  });

  it("tokens per second reported in metrics match the model size", async () => {
    const job = await run(config({ parameter_count: 8e9 }), jsonl(100));
    const expected = throughput(config({ parameter_count: 8e9 }));
    for (const m of job.metrics) expect(Math.abs(m.tokens_per_second / expected - 1)).toBeLessThanOrEqual(0.031);
  });
});
