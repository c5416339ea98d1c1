/**
 * A memo table piece → token count that is looked up by (text, start, end)
 * without cutting the piece out of the text: hits, by far the common case,
 * allocate nothing (no substring, no match object), which is where most of
 * the time of a naive encode goes. Open addressing; cleared when half full,
 * so its memory is bounded.
 */

/**
 * Pieces are never empty, so "" marks a free slot. The key array is built
 * element by element: `new Array(2 ** 18)` would be a slow dictionary-mode
 * array in V8.
 */
const EMPTY_KEY = "";

export class PieceCache {
  private keys: string[];
  private readonly hashes: Int32Array;
  private readonly counts: Int32Array;
  private readonly flags: Uint8Array;
  private readonly mask: number;
  private used = 0;

  constructor(bits = 18) {
    const slots = 1 << bits;
    this.mask = slots - 1;
    this.keys = Array.from({ length: slots }, () => EMPTY_KEY);
    this.hashes = new Int32Array(slots);
    this.counts = new Int32Array(slots);
    this.flags = new Uint8Array(slots);
  }

  /** FNV-1a over the UTF-16 units of s[start, end), seeded by `flag`. */
  static hash(s: string, start: number, end: number, flag: number): number {
    let h = 0x811c9dc5 ^ flag;
    for (let k = start; k < end; k++) h = Math.imul(h ^ s.charCodeAt(k), 16777619);
    return h;
  }

  /** The cached count of s[start, end) under `flag`, or -1. */
  get(s: string, start: number, end: number, flag: number, h: number): number {
    const len = end - start;
    for (let i = h & this.mask; ; i = (i + 1) & this.mask) {
      const key = this.keys[i]!;
      if (key === EMPTY_KEY) return -1;
      if (this.hashes[i] === h && key.length === len && this.flags[i] === flag && s.startsWith(key, start)) return this.counts[i]!;
    }
  }

  /** Remember a piece (which must be a standalone copy, not a view of a larger string). */
  set(piece: string, flag: number, h: number, count: number): void {
    if (this.used * 2 >= this.keys.length) {
      this.keys = Array.from({ length: this.keys.length }, () => EMPTY_KEY);
      this.used = 0;
    }
    let i = h & this.mask;
    while (this.keys[i] !== EMPTY_KEY) i = (i + 1) & this.mask;
    this.keys[i] = piece;
    this.hashes[i] = h;
    this.counts[i] = count;
    this.flags[i] = flag;
    this.used++;
  }
}
