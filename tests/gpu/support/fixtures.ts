/** Inputs shared by the GPU cluster tests: a valid configuration, datasets, polling. */
import type { GpuTrainingConfig, SubmitJobRequest } from "../../../types/gpu-cluster.ts";

export const API_KEY = "sim-test-key";
/** A fixed Standard Webhooks secret (base64 of 24 bytes). */
export const WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/** A small, valid, fully resolved configuration (Llama-3.1-8B-sized). */
export function config(overrides: Partial<GpuTrainingConfig> = {}): GpuTrainingConfig {
  return {
    base_model: "meta-llama/Llama-3.1-8B",
    parameter_count: 8_030_000_000,
    r: 16,
    lora_alpha: 32,
    lora_dropout: 0.05,
    target_modules: ["q_proj", "k_proj", "v_proj", "o_proj"],
    use_rslora: false,
    use_dora: false,
    epochs: 2,
    batch_size: 4,
    gradient_accumulation_steps: 2,
    learning_rate: 2e-4,
    lr_scheduler: "cosine",
    warmup_steps: 5,
    max_seq_length: 2048,
    seed: 42,
    checkpoint_every_steps: 20,
    ...overrides,
  };
}

/** JSON Lines with `n` chat examples of roughly `chars` characters each. */
export function jsonl(n: number, chars = 400): string {
  const filler = "x".repeat(Math.max(1, chars - 60));
  return Array.from({ length: n }, (_, i) =>
    JSON.stringify({ messages: [{ role: "user", content: `q${i}` }, { role: "assistant", content: filler }] }),
  ).join("\n") + "\n";
}

/** A submit body for `datasetUrl` with the default configuration. */
export function submitBody(datasetUrl: string, extra: Partial<SubmitJobRequest> = {}): SubmitJobRequest {
  return { dataset_url: datasetUrl, config: config(), ...extra };
}

/** Poll `probe` until it returns a value other than undefined/false, or fail after `timeoutMs`. */
export async function waitFor<T>(
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${opts.what ?? "condition"}`);
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 20));
  }
}
