/**
 * Each family's chat template, rendered as a list of parts so tokens can be
 * counted piecewise (and cached) yet exactly as if the whole rendered string
 * were encoded: a special-token part is one token, and a text part is
 * encoded on its own, which is what the tokenizer does anyway because it
 * splits the rendered string at special tokens first.
 *
 * Templates are the ones the tokenizer packages ship (tokenizer_config.json
 * `chat_template`), transcribed; tests compare against rendering them with
 * the package's own Jinja engine. Mistral has no template in its package;
 * its v0.2 template is used, with the system message prepended to the first
 * user turn (v0.1/v0.2 reject system messages; this is the common practice).
 * Text is stripped with Python's whitespace rules, as Jinja's `trim` is
 * Python's str.strip() in the training stack.
 *
 * Trainable tokens: a text part may start with prompt text (a role header)
 * and end with assistant content; `trainFrom` marks where the content starts,
 * and the trainable count is count(part) - count(part before trainFrom).
 * prompt/completion lines are raw text: BOS, prompt + completion, EOS, with
 * the completion and EOS trainable.
 */
import type { TokenizerFamily } from "../../../types/dataset.ts";
import type { Example, Message } from "./example.ts";

export type Part = { special: string; train: boolean } | { text: string; trainFrom?: number };

/** Characters Python's str.isspace() accepts (what str.strip() removes). */
const PY_SPACE = new Set("\t\n\u000b\f\r\u001c\u001d\u001e\u001f \u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000");

/** Python's str.strip(chars), lstrip and rstrip; without `chars`, Python whitespace. */
export function pyStrip(s: string, side: "both" | "left" | "right" = "both", chars?: string): string {
  const strip = (c: string) => (chars === undefined ? PY_SPACE.has(c) : chars.includes(c));
  let a = 0;
  let b = s.length;
  if (side !== "right") while (a < b && strip(s[a]!)) a++;
  if (side !== "left") while (b > a && strip(s[b - 1]!)) b--;
  return s.slice(a, b);
}

const S = (special: string, train = false): Part => ({ special, train });
const T = (text: string, trainFrom?: number): Part => (trainFrom === undefined ? { text } : { text, trainFrom });
const trains = (m: Message) => m.role === "assistant" && m.weight !== 0;

/** BOS/EOS around raw prompt + completion, per family. */
const RAW: Record<TokenizerFamily, { bos: string | null; eos: string }> = {
  llama3: { bos: "<|begin_of_text|>", eos: "<|end_of_text|>" },
  qwen3: { bos: null, eos: "<|endoftext|>" },
  gemma3: { bos: "<bos>", eos: "<eos>" },
  "mistral-v1": { bos: "<s>", eos: "</s>" },
};

function llama3(messages: Message[]): Part[] {
  const parts: Part[] = [S("<|begin_of_text|>")];
  for (const m of messages) {
    const t = trains(m);
    parts.push(S("<|start_header_id|>"), T(m.role), S("<|end_header_id|>"), T(`\n\n${pyStrip(m.content)}`, t ? 2 : undefined), S("<|eot_id|>", t));
  }
  return parts;
}

function qwen3(messages: Message[]): Part[] {
  const parts: Part[] = [];
  let lastQuery = messages.length - 1;
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i]!;
    if (m.role === "user" && !(m.content.startsWith("<tool_response>") && m.content.endsWith("</tool_response>"))) {
      lastQuery = i;
      break;
    }
  }
  messages.forEach((m, i) => {
    if (m.role !== "assistant") {
      parts.push(S("<|im_start|>"), T(`${m.role}\n${m.content}`), S("<|im_end|>"), T("\n"));
      return;
    }
    let content = m.content;
    let reasoning = "";
    if (content.includes("</think>")) {
      const pieces = content.split("</think>");
      content = pyStrip(pieces[pieces.length - 1]!, "left", "\n");
      const before = pyStrip(pieces[0]!, "right", "\n").split("<think>");
      reasoning = pyStrip(before[before.length - 1]!, "left", "\n");
    }
    const header = "assistant\n";
    const body = i > lastQuery && (i === messages.length - 1 || reasoning !== "")
      ? `<think>\n${pyStrip(reasoning, "both", "\n")}\n</think>\n\n${pyStrip(content, "left", "\n")}`
      : content;
    const t = trains(m);
    parts.push(S("<|im_start|>"), T(header + body, t ? header.length : undefined), S("<|im_end|>", t), T("\n"));
  });
  return parts;
}

function gemma3(messages: Message[]): Part[] {
  const parts: Part[] = [S("<bos>")];
  let prefix = "";
  let loop = messages;
  if (messages[0]?.role === "system") {
    prefix = `${messages[0].content}\n\n`;
    loop = messages.slice(1);
  }
  loop.forEach((m, i) => {
    const header = `${m.role === "assistant" ? "model" : m.role}\n${i === 0 ? prefix : ""}`;
    const t = trains(m);
    parts.push(S("<start_of_turn>"), T(header + pyStrip(m.content), t ? header.length : undefined), S("<end_of_turn>", t), T("\n"));
  });
  return parts;
}

function mistral(messages: Message[]): Part[] {
  const parts: Part[] = [S("<s>")];
  const system = messages[0]?.role === "system" ? messages[0].content : null;
  let text = "";
  let firstUser = true;
  for (const m of messages) {
    if (m.role === "system") continue;
    if (m.role === "user") {
      const content = firstUser && system !== null ? `${system}\n\n${m.content}` : m.content;
      firstUser = false;
      text += `[INST] ${content} [/INST]`;
      continue;
    }
    const t = trains(m);
    const from = text.length;
    text += m.content;
    parts.push(T(text, t ? from : undefined), S("</s>", t));
    text = "";
  }
  if (text !== "") parts.push(T(text));
  return parts;
}

const CHAT: Record<TokenizerFamily, (m: Message[]) => Part[]> = { llama3, qwen3, gemma3, "mistral-v1": mistral };

/** The parts of `example` rendered with `family`'s template. */
export function renderParts(family: TokenizerFamily, example: Example): Part[] {
  if (example.kind === "chat") return CHAT[family](example.messages);
  const { bos, eos } = RAW[family];
  const parts: Part[] = bos === null ? [] : [S(bos)];
  parts.push(T(example.prompt + example.completion, example.prompt.length), S(eos, true));
  return parts;
}

/** The rendered string (what the tokenizer's own encode would receive). */
export function renderText(parts: readonly Part[]): string {
  return parts.map((p) => ("special" in p ? p.special : p.text)).join("");
}

/** Template markup that would be read as control tokens if it appeared in content. */
export const CONTROL_TEXT: Record<TokenizerFamily, RegExp> = {
  llama3: /<\|(?:begin_of_text|end_of_text|start_header_id|end_header_id|eot_id|eom_id|python_tag)\|>/,
  qwen3: /<\|(?:im_start|im_end|endoftext)\|>/,
  gemma3: /<(?:start_of_turn|end_of_turn|bos|eos)>/,
  "mistral-v1": /\[\/?INST\]|<\/?s>/,
};
