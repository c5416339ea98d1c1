/**
 * Token counts are exact: for every family they equal the tokenizer
 * package's own encode of the fully rendered chat template, and the
 * templates equal what real Jinja2 renders.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { validateBytes } from "../../functions/_shared/dataset/dedupe.ts";
import type { Example, Message } from "../../functions/_shared/dataset/example.ts";
import { pyStrip, renderParts, renderText } from "../../functions/_shared/dataset/templates.ts";
import { loadTokenCounter } from "../../functions/_shared/dataset/tokenizer-loader.ts";
import type { TokenCounter } from "../../functions/_shared/dataset/tokens.ts";
import { TOKENIZER_FAMILIES, type TokenizerFamily } from "../../types/dataset.ts";
import { loadReference, PACKAGES, type Reference } from "./references.ts";

const FIXTURES = resolve(import.meta.dirname, "../fixtures/datasets");

/** A deterministic generator (tests must not flake). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296;
}

const PIECES = ["a", "the", " ", "  ", "\t", "\n", "\n\n", "\r\n", "1", "23", "4567", ".", ",", "!", "'s", "'LL", "é", "e\u0301", "日本語", "😀", "𝕏", "\u00a0", "\u3000", "▁", "<", ">", "</", "<td>", "</td>", "<b>", "<|im_end|>", "<|eot_id|>", "<start_of_turn>", "<think>", "</think>", "[INST]", "Ω", "ß", "ﬁ", "ｶ", "\\", '"', "{}", "ــ", "\u2028", "   ", "https://x.y/z?q=1", "snake_case", "CamelCase", "٣", "½", "\u0000"];

function randomText(r: () => number, maxPieces = 40): string {
  let s = "";
  const n = 1 + Math.floor(r() * maxPieces);
  for (let i = 0; i < n; i++) s += PIECES[Math.floor(r() * PIECES.length)];
  return r() < 0.1 ? s.repeat(12) : s;
}

/**
 * Content the JS Jinja renders as Python would: @huggingface/jinja ignores
 * the argument of lstrip('\n')/strip('\n') and strips all whitespace, so
 * whitespace at the edges, and "</think>" (which Qwen3's template splits and
 * strips), are left to the golden test rendered by Python Jinja2.
 */
function content(r: () => number): string {
  const s = randomText(r, 12)
    .replaceAll("</think>", "</thinking>")
    .trim();
  return s.trim() === "" ? `ok${s}x` : s;
}

function conversation(r: () => number): Message[] {
  const m: Message[] = [];
  if (r() < 0.5) m.push({ role: "system", content: content(r) });
  const turns = 1 + Math.floor(r() * 3);
  for (let t = 0; t < turns; t++) {
    m.push({ role: "user", content: content(r) });
    m.push(r() < 0.2 ? { role: "assistant", content: content(r), weight: 0 } : { role: "assistant", content: content(r) });
  }
  if (r() < 0.15) m.push({ role: "user", content: content(r) });
  return m;
}

const refs = new Map<TokenizerFamily, Reference>();
const counters = new Map<TokenizerFamily, TokenCounter>();

describe.each(TOKENIZER_FAMILIES)("%s token counts", (family) => {
  beforeAll(async () => {
    refs.set(family, await loadReference(family));
    counters.set(family, await loadTokenCounter(family));
  }, 120_000);

  it("equal the package's encode of random text, including long pieces and added-token text", () => {
    const r = rng(family.length * 7919);
    const ref = refs.get(family)!;
    const counter = counters.get(family)! as TokenCounter & { text: { count(s: string): number } };
    const texts = [...Array.from({ length: 600 }, () => randomText(r)), "a".repeat(2000), "1234567890".repeat(50), "中文没有空格的长句子测试分词器".repeat(20), "x ".repeat(500), ""];
    const mismatches = texts.filter((t) => counter.text.count(t) !== ref.encodeText(t));
    expect(mismatches).toEqual([]);
  });

  it("equal the package's encode of the package's own chat template, rendered", () => {
    const r = rng(family.length * 104729);
    const ref = refs.get(family)!;
    const counter = counters.get(family)!;
    for (let i = 0; i < 150; i++) {
      const messages = conversation(r);
      const example: Example = { kind: "chat", messages };
      const rendered = ref.renderTemplate(family === "mistral-v1" ? [] : messages.map(({ role, content }) => ({ role, content })));
      const expected = rendered === null ? ref.encodeExample(example) : ref.encodeText(rendered);
      if (rendered !== null) expect(renderText(renderParts(family, example))).toBe(rendered);
      const got = counter.count(example);
      expect(got.total, JSON.stringify(messages)).toBe(expected);
      expect(got.trainable).toBeGreaterThanOrEqual(0);
      expect(got.trainable).toBeLessThanOrEqual(got.total);
    }
  });

  it("count trainable tokens as assistant content plus its end-of-turn token, skipping weight 0", () => {
    const counter = counters.get(family)!;
    const ref = refs.get(family)!;
    const one = (weight?: 0 | 1): Example => ({ kind: "chat", messages: [{ role: "user", content: "What is 2+2?" }, weight === undefined ? { role: "assistant", content: "It is 4." } : { role: "assistant", content: "It is 4.", weight }] });
    const full = counter.count(one());
    expect(counter.count(one(1))).toEqual(full);
    expect(counter.count(one(0))).toEqual({ total: full.total, trainable: 0 });
    // The assistant part of each template, encoded by the package on its own.
    const header = { llama3: "\n\n", qwen3: "assistant\n", gemma3: "model\n", "mistral-v1": "[INST] What is 2+2? [/INST]" }[family];
    const body = family === "qwen3" ? "<think>\n\n</think>\n\nIt is 4." : "It is 4.";
    expect(full.trainable).toBe(ref.encodeText(header + body) - ref.encodeText(header) + 1);
  });

  it("count prompt/completion lines as BOS + text + EOS with the completion trainable", () => {
    const counter = counters.get(family)!;
    const ref = refs.get(family)!;
    const got = counter.count({ kind: "completion", prompt: "Q: 2+2=", completion: " 4" });
    const bos = family === "qwen3" ? 0 : 1;
    expect(got.total).toBe(bos + ref.encodeText("Q: 2+2= 4") + 1);
    expect(got.trainable).toBe(ref.encodeText("Q: 2+2= 4") - ref.encodeText("Q: 2+2=") + 1);
  });
});

describe("chat templates", () => {
  const golden = JSON.parse(readFileSync(resolve(FIXTURES, "chat-templates.golden.json"), "utf8")) as {
    cases: Array<{ messages: Message[]; renders: Record<TokenizerFamily, string> }>;
  };

  it("render exactly what Python Jinja2 renders from each package's template, exotic whitespace included", () => {
    expect(golden.cases.length).toBeGreaterThanOrEqual(50);
    for (const c of golden.cases) {
      for (const family of TOKENIZER_FAMILIES) {
        expect(renderText(renderParts(family, { kind: "chat", messages: c.messages })), `${family} ${JSON.stringify(c.messages)}`).toBe(c.renders[family]);
      }
    }
  });

  it("pyStrip() removes Python's whitespace, or only the given characters", () => {
    expect(pyStrip("\u001c\u0085 x \u00a0")).toBe("x");
    expect(pyStrip("\ufeffx")).toBe("\ufeffx");
    expect(pyStrip("\n  x\n", "left", "\n")).toBe("  x\n");
    expect(pyStrip("\n\nx\n\n", "both", "\n")).toBe("x");
  });
});

describe("vocabulary data", () => {
  it("Gemma 3 and Mistral merges never put a \"▁\" after another character (Gemma: except \">\"), so cutting there is exact", async () => {
    const { tokenizerJSON } = (await import(PACKAGES.gemma3)) as { tokenizerJSON: { model: { merges: [string, string][] } } };
    const gemma = tokenizerJSON.model.merges.filter(([a, b]) => /[^▁]▁/u.test(a + b)).map(([a, b]) => a + b);
    expect(gemma).toEqual([">▁</"]);
    const { default: mistral } = await import("mistral-tokenizer-js");
    const crossing = [...mistral.merges.keys()].filter((k) => /[^▁]▁/u.test(k.replace(" ", "")));
    expect(crossing).toEqual([]);
  });

  it("loadTokenCounter() loads a family once and shares it", async () => {
    expect(loadTokenCounter("mistral-v1")).toBe(loadTokenCounter("mistral-v1"));
    expect((await loadTokenCounter("llama3")).family).toBe("llama3");
  });
});

describe("token statistics in the engine", () => {
  const lines = [
    JSON.stringify({ messages: [{ role: "user", content: "Hi" }, { role: "assistant", content: "Hello there, how can I help you today?" }] }),
    JSON.stringify({ messages: [{ role: "user", content: "Say <|eot_id|> please" }, { role: "assistant", content: "No." }] }),
    ...Array.from({ length: 10 }, (_, i) => JSON.stringify({ messages: [{ role: "user", content: `Question ${i}` }, { role: "assistant", content: `Answer ${i}` }] })),
  ];
  const bytes = new TextEncoder().encode(lines.join("\n"));

  it("count tokens per example, warn about examples over a model's context and about template markup in content", async () => {
    const llama3 = await loadTokenCounter("llama3");
    const models = { "tiny-llama": { family: "llama3" as const, contextLength: 20 }, "big-llama": { family: "llama3" as const, contextLength: 131072 } };
    const result = validateBytes(bytes, { options: { models }, counters: { llama3 } });
    const ref = refs.get("llama3") ?? (await loadReference("llama3"));
    const totals = lines.map((l) => ref.encodeExample({ kind: "chat", messages: (JSON.parse(l) as { messages: Message[] }).messages }));
    const stats = result.stats.tokens.llama3!;
    expect(stats.totalTokens).toBe(totals.reduce((a, b) => a + b, 0));
    expect(stats.total!.max).toBe(Math.max(...totals));
    expect(stats.total!.min).toBe(Math.min(...totals));
    const over = totals.filter((t) => t > 20).length;
    expect(over).toBeGreaterThan(0);
    expect(result.stats.models["tiny-llama"]).toEqual({ family: "llama3", contextLength: 20, examplesOverContext: over, billableTokensPerEpoch: totals.reduce((a, t) => a + Math.min(t, 20), 0) });
    expect(result.stats.models["big-llama"]!.examplesOverContext).toBe(0);
    expect(result.report.totals.LT261).toBe(over);
    expect(result.report.warnings.find((w) => w.code === "LT262")?.line).toBe(2);
    expect(result.verdict).toBe("ready");
  });

  it("processChunk() refuses to run without a counter for a requested family", () => {
    expect(() => validateBytes(bytes, { options: { families: ["gemma3"] } })).toThrow(/token counter for "gemma3"/);
  });
});
