/**
 * Dataset validation benchmark, against a baseline run in the same process:
 *
 * 1. throughput of the engine (all checks, duplicates, statistics; the
 *    cursor through JSON after every chunk as the worker does) against a
 *    bare line split + JSON.parse of the same bytes;
 * 2. CPU time per chunk, without and with exact token counting;
 * 3. peak RSS while validating generated 50 MB and 500 MB files read in
 *    chunks from disk (each in a fresh child process), without and with
 *    token counting.
 *
 *   npx tsx bench/dataset-validation.ts [--quick]
 *
 * Generated files go to the OS temp directory and are deleted afterwards.
 */
import { spawnSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { MemoryHashStore } from "../functions/_shared/dataset/dedupe.ts";
import { finalize, initialState, processChunk, recordDuplicates, type EngineState } from "../functions/_shared/dataset/engine.ts";
import { loadTokenCounter } from "../functions/_shared/dataset/tokenizer-loader.ts";
import type { TokenCounter } from "../functions/_shared/dataset/tokens.ts";
import type { TokenizerFamily } from "../types/dataset.ts";
import { corpusBytes, writeCorpus } from "./dataset-corpus.ts";

const MiB = 1024 * 1024;
const CHUNK = 4 * MiB;
const cpuMs = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1000;
const f = (x: number, d = 0) => x.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });

/** Bare baseline: stream-decode, split lines, JSON.parse each. */
function baseline(bytes: Uint8Array): number {
  const decoder = new TextDecoder();
  let carry = "";
  let n = 0;
  for (let off = 0; off < bytes.length; off += CHUNK) {
    const text = carry + decoder.decode(bytes.subarray(off, off + CHUNK), { stream: true });
    const lines = text.split("\n");
    carry = lines.pop()!;
    for (const l of lines) if (l.length > 0 && JSON.parse(l)) n++;
  }
  if (carry.length > 0 && JSON.parse(carry)) n++;
  return n;
}

type EngineRun = { ms: number; chunkCpuMs: number[]; examples: number };

/** The engine as the worker drives it: chunks, duplicate store, cursor through JSON. */
function engine(bytes: Uint8Array, chunk: number, counters: Partial<Record<TokenizerFamily, TokenCounter>> = {}): EngineRun {
  const families = Object.keys(counters) as TokenizerFamily[];
  const store = new MemoryHashStore();
  let state = initialState({ fileSize: bytes.length, families });
  const chunkCpuMs: number[] = [];
  const t = process.cpuUsage();
  for (let off = 0; !state.done; off += chunk) {
    const c0 = process.cpuUsage();
    const r = processChunk(state, bytes.subarray(off, off + chunk), { isLast: off + chunk >= bytes.length, counters });
    state = JSON.parse(JSON.stringify(recordDuplicates(r.state, store.claim(r.newHashes)))) as EngineState;
    chunkCpuMs.push(cpuMs(process.cpuUsage(c0)));
  }
  const result = finalize(state);
  return { ms: cpuMs(process.cpuUsage(t)), chunkCpuMs, examples: result.stats.examples };
}

const best = <T extends { ms: number }>(runs: T[]) => runs.reduce((a, b) => (b.ms < a.ms ? b : a));
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.max(0, Math.ceil((p / 100) * xs.length) - 1)]!;

/** Child: the baseline (line split + JSON.parse) over a file from disk, for its peak RSS. */
function baselineRssChild(path: string): void {
  const size = statSync(path).size;
  const fd = openSync(path, "r");
  const buf = new Uint8Array(CHUNK);
  const decoder = new TextDecoder();
  let carry = "";
  let lines = 0;
  const samples: number[] = [];
  const t = performance.now();
  for (let off = 0; off < size; ) {
    const n = readSync(fd, buf, 0, CHUNK, off);
    off += n;
    const parts = (carry + decoder.decode(buf.subarray(0, n), { stream: true })).split("\n");
    carry = parts.pop()!;
    for (const l of parts) if (l.length > 0 && JSON.parse(l)) lines++;
    samples.push(process.memoryUsage().rss);
  }
  closeSync(fd);
  const at = (p: number) => samples[Math.min(samples.length - 1, Math.floor((p / 100) * samples.length))]!;
  console.log(JSON.stringify({ examples: lines, seconds: (performance.now() - t) / 1000, afterLoadMB: samples[0]! / 1e6, rss10: at(10) / 1e6, rss50: at(50) / 1e6, rss100: at(100) / 1e6, maxRssMB: (process.resourceUsage().maxRSS * 1024) / 1e6, maxChunkCpu: 0 }));
}

/** The same measurement under Deno, the Edge Functions runtime. */
function denoRss(path: string, family: TokenizerFamily | "none", v8Flags: string[] = []): Record<string, number> {
  const root = fileURLToPath(new URL("..", import.meta.url));
  const script = `
    import { finalize, initialState, processChunk } from "${root}functions/_shared/dataset/engine.ts";
    import { loadTokenCounter } from "${root}functions/_shared/dataset/tokenizer-loader.ts";
    import process from "node:process";
    const family = ${JSON.stringify(family)};
    const counters = family === "none" ? {} : { [family]: await loadTokenCounter(family) };
    const afterLoad = Deno.memoryUsage().rss;
    const file = await Deno.open(${JSON.stringify(path)});
    const size = (await file.stat()).size;
    const buf = new Uint8Array(${CHUNK});
    let state = initialState({ fileSize: size, families: Object.keys(counters) });
    let peak = 0, maxChunkCpu = 0; const samples = [];
    const t = performance.now();
    for (let off = 0; !state.done; ) {
      let n = 0;
      while (n < buf.length) { const r = await file.read(buf.subarray(n)); if (r === null) break; n += r; }
      off += n;
      const c0 = process.cpuUsage();
      const r = processChunk(state, buf.subarray(0, n), { isLast: off >= size, counters });
      state = JSON.parse(JSON.stringify(r.state));
      const c = process.cpuUsage(c0);
      maxChunkCpu = Math.max(maxChunkCpu, (c.user + c.system) / 1000);
      const rss = Deno.memoryUsage().rss; samples.push(rss); peak = Math.max(peak, rss);
    }
    file.close();
    const result = finalize(state);
    const at = (p) => samples[Math.min(samples.length - 1, Math.floor((p / 100) * samples.length))];
    console.log(JSON.stringify({ examples: result.stats.examples, seconds: (performance.now() - t) / 1000, afterLoadMB: afterLoad / 1e6, rss10: at(10) / 1e6, rss50: at(50) / 1e6, rss100: at(100) / 1e6, maxRssMB: peak / 1e6, maxChunkCpu }));
  `;
  const flags = v8Flags.length ? [`--v8-flags=${v8Flags.join(",")}`] : [];
  const p = spawnSync(join(root, "node_modules/.bin/deno"), ["eval", ...flags, "--config", join(root, "deno.json"), "--ext=js", script], { encoding: "utf8", env: { ...process.env, NO_COLOR: "1" }, maxBuffer: 1 << 24 });
  if (p.status !== 0) throw new Error(p.stderr);
  return JSON.parse(p.stdout.trim().split("\n").pop()!) as Record<string, number>;
}

/** Child: validate a file from disk in chunks and report peak RSS. */
async function rssChild(path: string, family: TokenizerFamily | "none"): Promise<void> {
  const counters: Partial<Record<TokenizerFamily, TokenCounter>> = family === "none" ? {} : { [family]: await loadTokenCounter(family) };
  const afterLoad = process.memoryUsage().rss;
  const size = statSync(path).size;
  const fd = openSync(path, "r");
  const buf = new Uint8Array(CHUNK);
  let state = initialState({ fileSize: size, families: Object.keys(counters) as TokenizerFamily[] });
  const samples: number[] = [];
  let maxChunkCpu = 0;
  let hashes = 0;
  const t = performance.now();
  for (let off = 0; !state.done; ) {
    const n = readSync(fd, buf, 0, CHUNK, off); // a Range request of the worker
    off += n;
    const c0 = process.cpuUsage();
    const r = processChunk(state, buf.subarray(0, n), { isLast: off >= size, counters });
    hashes += r.newHashes.length; // the worker stores these in a table, not in memory
    state = JSON.parse(JSON.stringify(r.state)) as EngineState;
    maxChunkCpu = Math.max(maxChunkCpu, cpuMs(process.cpuUsage(c0)));
    samples.push(process.memoryUsage().rss);
  }
  closeSync(fd);
  const result = finalize(state);
  const at = (p: number) => samples[Math.min(samples.length - 1, Math.floor((p / 100) * samples.length))]!;
  console.log(JSON.stringify({ examples: result.stats.examples, hashes, seconds: (performance.now() - t) / 1000, afterLoadMB: afterLoad / 1e6, rss10: at(10) / 1e6, rss50: at(50) / 1e6, rss100: at(100) / 1e6, maxRssMB: (process.resourceUsage().maxRSS * 1024) / 1e6, maxChunkCpu }));
}

async function main(): Promise<void> {
  const quick = process.argv.includes("--quick");
  const size = quick ? 20 * MiB : 50 * MiB;
  console.log(`Dataset validation (node ${process.version}), ${f(size / MiB)} MiB in-memory corpus, ${CHUNK / MiB} MiB chunks\n`);
  const bytes = corpusBytes(size);
  const base = best([0, 1, 2].map(() => {
    const t = process.cpuUsage();
    const lines = baseline(bytes);
    return { ms: cpuMs(process.cpuUsage(t)), lines };
  }));
  const plain = best([0, 1, 2].map(() => engine(bytes, CHUNK)));
  const llama3 = await loadTokenCounter("llama3");
  engine(bytes.subarray(0, 2 * MiB), CHUNK, { llama3 }); // warm the JIT like the other runs
  const tokens = best([0, 1].map(() => engine(bytes, CHUNK, { llama3 })));
  const mbps = (ms: number) => bytes.length / MiB / (ms / 1000);
  console.log("| run | CPU time | throughput (per CPU second) | vs baseline | CPU per 4 MiB chunk (p95 / max) |");
  console.log("|---|---|---|---|---|");
  console.log(`| baseline: line split + JSON.parse | ${f(base.ms)} ms | ${f(mbps(base.ms), 1)} MiB/s | 100% | |`);
  console.log(`| engine, all checks + duplicates + stats | ${f(plain.ms)} ms | ${f(mbps(plain.ms), 1)} MiB/s | ${f((100 * base.ms) / plain.ms)}% | ${f(pct(plain.chunkCpuMs, 95))} / ${f(Math.max(...plain.chunkCpuMs))} ms |`);
  console.log(`| engine + exact llama3 token counts | ${f(tokens.ms)} ms | ${f(mbps(tokens.ms), 1)} MiB/s | ${f((100 * base.ms) / tokens.ms)}% | ${f(pct(tokens.chunkCpuMs, 95))} / ${f(Math.max(...tokens.chunkCpuMs))} ms |`);
  console.log(`\n${f(plain.examples)} examples, ${f(base.lines)} lines. Largest chunk within 1.5 s CPU (at the measured max rate, halved for safety): ${f(Math.floor((1500 / Math.max(...tokens.chunkCpuMs)) * CHUNK / MiB / 2))} MiB with token counting.\n`);

  const dir = mkdtempSync(join(tmpdir(), "dataset-bench-"));
  try {
    console.log("| runtime | file | run | examples | wall time | RSS after start/load | RSS at 10% / 50% / 100% | peak RSS | max CPU per 4 MiB chunk |");
    console.log("|---|---|---|---|---|---|---|---|---|");
    for (const mb of quick ? [50] : [50, 500]) {
      const path = join(dir, `corpus-${mb}.jsonl`);
      await writeCorpus(path, mb * 1e6);
      const row = (runtime: string, run: string, r: Record<string, number>) =>
        console.log(`| ${runtime} | ${mb} MB | ${run} | ${f(r.examples!)} | ${f(r.seconds!, 1)} s | ${f(r.afterLoadMB!)} MB | ${f(r.rss10!)} / ${f(r.rss50!)} / ${f(r.rss100!)} MB | ${f(r.maxRssMB!)} MB | ${r.maxChunkCpu ? `${f(r.maxChunkCpu)} ms` : ""} |`);
      const node = (run: string, flags: string[] = []) => {
        const p = spawnSync(process.execPath, [...flags, "--import", "tsx", fileURLToPath(import.meta.url), "--rss", path, run], { encoding: "utf8", maxBuffer: 1 << 24 });
        if (p.status !== 0) throw new Error(p.stderr);
        return JSON.parse(p.stdout.trim().split("\n").pop()!) as Record<string, number>;
      };
      row("node + tsx", "baseline: split + JSON.parse", node("baseline"));
      row("node + tsx", "engine", node("none"));
      row("node + tsx", "engine + llama3 tokens", node("llama3"));
      row("deno", "engine", denoRss(path, "none"));
      row("deno", "engine + llama3 tokens", denoRss(path, "llama3"));
      // With V8's old space capped, the garbage collector works harder but the
      // run must still succeed: the live set is small and does not grow.
      row("deno, old space capped at 64 MB", "engine + llama3 tokens", denoRss(path, "llama3", ["--max-old-space-size=64"]));
      rmSync(path);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === "--rss" && process.argv[4] === "baseline") baselineRssChild(process.argv[3]!);
else if (process.argv[2] === "--rss") await rssChild(process.argv[3]!, process.argv[4] as TokenizerFamily | "none");
else await main();
