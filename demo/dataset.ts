/**
 * Demo step 1: the user creates a dataset row, uploads the sample file to
 * Storage with supabase-js, and watches validation run over Realtime (the
 * upload trigger enqueued it; the validate-dataset worker does it) until the
 * verdict, which carries the report.
 */
import { readFileSync } from "node:fs";
import { DatasetStatsSchema, ValidationReportSchema, type DatasetStats, type ValidationReport } from "../types/dataset.ts";
import { unwrap, type DemoSupabase } from "./client.ts";
import { DATASET_PATH } from "./data/generate.ts";
import { subscribeFeed, type Row } from "./realtime.ts";
import { bar, bytes, paint, thousands, type Screen } from "./ui.ts";

export type DemoCtx = { screen: Screen; supabase: DemoSupabase; timeoutMs: number };

type DatasetError = { code: string; message: string; hint?: string } | null;

/** Upload and validate the sample dataset; resolves with its id and statistics once it is ready. */
export async function uploadAndValidate(ctx: DemoCtx): Promise<{ datasetId: string; stats: DatasetStats }> {
  const { screen, supabase } = ctx;
  const file = readFileSync(DATASET_PATH);
  screen.section("1. Dataset");
  const row = unwrap("Creating the dataset", await supabase.from("datasets").insert({
    name: "Helio support chats", description: "Customer-support conversations for the Helio smart thermostat (demo/data)",
    file_name: "customer-support.jsonl",
  }).select("id, status, storage_path").single());
  screen.ok(`Created dataset ${row.id} (status ${row.status})`);
  // Subscribed before the upload, so every step of the validation arrives.
  const feed = await subscribeFeed(supabase, `dataset-${row.id}`, [{ event: "UPDATE", table: "datasets", filter: `id=eq.${row.id}` }]);
  screen.ok(`Watching the dataset over Realtime (postgres_changes on datasets, id=eq.${row.id})`);

  const started = Date.now();
  const { error } = await supabase.storage.from("lora-datasets").upload(row.storage_path ?? "", file, { contentType: "application/octet-stream" });
  if (error) throw new Error(`Upload failed: ${error.message}`);
  screen.ok(`Uploaded ${bytes(file.length)} to lora-datasets/${row.storage_path} with supabase-js`);

  let last = -1;
  const deadline = Date.now() + ctx.timeoutMs;
  try {
    for (;;) {
      const changes = await feed.next(Math.max(0, deadline - Date.now())).catch((err: Error) => {
        throw new Error(`Validation did not finish in ${ctx.timeoutMs / 1000} s: ${err.message}`);
      });
      const d = changes.at(-1)!.new as Row;
      const result = show(ctx, d, last, started);
      if (result) return { datasetId: row.id, stats: result };
      last = Number(d.progress_pct);
    }
  } finally {
    await feed.close();
  }
}

/** Render one state of the dataset; its statistics once ready, throws on a failed validation. */
function show(ctx: DemoCtx, d: Row, last: number, started: number): DatasetStats | undefined {
  const { screen } = ctx;
  const failure = d.error as DatasetError;
  const pct = Number(d.progress_pct);
  if (screen.term.tty) {
    screen.live.set([`  Validating  ${paint(screen.term, "cyan", bar(pct / 100, 30))} ${pct.toFixed(0).padStart(3)}%  ${d.status}`]);
  } else if (pct !== last) {
    screen.line(`  validating ${pct.toFixed(0)}% (${d.status})`);
  }
  if (d.status === "ready") {
    screen.live.set([]);
    const stats = DatasetStatsSchema.parse(d.stats);
    const report = ValidationReportSchema.parse(d.report);
    screen.ok(`Validation ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    printReport(screen, stats, report);
    return stats;
  }
  if (d.status === "error") {
    screen.live.set([]);
    const report = d.report ? ValidationReportSchema.parse(d.report) : null;
    screen.fail(`Validation failed: ${failure?.code} ${failure?.message}`);
    for (const e of report?.errors.slice(0, 5) ?? []) screen.detail([`line ${e.line}: ${e.code} ${e.message}`]);
    throw new Error(`Dataset validation failed (${failure?.code})`);
  }
  return undefined;
}

function printReport(screen: Screen, stats: DatasetStats, report: ValidationReport): void {
  const t = stats.tokens.llama3;
  const roles = Object.entries(stats.roleCounts).map(([r, n]) => `${r} ${thousands(n)}`).join(", ");
  const lines = [
    `format        ${stats.format}, ${thousands(stats.lines.valid)} valid lines of ${thousands(stats.lines.total)}`,
    `examples      ${thousands(stats.examples)} (${stats.duplicates} duplicates), messages per example ${stats.messagesPerExample?.mean ?? "?"} (max ${stats.messagesPerExample?.max ?? "?"})`,
    `roles         ${roles}`,
    `issues        ${report.errorCount} errors, ${report.warningCount} warnings`,
  ];
  if (t) {
    lines.push(`tokens        ${thousands(t.totalTokens)} in all, ${thousands(t.trainableTokens)} trainable (Llama 3 tokenizer, exact)`);
    lines.push(`per example   p50 ${t.total?.p50}, p95 ${t.total?.p95}, max ${t.total?.max} tokens`);
  }
  lines.push(`epochs        ${stats.recommendedEpochs ?? "?"} recommended`);
  screen.detail(lines);
}
