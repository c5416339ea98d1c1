/**
 * Demo step 4: the delivered model. The user lists the job's artifacts with
 * signed download URLs (Edge Function list-artifacts, called with
 * supabase-js), downloads the adapter, checks each file's SHA-256 against
 * public.model_artifacts (read as the user) and reads adapter_config.json.
 */
import { createHash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { unwrap } from "./client.ts";
import type { DemoCtx } from "./dataset.ts";
import { bytes, paint, table } from "./ui.ts";

type Listed = { kind: string; path: string; size_bytes: number | null; sha256: string | null; signed_url: string | null };
type ListResponse = { data: { job_id: string; expires_at: string; artifacts: Listed[] } };

export type Delivered = { files: Array<{ kind: string; path: string; file: string; sha256: string }>; adapterConfig: Record<string, unknown> };

const DOWNLOAD = ["adapter_weights", "adapter_config", "model_card"];

export async function deliver(ctx: DemoCtx, jobId: string, downloadDir: string): Promise<Delivered> {
  const { screen, supabase } = ctx;
  screen.section("4. Model");
  const { data, error } = await supabase.functions.invoke<ListResponse>("list-artifacts", { body: { job_id: jobId } });
  if (error || !data) throw new Error(`list-artifacts failed: ${error?.message ?? "no data"}`);
  const listed = data.data.artifacts;
  screen.ok(`${listed.length} artifacts in lora-models, signed download URLs valid until ${data.data.expires_at}`);
  const short = (url: string | null) => (url ? `${url.slice(0, 56)}…` : "(none)");
  screen.detail(table(screen.term, [
    ["kind", "file", "size", "sha256", "signed URL"],
    ...listed.map((a) => [a.kind, basename(a.path), a.size_bytes === null ? "?" : bytes(a.size_bytes), (a.sha256 ?? "?").slice(0, 12), short(a.signed_url)]),
  ], { rightAlign: [2] }));

  // The registry as the user sees it (RLS): the checksums the cluster declared and Storage confirmed.
  const registry = new Map(unwrap("Reading model_artifacts", await supabase.from("model_artifacts")
    .select("storage_path, sha256").eq("job_id", jobId)).map((r) => [r.storage_path, r.sha256]));
  mkdirSync(downloadDir, { recursive: true });
  const files: Delivered["files"] = [];
  let adapterConfig: Record<string, unknown> | null = null;
  for (const a of listed.filter((x) => DOWNLOAD.includes(x.kind))) {
    if (!a.signed_url) throw new Error(`No signed URL for ${a.path}`);
    const res = await fetch(a.signed_url);
    if (!res.ok) throw new Error(`Download of ${a.path} answered ${res.status}`);
    const body = new Uint8Array(await res.arrayBuffer());
    const sha256 = createHash("sha256").update(body).digest("hex");
    const expected = registry.get(a.path);
    if (!expected || sha256 !== expected) {
      throw new Error(`Checksum mismatch for ${a.path}: downloaded ${sha256}, model_artifacts.sha256 ${expected ?? "missing"}`);
    }
    const file = join(downloadDir, basename(a.path));
    writeFileSync(file, body);
    files.push({ kind: a.kind, path: a.path, file, sha256 });
    screen.ok(`Downloaded ${basename(a.path)} (${bytes(body.length)}): SHA-256 ${sha256.slice(0, 16)}… matches model_artifacts.sha256`);
    if (a.kind === "adapter_config") adapterConfig = JSON.parse(new TextDecoder().decode(body)) as Record<string, unknown>;
  }
  if (!files.some((f) => f.kind === "adapter_weights")) throw new Error("The job delivered no adapter weights");
  if (!adapterConfig) throw new Error("The job delivered no adapter_config.json");
  const modules = Array.isArray(adapterConfig.target_modules) ? adapterConfig.target_modules.join(",") : String(adapterConfig.target_modules);
  screen.ok(`adapter_config.json parses: ${adapterConfig.peft_type} r=${adapterConfig.r} lora_alpha=${adapterConfig.lora_alpha} ` +
    `target_modules=${modules} base=${adapterConfig.base_model_name_or_path}`);
  screen.detail([paint(screen.term, "dim", `saved in ${downloadDir}`)]);
  return { files, adapterConfig };
}
