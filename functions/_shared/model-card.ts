/**
 * The model card of a trained adapter: a Hugging Face style README.md
 * (YAML front matter for the Hub, then Markdown) rendered from
 * `private.model_card_data(job_id)`: base model, configuration, dataset
 * statistics, final and best metrics, early stopping, cost and the delivered
 * files, plus how to load the adapter with PEFT. Pure: data in, text out
 * (Deno and Node).
 */

/** What `private.model_card_data()` returns (every field may be missing or null). */
export type ModelCardData = {
  job: {
    id: string; user_id: string; name?: string | null; suffix?: string | null; finished_at?: string | null;
    started_at?: string | null; runs?: number | null; parent_job_id?: string | null; total_steps?: number | null;
    current_step?: number | null; current_epoch?: number | null;
  };
  base_model: { id: string; display_name?: string; hf_repo: string; parameter_count?: number; gpu_type?: string; gpu_count?: number };
  config?: Record<string, unknown> | null;
  dataset?: {
    id?: string; name?: string; file_name?: string; format?: string | null; size_bytes?: number | null;
    stats?: Record<string, unknown> | null;
  } | null;
  final_metrics?: Record<string, number | null> | null;
  min_train_loss?: number | null;
  min_eval_loss?: number | null;
  best_checkpoint?: { step?: number; eval_loss?: number | null; train_loss?: number | null; name?: string | null } | null;
  checkpoints?: number | null;
  /** `training_jobs.early_stopping`: the cluster's early-stopping outcome, null without early stopping. */
  early_stopping?: {
    patience?: number | null; stopped_early?: boolean; best_step?: number | null; best_eval_loss?: number | null;
    best_checkpoint?: string | null;
  } | null;
  cost?: {
    gpu_seconds?: number | string | null; amount?: number | string | null; currency?: string | null;
    estimated_amount?: number | string | null; price_per_gpu_hour?: number | string | null;
  } | null;
  artifacts?: Array<{ kind: string; path: string; size_bytes?: number | null; sha256?: string | null }>;
};

const fmt = (v: unknown, digits = 4): string => {
  if (v === null || v === undefined || v === "") return "n/a";
  const n = typeof v === "number" ? v : Number(v);
  if (!Number.isFinite(n)) return String(v);
  return Number.isInteger(n) ? n.toLocaleString("en-US") : n.toFixed(digits);
};

const bytes = (n: number | null | undefined): string => {
  if (n === null || n === undefined) return "n/a";
  const units = ["B", "KiB", "MiB", "GiB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
};

const yamlString = (s: string): string => JSON.stringify(s);

function configRows(config: Record<string, unknown>): string[] {
  const lora = (config.lora ?? {}) as Record<string, unknown>;
  const rows: Array<[string, unknown]> = [
    ["method", config.method], ["epochs", config.epochs], ["learning_rate", config.learning_rate],
    ["lr_scheduler", config.lr_scheduler], ["warmup_ratio", config.warmup_ratio], ["batch_size", config.batch_size],
    ["gradient_accumulation_steps", config.gradient_accumulation_steps], ["max_seq_length", config.max_seq_length],
    ["seed", config.seed], ["lora.rank", lora.rank], ["lora.alpha", lora.alpha], ["lora.dropout", lora.dropout],
    ["lora.target_modules", Array.isArray(lora.target_modules) ? lora.target_modules.join(", ") : lora.target_modules],
    ["lora.use_rslora", lora.use_rslora], ["lora.use_dora", lora.use_dora], ["quantization", config.quantization],
  ];
  return rows.filter(([, v]) => v !== undefined && v !== null).map(([k, v]) => `| \`${k}\` | ${String(v)} |`);
}

function datasetLines(d: NonNullable<ModelCardData["dataset"]>, modelId: string): string[] {
  const stats = (d.stats ?? {}) as Record<string, unknown>;
  const model = ((stats.models ?? {}) as Record<string, Record<string, unknown>>)[modelId] ?? {};
  const family = typeof model.family === "string" ? model.family : undefined;
  const tokens = family ? ((stats.tokens ?? {}) as Record<string, Record<string, unknown>>)[family] : undefined;
  return [
    `- File: \`${d.file_name ?? "n/a"}\` (${bytes(d.size_bytes)}), format \`${d.format ?? stats.format ?? "n/a"}\``,
    `- Examples: ${fmt(stats.examples)} (duplicates: ${fmt(stats.duplicates)})`,
    ...(tokens ? [`- Tokens (${family} tokenizer): ${fmt(tokens.totalTokens)} total, ${fmt(tokens.trainableTokens)} trained on`] : []),
    ...(model.billableTokensPerEpoch !== undefined ? [`- Billable tokens per epoch: ${fmt(model.billableTokensPerEpoch)}`] : []),
    ...(model.examplesOverContext !== undefined ? [`- Examples longer than the context: ${fmt(model.examplesOverContext)}`] : []),
  ];
}

function earlyStoppingLine(es: NonNullable<ModelCardData["early_stopping"]>, job: ModelCardData["job"], steps: unknown): string {
  const best = es.best_step === null || es.best_step === undefined
    ? "no evaluation"
    : `best eval loss ${fmt(es.best_eval_loss)} at step ${fmt(es.best_step)}` +
      (es.best_checkpoint ? `, best checkpoint ${es.best_checkpoint}` : "");
  return es.stopped_early
    ? `- Early stopping (patience ${fmt(es.patience)}): stopped at step ${fmt(steps)} of ${fmt(job.total_steps)}; ${best}.` +
      (es.best_checkpoint ? ` The adapter is the best checkpoint's (${es.best_checkpoint}), not the last step's` : "")
    : `- Early stopping (patience ${fmt(es.patience)}): did not trigger; ${best}`;
}

/** Render README.md for a succeeded job. */
export function renderModelCard(data: ModelCardData): string {
  const { job, base_model: base } = data;
  const title = job.name ?? job.suffix ?? `LoRA adapter ${job.id}`;
  const config = data.config ?? {};
  const fm = data.final_metrics ?? {};
  const best = data.best_checkpoint;
  const cost = data.cost ?? {};
  const gpuHours = cost.gpu_seconds === null || cost.gpu_seconds === undefined ? null : Number(cost.gpu_seconds) / 3600;
  const lines = [
    "---",
    `base_model: ${yamlString(base.hf_repo)}`,
    "library_name: peft",
    "pipeline_tag: text-generation",
    "tags:",
    "  - lora",
    `  - ${String(config.method ?? "sft")}`,
    "  - peft",
    `model_name: ${yamlString(title)}`,
    "---",
    "",
    `# ${title}`,
    "",
    `A LoRA adapter for [${base.display_name ?? base.id}](https://huggingface.co/${base.hf_repo}), trained by job \`${job.id}\`` +
      `${job.finished_at ? ` (finished ${job.finished_at})` : ""}${job.runs && job.runs > 1 ? ` in ${job.runs} runs` : ""}.`,
    "",
    "## Training configuration",
    "",
    "| setting | value |",
    "|---|---|",
    ...configRows(config),
    "",
    `Base model \`${base.hf_repo}\` (${fmt(base.parameter_count)} parameters) on ${base.gpu_count ?? 1} x ${base.gpu_type ?? "GPU"}.`,
    "",
    "## Dataset",
    "",
    ...(data.dataset ? datasetLines(data.dataset, base.id) : ["- n/a"]),
    "",
    "## Results",
    "",
    `- Steps: ${fmt(fm.step ?? job.total_steps)}${job.current_epoch ? `, epochs: ${fmt(job.current_epoch, 2)}` : ""}`,
    `- Final train loss: ${fmt(fm.train_loss)}; final eval loss: ${fmt(fm.eval_loss)}`,
    `- Lowest train loss: ${fmt(data.min_train_loss)}; lowest eval loss: ${fmt(data.min_eval_loss)}`,
    ...(data.early_stopping ? [earlyStoppingLine(data.early_stopping, job, job.current_step ?? fm.step)] : []),
    best
      ? `- Best checkpoint: ${best.name ?? `step ${best.step}`} (step ${fmt(best.step)}, eval loss ${fmt(best.eval_loss)}) of ${fmt(data.checkpoints)}`
      : `- Checkpoints: ${fmt(data.checkpoints)} (none with an eval loss)`,
    "",
    "## Cost",
    "",
    `- GPU time: ${fmt(cost.gpu_seconds, 1)} GPU-seconds (${gpuHours === null ? "n/a" : gpuHours.toFixed(3)} GPU-hours)`,
    `- Charged: ${fmt(cost.amount)} ${cost.currency ?? ""} (estimated ${fmt(cost.estimated_amount)} ${cost.currency ?? ""}, ${fmt(cost.price_per_gpu_hour)} per GPU-hour)`.trimEnd(),
    "",
    "## Files",
    "",
    "| file | kind | size | sha256 |",
    "|---|---|---|---|",
    ...(data.artifacts ?? []).map((a) =>
      `| \`${a.path.split("/").slice(2).join("/")}\` | ${a.kind} | ${bytes(a.size_bytes)} | ${a.sha256 ? `\`${a.sha256}\`` : "n/a"} |`),
    "",
    "## Usage",
    "",
    "```python",
    "from peft import PeftModel",
    "from transformers import AutoModelForCausalLM, AutoTokenizer",
    "",
    `base = AutoModelForCausalLM.from_pretrained(${yamlString(base.hf_repo)})`,
    `tokenizer = AutoTokenizer.from_pretrained(${yamlString(base.hf_repo)})`,
    'model = PeftModel.from_pretrained(base, "./adapter")  # the folder with adapter_config.json',
    "```",
    "",
  ];
  return lines.join("\n");
}
