/**
 * Token counters per family, built from the vocabulary data of the npm
 * packages (see tokenizer-loader.ts for how that data is loaded).
 */
import type { TokenizerFamily } from "../../../types/dataset.ts";
import type { Example } from "./example.ts";
import { CONTROL_TEXT, renderParts } from "./templates.ts";
import { TextCounter, type TextPipeline } from "./text-counter.ts";
import type { TokenCount, TokenCounter } from "./tokens.ts";
import { buildHfModel, buildMistralModel, type HfTokenizerJson, type MistralTables } from "./vocab.ts";

/**
 * The Split regex of a tokenizer.json, made JavaScript-compatible exactly as
 * transformers.js does (drop needless escapes; rewrite the case-insensitive
 * group JavaScript lacks).
 */
export function jsPattern(regex: string): RegExp {
  const src = regex
    .replace(/\\([#&~])/g, "$1")
    .replaceAll("(?i:'s|'t|'re|'ve|'m|'ll|'d)", "(?:'(?:[sS]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD]))");
  return new RegExp(src, "gu");
}

/** The text pipeline of a Hugging Face tokenizer.json in one of the two shapes the families use. */
export function hfPipeline(json: HfTokenizerJson): TextPipeline {
  const addedTokens = json.added_tokens.map((t) => t.content);
  const norm = json.normalizer;
  const pre = json.pre_tokenizer;
  const steps = pre?.type === "Sequence" ? (pre.pretokenizers ?? []) : [];
  const split = steps[0];
  if (
    steps.length === 2 && split?.type === "Split" && split.pattern?.Regex !== undefined && split.behavior === "Isolated" && !split.invert &&
    steps[1]?.type === "ByteLevel" && steps[1].use_regex === false && !steps[1].add_prefix_space &&
    (norm === null || norm.type === "NFC")
  ) {
    return {
      model: buildHfModel(json, "byte"),
      addedTokens,
      nfc: norm !== null,
      split: { kind: "regex", pattern: jsPattern(split.pattern.Regex) },
    };
  }
  if (norm?.type === "Replace" && norm.pattern?.String === " " && norm.content === "▁" && pre?.type === "Split" && pre.pattern?.String === " ") {
    // After the normaliser there is no space left, so the Split is a no-op: one word per section.
    return { model: buildHfModel(json, "char"), addedTokens, nfc: false, split: { kind: "metaspace", glue: ">", prefix: false } };
  }
  throw new Error("Unsupported tokenizer.json pipeline");
}

/** The text pipeline of mistral-tokenizer-js: a "▁" prefix, spaces as "▁", no special tokens in text. */
export function mistralPipeline(tables: MistralTables): TextPipeline {
  return { model: buildMistralModel(tables), addedTokens: [], nfc: false, split: { kind: "metaspace", glue: "", prefix: true } };
}

/** A {@link TokenCounter} for `family` over a text pipeline. */
export function createTokenCounter(family: TokenizerFamily, pipeline: TextPipeline): TokenCounter & { text: TextCounter } {
  const text = new TextCounter(pipeline);
  const control = CONTROL_TEXT[family];
  return {
    family,
    text,
    count(example: Example): TokenCount {
      let total = 0;
      let trainable = 0;
      for (const p of renderParts(family, example)) {
        if ("special" in p) {
          total++;
          if (p.train) trainable++;
          continue;
        }
        const n = text.count(p.text);
        total += n;
        if (p.trainFrom !== undefined) trainable += n - (p.trainFrom > 0 ? text.count(p.text.slice(0, p.trainFrom)) : 0);
      }
      return { total, trainable };
    },
    findControlText(s: string): string | null {
      return control.exec(s)?.[0] ?? null;
    },
  };
}
