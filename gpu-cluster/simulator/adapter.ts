/**
 * The final files of a simulated run, in the formats real tooling reads:
 *
 * - `adapter_config.json`: a PEFT `LoraConfig` as `save_pretrained` writes it;
 * - `adapter_model.safetensors`: 8-byte little-endian header length, a JSON
 *   header (`dtype`, `shape`, `data_offsets` per tensor, padded with spaces
 *   to 8 bytes), then the raw little-endian tensor bytes, contiguous and in
 *   header order. Tensors are PEFT's `lora_A` [r, in] and `lora_B` [out, r]
 *   per target module and layer (plus `lora_magnitude_vector` [out] for
 *   DoRA), named as PEFT names them for a Llama-style model.
 *
 * The weights are seeded noise and the model is tiny (2 layers, hidden size
 * 32) to keep files small; the structure is what consumers validate.
 */
import type { GpuTrainingConfig } from "../../functions/_shared/gpu/types.ts";
import { mulberry32 } from "./random.ts";

const LAYERS = 2;
const HIDDEN = 32;
const INTERMEDIATE = 64;

/** A file to upload: relative path, content type and bytes. */
export type ArtifactFile = { path: string; contentType: string; bytes: Uint8Array };

/** PEFT `adapter_config.json` for the run's LoRA settings. */
export function adapterConfig(config: GpuTrainingConfig): Record<string, unknown> {
  return {
    alpha_pattern: {},
    auto_mapping: null,
    base_model_name_or_path: config.base_model,
    bias: "none",
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layer_replication: null,
    layers_pattern: null,
    layers_to_transform: null,
    loftq_config: {},
    lora_alpha: config.lora_alpha,
    lora_dropout: config.lora_dropout,
    megatron_config: null,
    megatron_core: "megatron.core",
    modules_to_save: null,
    peft_type: "LORA",
    r: config.r,
    rank_pattern: {},
    revision: null,
    target_modules: [...config.target_modules],
    task_type: "CAUSAL_LM",
    use_dora: config.use_dora,
    use_rslora: config.use_rslora,
  };
}

/** Input and output features of a module in the tiny Llama-style model. */
function moduleShape(module: string): { prefix: string; inFeatures: number; outFeatures: number } {
  if (["q_proj", "k_proj", "v_proj", "o_proj"].includes(module)) {
    return { prefix: "self_attn.", inFeatures: HIDDEN, outFeatures: HIDDEN };
  }
  if (module === "gate_proj" || module === "up_proj") return { prefix: "mlp.", inFeatures: HIDDEN, outFeatures: INTERMEDIATE };
  if (module === "down_proj") return { prefix: "mlp.", inFeatures: INTERMEDIATE, outFeatures: HIDDEN };
  return { prefix: "", inFeatures: HIDDEN, outFeatures: HIDDEN };
}

type Tensor = { name: string; shape: number[]; values: Float32Array };

function adapterTensors(config: GpuTrainingConfig, step: number): Tensor[] {
  // The weights of the model at `step`: another step, other weights.
  const rng = mulberry32((config.seed ^ 0x5eed ^ Math.imul(step, 0x9e3779b1)) >>> 0);
  const noise = (n: number, scale: number) => Float32Array.from({ length: n }, () => (rng() * 2 - 1) * scale);
  const tensors: Tensor[] = [];
  for (let layer = 0; layer < LAYERS; layer++) {
    for (const module of config.target_modules) {
      const { prefix, inFeatures, outFeatures } = moduleShape(module);
      const base = `base_model.model.model.layers.${layer}.${prefix}${module}`;
      tensors.push({ name: `${base}.lora_A.weight`, shape: [config.r, inFeatures], values: noise(config.r * inFeatures, 1 / Math.sqrt(inFeatures)) });
      tensors.push({ name: `${base}.lora_B.weight`, shape: [outFeatures, config.r], values: noise(outFeatures * config.r, 0.01) });
      if (config.use_dora) {
        tensors.push({ name: `${base}.lora_magnitude_vector`, shape: [outFeatures], values: noise(outFeatures, 0.1).map((v) => 1 + v) });
      }
    }
  }
  return tensors;
}

/** Serialise tensors as a safetensors file (F32, little-endian). */
export function encodeSafetensors(tensors: Tensor[], metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const t of tensors) {
    const size = t.values.length * 4;
    header[t.name] = { dtype: "F32", shape: t.shape, data_offsets: [offset, offset + size] };
    offset += size;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (new TextEncoder().encode(json).length % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let pos = 8 + headerBytes.length;
  for (const t of tensors) {
    for (const v of t.values) {
      view.setFloat32(pos, v, true);
      pos += 4;
    }
  }
  return out;
}

/**
 * The files a successful run uploads: the adapter as it was at `step` (the
 * last step trained, or with early stopping the best checkpoint's), which
 * the safetensors metadata records as `step`.
 */
export function buildAdapterFiles(config: GpuTrainingConfig, opts: { step: number }): ArtifactFile[] {
  const configJson = JSON.stringify(adapterConfig(config), null, 2) + "\n";
  return [
    { path: "adapter_config.json", contentType: "application/json", bytes: new TextEncoder().encode(configJson) },
    {
      path: "adapter_model.safetensors",
      contentType: "application/octet-stream",
      bytes: encodeSafetensors(adapterTensors(config, opts.step), { format: "pt", step: String(opts.step) }),
    },
  ];
}
