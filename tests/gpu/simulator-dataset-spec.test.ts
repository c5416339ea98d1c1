/**
 * `dataset_spec` through the simulator (issues 15.1, 15.6): the cluster
 * skips the lines validation rejected, reads every other line in the
 * declared format, and puts in the loss only what the masking rule says
 * (`trainable_tokens`, characters / 4 like every token count of the simulator).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GpuClusterClient } from "../../functions/_shared/gpu/client.ts";
import { type GpuSimulator, startGpuSimulator } from "../../gpu-cluster/simulator/index.ts";
import { type DatasetSpec, type Job, type SubmitJobRequest, TERMINAL_JOB_STATUSES } from "../../types/gpu-cluster.ts";
import { type FakeBackend, startFakeBackend } from "./support/backend.ts";
import { API_KEY, config, submitBody, WEBHOOK_SECRET, waitFor } from "./support/fixtures.ts";

const chat = (i: number) => JSON.stringify({ messages: [{ role: "user", content: `uuuu${i}` }, { role: "assistant", content: `aaaaaaa${i}` }] });
const spec = (extra: Partial<DatasetSpec> = {}): DatasetSpec => ({
  line_format: "chat", chat_template: "llama3", train_on_inputs: false, message_weights: true, skip_lines: [], ...extra,
});

describe("dataset_spec on the simulator", () => {
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

  async function run(data: string, extra: Partial<SubmitJobRequest> = {}): Promise<Job> {
    const url = backend.dataset(`${crypto.randomUUID()}.jsonl`, data);
    const { job } = await client.submitJob(submitBody(url, { config: config(), upload_urls_callback_url: backend.uploadUrlsUrl, ...extra }));
    return waitFor(async () => {
      const j = await client.getJob(job.id);
      return TERMINAL_JOB_STATUSES.includes(j.status) ? j : undefined;
    }, { timeoutMs: 20_000, what: "the job to finish" });
  }

  // Lines 3 (not JSON), 5 (blank) and 7 (another format) are what validation tolerated and skipped.
  const lines = [chat(1), chat(2), "{'bad': json}", chat(3), "", chat(4), '{"prompt": "p", "completion": "c"}', chat(5), chat(6), chat(7)];
  const file = lines.join("\n") + "\n";

  it("without a spec, a tolerated bad line fails the job (dataset_invalid)", async () => {
    const job = await run(file);
    expect(job.status).toBe("failed");
    expect(job.error).toMatchObject({ code: "dataset_invalid", category: "user" });
  });

  it("skips the listed lines (physical numbering, blank lines counted) and trains the rest to success", async () => {
    const job = await run(file, { dataset_spec: spec({ skip_lines: [3, 7] }) });
    expect(job.status).toBe("succeeded");
    expect(job.examples).toBe(7);
  });

  it("fails with dataset_invalid naming the line when a line not listed is not an example of the declared format", async () => {
    const job = await run(file, { dataset_spec: spec({ skip_lines: [3] }) });
    expect(job).toMatchObject({ status: "failed", error: { code: "dataset_invalid", category: "user" } });
    expect(job.error!.message).toContain("line 7");
  });

  it("reads ShareGPT lines and counts in the loss only gpt turns whose weight is not 0, the prompt side only with train_on_inputs", async () => {
    const share = (i: number) => JSON.stringify({ conversations: [
      { from: "system", value: "ssss" }, { from: "human", value: "hhhhhhhh" }, { from: "gpt", value: "gggggggggggg", weight: i % 2 },
      { from: "human", value: "hhhh" }, { from: "gpt", value: "GGGGGGGG" },
    ] });
    const data = Array.from({ length: 10 }, (_, i) => share(i)).join("\n");
    const masked = await run(data, { dataset_spec: spec({ line_format: "sharegpt" }) });
    expect(masked.status).toBe("succeeded");
    // 5 examples train 12 + 8 characters, 5 train only 8: 140 characters.
    expect(masked.trainable_tokens).toBe(Math.ceil(140 / 4));
    const inputs = await run(data, { dataset_spec: spec({ line_format: "sharegpt", train_on_inputs: true }) });
    expect(inputs.trainable_tokens).toBe(Math.ceil((140 + 10 * 16) / 4));
    const unweighted = await run(data, { dataset_spec: spec({ line_format: "sharegpt", message_weights: false }) });
    expect(unweighted.trainable_tokens).toBe(Math.ceil(200 / 4));
    expect((await run(data, { dataset_spec: spec({ line_format: "chat" }) })).error).toMatchObject({ code: "dataset_invalid" });
  });
});
