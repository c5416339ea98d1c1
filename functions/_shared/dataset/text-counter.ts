/**
 * Exact token counts of text, fast: the reference pipeline (added-token
 * split → normaliser → pre-tokeniser → BPE per piece) with two memo tables.
 *
 * - Per piece: pre-tokenisation cuts text into pieces (words with their
 *   leading space, digit groups, punctuation runs, ...) that BPE never merges
 *   across, and real text repeats a few thousand pieces endlessly. Each
 *   distinct piece is merged once, and found again without being cut out of
 *   the text (piece-cache.ts; the split regex runs sticky with test(), which
 *   allocates no match objects).
 * - Per text: system prompts and instructions repeat verbatim across
 *   examples; a text seen a second time is cached, and from then on costs
 *   one map lookup.
 * Both tables are bounded (cleared when full), so memory stays flat on any
 * file, and neither can change a count.
 *
 * Pre-tokenisers: Llama 3 and Qwen use their own split regex (the
 * tokenizer.json pattern, made JavaScript-compatible as transformers.js
 * does). Every character starts a match of those patterns, so the pieces are
 * simply consecutive sticky matches. Gemma 3 and Mistral have no pre-tokeniser (the whole
 * text is one BPE word), but no merge of theirs produces a "▁" preceded by
 * another character (Gemma: except after ">"), so cutting before such a "▁"
 * changes nothing; tests/dataset/tokenizers.test.ts checks this against the
 * merge lists.
 */
import { bpeMerge } from "./bpe.ts";
import { PieceCache } from "./piece-cache.ts";
import { BYTE_TO_UNICODE, type BpeModel, type PieceSplit } from "./vocab.ts";

export type TextPipeline = {
  model: BpeModel;
  /** Added tokens (special or not), matched greedily longest-first on the raw text, one token each. */
  addedTokens: readonly string[];
  /** NFC-normalise each section (Qwen). */
  nfc: boolean;
  split: PieceSplit;
};

type TrieNode = Map<number, TrieNode> & { end?: string };

/**
 * A copy of `s` that does not keep a larger string alive. V8 represents
 * slices of 13+ characters (and strings JSON.parse cuts out of a line) as
 * views of their parent; caching such a view would pin whole lines in
 * memory. Concatenation forces a flat copy.
 */
function detach(s: string): string {
  return s.length < 13 ? s : (s + " ").slice(0, -1);
}

// eslint-disable-next-line no-control-regex -- the ASCII range starts at U+0000 on purpose
const ASCII = /^[\x00-\x7f]*$/;
const METASPACE = 0x2581;

const MAX_TEXTS = 20_000;
const MAX_TEXT_CHARS = 4_000_000;
const MAX_SIGHTINGS = 100_000;

/**
 * A cheap fingerprint of a text (length and up to 64 sampled characters),
 * to notice a text seen before without copying or fully hashing it.
 */
function sample(s: string): number {
  let h = Math.imul(s.length, 0x9e3779b1);
  const step = Math.max(1, s.length >> 6);
  for (let i = 0; i < s.length; i += step) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h;
}

/** Counts tokens of text with one tokenizer's pipeline. */
export class TextCounter {
  private readonly trie: TrieNode = new Map();
  /** Finds the next character that starts an added token (native scan instead of a loop per character). */
  private readonly starts: RegExp | null;
  private readonly pieces = new PieceCache();
  private readonly sticky: RegExp | null;
  private readonly search: RegExp | null;
  private readonly glue: Set<number>;
  private readonly texts = new Map<string, number>();
  private textChars = 0;
  private readonly sighted = new Set<number>();
  private syms = new Int32Array(256);
  private bytes = new Uint8Array(1024);
  private readonly encoder = new TextEncoder();

  constructor(private readonly p: TextPipeline) {
    const split = p.split;
    this.sticky = split.kind === "regex" ? new RegExp(split.source, "uy") : null;
    this.search = split.kind === "regex" ? new RegExp(split.source, "gu") : null;
    this.glue = new Set(split.kind === "metaspace" ? [...split.glue].map((c) => c.charCodeAt(0)) : []);
    for (const tok of p.addedTokens) {
      let node = this.trie;
      for (let i = 0; i < tok.length; i++) {
        const c = tok.charCodeAt(i);
        let child = node.get(c);
        if (!child) node.set(c, (child = new Map()));
        node = child;
      }
      node.end = tok;
    }
    const firsts = [...new Set(p.addedTokens.map((t) => t.charCodeAt(0)))];
    this.starts = firsts.length === 0 ? null : new RegExp(`[${firsts.map((c) => `\\u${c.toString(16).padStart(4, "0")}`).join("")}]`, "g");
  }

  /** Tokens of `text`, added tokens included (each counts one). */
  count(text: string): number {
    const hit = this.texts.get(text);
    if (hit !== undefined) return hit;
    let n = 0;
    let start = 0;
    const len = text.length;
    const starts = this.starts;
    if (starts !== null) {
      starts.lastIndex = 0;
      for (let m = starts.exec(text); m !== null; m = starts.exec(text)) {
        const at = m.index;
        const match = this.matchAt(text, at);
        if (match === null) continue; // lastIndex is already at + 1
        if (at > start) n += this.section(text.slice(start, at));
        n++;
        start = at + match.length;
        starts.lastIndex = start;
      }
    }
    if (start < len) n += this.section(start === 0 ? text : text.slice(start));
    // Cache a text the second time it is seen: most texts are unique, and
    // copying each into the cache would cost more than it saves.
    const fp = sample(text);
    if (!this.sighted.has(fp)) {
      if (this.sighted.size >= MAX_SIGHTINGS) this.sighted.clear();
      this.sighted.add(fp);
      return n;
    }
    if (this.texts.size >= MAX_TEXTS || this.textChars + len > MAX_TEXT_CHARS) {
      this.texts.clear();
      this.textChars = 0;
    }
    this.texts.set(detach(text), n);
    this.textChars += len;
    return n;
  }

  /** Longest added token starting at `i` (as transformers.js DictionarySplitter does). */
  private matchAt(text: string, i: number): string | null {
    let node: TrieNode | undefined = this.trie;
    let match: string | null = null;
    for (let j = i; j < text.length; j++) {
      node = node.get(text.charCodeAt(j));
      if (!node) break;
      if (node.end !== undefined) match = node.end;
    }
    return match;
  }

  private section(raw: string): number {
    const split = this.p.split;
    if (split.kind === "metaspace") return this.metaspace(raw, split.prefix);
    const s = this.p.nfc && !ASCII.test(raw) ? raw.normalize("NFC") : raw;
    const re = this.sticky!;
    let n = 0;
    for (let i = 0; i < s.length; ) {
      re.lastIndex = i;
      let end = re.test(s) ? re.lastIndex : i;
      if (end === i) {
        // Not reached with the families' patterns (every character starts a
        // match); kept so an unmatched gap still counts as its own piece.
        const next = this.search!;
        next.lastIndex = i + 1;
        const m = next.exec(s);
        end = m === null ? s.length : m.index;
      }
      n += this.piece(s, i, end, 0);
      i = end;
    }
    return n;
  }

  /** Cut at "▁" boundaries directly on the raw text (a space and "▁" both read as "▁"). */
  private metaspace(s: string, prefix: boolean): number {
    let n = 0;
    let start = 0;
    let flag = prefix ? 1 : 0;
    let prevSpace = false;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      const space = c === 0x20 || c === METASPACE;
      if (space && i > 0 && !prevSpace && !this.glue.has(s.charCodeAt(i - 1))) {
        n += this.piece(s, start, i, flag);
        flag = 0;
        start = i;
      }
      prevSpace = space;
    }
    return n + this.piece(s, start, s.length, flag);
  }

  /** Count of piece s[start, end); flag 1 marks a piece that gets the "▁" prefix. */
  private piece(s: string, start: number, end: number, flag: number): number {
    const h = PieceCache.hash(s, start, end, flag);
    let c = this.pieces.get(s, start, end, flag, h);
    if (c < 0) {
      const raw = s.slice(start, end);
      const text = this.p.split.kind === "metaspace" ? (flag ? "▁" : "") + raw.replaceAll(" ", "▁") : raw;
      c = this.bpe(text);
      this.pieces.set(detach(raw), flag, h, c);
    }
    return c;
  }

  /** BPE count of one piece. */
  private bpe(piece: string): number {
    const m = this.p.model;
    if (m.kind === "byte") {
      const bytes = this.utf8(piece);
      if (m.whole !== null) {
        let mapped = "";
        for (const b of bytes) mapped += BYTE_TO_UNICODE[b];
        if (m.whole.has(mapped)) return 1;
      }
      const syms = this.symbols(bytes.length);
      for (let i = 0; i < bytes.length; i++) syms[i] = m.byteIds[bytes[i]!]!;
      return bpeMerge(m.table, syms, bytes.length);
    }
    const syms = this.symbols(piece.length);
    let k = 0;
    for (const ch of piece) {
      const id = m.charIds.get(ch);
      // An unknown character waits as a negative id: minus the tokens it becomes.
      syms[k++] = id ?? -(m.byteFallback ? this.encoder.encode(ch).length : 1);
    }
    const left = bpeMerge(m.table, syms, k);
    let n = 0;
    for (let i = 0; i < left; i++) n += syms[i]! >= 0 ? 1 : -syms[i]!;
    return n;
  }

  private symbols(n: number): Int32Array {
    if (this.syms.length < n) this.syms = new Int32Array(n * 2);
    return this.syms;
  }

  private utf8(s: string): Uint8Array {
    if (this.bytes.length < s.length * 3) this.bytes = new Uint8Array(s.length * 3);
    const { written } = this.encoder.encodeInto(s, this.bytes);
    return this.bytes.subarray(0, written);
  }
}
