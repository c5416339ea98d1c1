/**
 * What the engine needs from a tokenizer family: exact token counts of an
 * example rendered with the family's chat template. Implementations live in
 * token-counter.ts (vocabulary-backed, cached) and are loaded lazily per
 * family by tokenizer-loader.ts, so the engine itself stays synchronous and
 * free of multi-megabyte vocabularies.
 */
import type { TokenizerFamily } from "../../../types/dataset.ts";
import type { Example } from "./example.ts";

export type TokenCount = {
  /** Every token of the rendered example, special tokens of the template included. */
  total: number;
  /** Tokens the loss is computed on: assistant content and its end-of-turn token, weight-0 messages excluded. */
  trainable: number;
};

export interface TokenCounter {
  readonly family: TokenizerFamily;
  /** Count an example as the family's chat template renders it. */
  count(example: Example): TokenCount;
  /** The first template control string (e.g. "<|im_end|>") found in `text`, or null. */
  findControlText(text: string): string | null;
}
