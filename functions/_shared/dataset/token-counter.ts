/**
 * Token counters per family: a text pipeline built from a vocabulary source
 * (vocab.ts), combined with the family's chat template (templates.ts).
 */
import type { TokenizerFamily } from "../../../types/dataset.ts";
import type { Example } from "./example.ts";
import { CONTROL_TEXT, renderParts } from "./templates.ts";
import { TextCounter, type TextPipeline } from "./text-counter.ts";
import type { TokenCount, TokenCounter } from "./tokens.ts";
import { modelFromSource, type VocabSource } from "./vocab.ts";

/** The text pipeline of a vocabulary source. */
export function pipelineFromSource(src: VocabSource): TextPipeline {
  return { model: modelFromSource(src), addedTokens: src.addedTokens, nfc: src.nfc, split: src.split };
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
