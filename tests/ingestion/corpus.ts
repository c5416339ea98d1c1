/**
 * Generated JSONL for the ingestion tests: valid chat examples with the
 * things that make resuming hard (exact duplicates far apart, multi-byte
 * characters that chunk boundaries split, a long line spanning many chunks,
 * blank and invalid lines), deterministic for a seed.
 */

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = ["data", "tokens", "Zürich", "naïve", "日本語", "emoji 🎉", "λ-calculus", "café", "model", "résumé", "Ωmega", "train"];

function sentence(r: () => number, words: number): string {
  return Array.from({ length: words }, () => WORDS[Math.floor(r() * WORDS.length)]).join(" ");
}

/** `count` chat lines; every 7th repeats an earlier one, one line every 50 is invalid, one every 40 is blank. */
export function chatCorpus(count: number, opts: { seed?: number; longLineBytes?: number } = {}): Uint8Array {
  const r = rng(opts.seed ?? 7);
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    if (i > 10 && i % 7 === 0) lines.push(lines[Math.floor(r() * (i - 1))]!.trim() || lines[1]!);
    else if (i % 50 === 49) lines.push('{"messages": [{"role": "user", "content": "unterminated}');
    else if (i % 40 === 39) lines.push("   ");
    else {
      const messages = [
        ...(r() < 0.3 ? [{ role: "system", content: sentence(r, 4) }] : []),
        { role: "user", content: sentence(r, 3 + Math.floor(r() * 20)) },
        { role: "assistant", content: sentence(r, 3 + Math.floor(r() * 40)) },
      ];
      lines.push(JSON.stringify({ messages }));
    }
    if (opts.longLineBytes && i === Math.floor(count / 2)) {
      const filler = "x".repeat(opts.longLineBytes);
      lines.push(JSON.stringify({ messages: [{ role: "user", content: "long one" }, { role: "assistant", content: filler }] }));
    }
  }
  return new TextEncoder().encode(`${lines.join("\n")}\n`);
}
