/**
 * The monitoring modules on their own: reading signed callbacks (body cap
 * without a Content-Length, receiver-side key rotation), mapping cluster
 * payloads to one update shape, bounded concurrency, and the model card.
 */
import { describe, expect, it } from "vitest";
import { mapWithConcurrency } from "../../functions/_shared/concurrency.ts";
import { webhookSecrets } from "../../functions/_shared/env.ts";
import { updateFromEvent, updateFromJob } from "../../functions/_shared/job-updates.ts";
import { renderModelCard } from "../../functions/_shared/model-card.ts";
import { PayloadTooLargeError, readSignedCallback } from "../../functions/_shared/signed-callback.ts";
import { generateWebhookSecret, webhookHeaders } from "../../functions/_shared/webhooks.ts";
import { checkpoint, event, oom, points, snapshotJob } from "./support/events.ts";

describe("readSignedCallback()", () => {
  it("stops reading a streamed body without Content-Length at the cap", async () => {
    const secret = generateWebhookSecret();
    let pulled = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++;
        controller.enqueue(new Uint8Array(64 * 1024));
        if (pulled > 1000) controller.close();
      },
    });
    const headers = await webhookHeaders(secret, { id: "msg_big", body: "x" });
    const req = new Request("http://x/gpu-webhook", { method: "POST", headers, body, duplex: "half" } as RequestInit);
    await expect(readSignedCallback(req, { secrets: [secret], maxBytes: 256 * 1024 })).rejects.toBeInstanceOf(PayloadTooLargeError);
    expect(pulled).toBeLessThan(10);
  });

  it("accepts a message signed with any of the secrets the receiver holds during a rotation", async () => {
    const [oldKey, newKey] = [generateWebhookSecret(), generateWebhookSecret()];
    const accepted = webhookSecrets(`${oldKey} ${newKey}`);
    for (const key of [oldKey, newKey]) {
      const body = JSON.stringify({ hello: key.slice(-4) });
      const req = new Request("http://x/", { method: "POST", headers: await webhookHeaders(key, { id: `m_${key.slice(-4)}`, body }), body });
      expect((await readSignedCallback(req, { secrets: accepted })).body).toBe(body);
    }
    const stranger = generateWebhookSecret();
    const req = new Request("http://x/", { method: "POST", headers: await webhookHeaders(stranger, { id: "m", body: "{}" }), body: "{}" });
    await expect(readSignedCallback(req, { secrets: accepted })).rejects.toMatchObject({ code: "LT430", status: 401 });
  });
});

describe("cluster payloads as updates", () => {
  it("an event carries only what it reports; a snapshot carries everything", () => {
    expect(updateFromEvent(event("job.progress", "j", { sequence: 4, step: 5 }, { metrics: points(1, 5) })))
      .toMatchObject({ sequence: 4, status: "running", metrics: points(1, 5), checkpoints: [] });
    expect(updateFromEvent(event("job.checkpoint", "j", { sequence: 5, step: 10 }, { checkpoint: checkpoint(10, 1) })).checkpoints).toHaveLength(1);
    expect(updateFromEvent(event("job.failed", "j", { sequence: 6 }, { error: oom(3) })).error).toEqual(oom(3));
    const started = updateFromEvent(event("job.started", "j", { sequence: 1 }, { examples: 12, total_steps: 40 }));
    expect(started).toMatchObject({ examples: 12, progress: { total_steps: 40 } });
    const ck = checkpoint(5, 2);
    const snap = updateFromJob(snapshotJob("j", { step: 9, metrics: points(1, 9), checkpoints: [ck] }));
    expect(snap.sequence).toBeUndefined();
    expect(snap).toMatchObject({ status: "running", metrics: points(1, 9), checkpoints: [ck], gpu_seconds: 18 });
  });
});

describe("mapWithConcurrency()", () => {
  it("never runs more than the limit at once and keeps failures as results", async () => {
    let active = 0;
    let peak = 0;
    const out = await mapWithConcurrency(Array.from({ length: 20 }, (_, i) => i), 3, async (i) => {
      active++;
      peak = Math.max(peak, active);
      await new Promise((r) => setTimeout(r, 5));
      active--;
      if (i === 7) throw new Error("seven");
      return i * 2;
    });
    expect(peak).toBe(3);
    expect(out[3]).toEqual({ value: 6 });
    expect(out[7]).toMatchObject({ error: expect.any(Error) });
  });
});

describe("renderModelCard()", () => {
  it("writes Hub front matter, the configuration, dataset statistics, results, cost and the files", () => {
    const card = renderModelCard({
      job: { id: "j1", user_id: "u1", name: "support-bot", finished_at: "2026-11-26T12:00:00Z", runs: 2, total_steps: 90, current_epoch: 3 },
      base_model: { id: "llama-3.1-8b-instruct", display_name: "Llama 3.1 8B Instruct", hf_repo: "meta-llama/Llama-3.1-8B-Instruct", parameter_count: 8030261248, gpu_type: "nvidia-a100-80gb", gpu_count: 1 },
      config: { method: "sft", epochs: 3, learning_rate: 0.0002, batch_size: 4, lora: { rank: 16, alpha: 32, target_modules: ["q_proj", "v_proj"] } },
      dataset: { file_name: "train.jsonl", format: "chat", size_bytes: 2048, stats: {
        examples: 120, duplicates: 1, tokens: { llama3: { totalTokens: 96000, trainableTokens: 4000 } },
        models: { "llama-3.1-8b-instruct": { family: "llama3", billableTokensPerEpoch: 96000, examplesOverContext: 0 } },
      } },
      final_metrics: { step: 90, train_loss: 0.91, eval_loss: 1.02 },
      min_train_loss: 0.88, min_eval_loss: 0.99,
      best_checkpoint: { step: 60, eval_loss: 0.99, name: "checkpoint-60" }, checkpoints: 9,
      cost: { gpu_seconds: "180.5", amount: "0.0948", currency: "USD", estimated_amount: "0.1", price_per_gpu_hour: "1.89" },
      artifacts: [{ kind: "adapter_weights", path: "u1/j1/adapter_model.safetensors", size_bytes: 3_500_000, sha256: "ab".repeat(32) }],
    });
    expect(card.startsWith("---\nbase_model: \"meta-llama/Llama-3.1-8B-Instruct\"\nlibrary_name: peft\n")).toBe(true);
    expect(card).toContain("# support-bot");
    expect(card).toContain("in 2 runs");
    expect(card).toContain("| `lora.target_modules` | q_proj, v_proj |");
    expect(card).toContain("- Examples: 120 (duplicates: 1)");
    expect(card).toContain("- Tokens (llama3 tokenizer): 96,000 total, 4,000 trained on");
    expect(card).toContain("- Best checkpoint: checkpoint-60 (step 60, eval loss 0.9900) of 9");
    expect(card).toContain("- Charged: 0.0948 USD (estimated 0.1000 USD, 1.8900 per GPU-hour)");
    expect(card).toContain("| `adapter_model.safetensors` | adapter_weights | 3.3 MiB |");
    expect(card).toContain('PeftModel.from_pretrained(base, "./adapter")');
  });
});
