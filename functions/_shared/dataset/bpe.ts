/**
 * Count-only byte-pair encoding over integer symbols.
 *
 * Merges are applied exactly as the reference tokenizers do (transformers.js
 * `BPE.bpe`, mistral-tokenizer-js `encode`, Hugging Face `tokenizers`):
 * repeatedly merge the adjacent pair with the lowest merge rank, the
 * leftmost one on ties, until no adjacent pair has a merge. Only the number
 * of resulting symbols is needed, so symbols are token ids in typed arrays
 * and the merge table is an open-addressing hash map (pair → rank, result),
 * a few megabytes instead of the references' string-keyed maps.
 */

/**
 * (left id, right id) → (rank, merged id): open addressing in one
 * Int32Array with the four fields of a slot side by side, so a probe touches
 * one cache line.
 */
export class MergeTable {
  private readonly data: Int32Array;
  private readonly mask: number;
  size = 0;

  constructor(capacity: number) {
    let slots = 1024;
    while (slots < capacity * 1.5) slots *= 2; // load factor at most 2/3
    this.mask = slots - 1;
    this.data = new Int32Array(slots * 4).fill(-1);
  }

  /** The slot index (×4) of pair (a, b), free or taken. */
  private slot(a: number, b: number): number {
    const d = this.data;
    let i = (Math.imul(a, 0x9e3779b1) ^ Math.imul(b, 0x85ebca6b)) & this.mask;
    for (;;) {
      const o = i << 2;
      const l = d[o]!;
      if (l === -1 || (l === a && d[o + 1] === b)) return o;
      i = (i + 1) & this.mask;
    }
  }

  /** Add or overwrite a merge (a later duplicate wins, as in the references' maps). */
  set(a: number, b: number, rank: number, merged: number): void {
    const o = this.slot(a, b);
    const d = this.data;
    if (d[o] === -1) this.size++;
    d[o] = a;
    d[o + 1] = b;
    d[o + 2] = rank;
    d[o + 3] = merged;
  }

  /** The slot of pair (a, b), or -1 when they do not merge. */
  find(a: number, b: number): number {
    const o = this.slot(a, b);
    return this.data[o] === -1 ? -1 : o;
  }

  rankAt(slot: number): number {
    return this.data[slot + 2]!;
  }

  mergedAt(slot: number): number {
    return this.data[slot + 3]!;
  }
}

const NONE = 0x7fffffff;

/**
 * Merge `syms[0..n)` in place; returns the number of symbols left, which
 * remain in `syms[0..result)`. Negative ids never merge (unknown characters
 * waiting for byte fallback).
 */
export function bpeMerge(table: MergeTable, syms: Int32Array, n: number): number {
  return n <= 64 ? mergeSmall(table, syms, n) : mergeHeap(table, syms, n);
}

function pairRank(table: MergeTable, a: number, b: number): number {
  if (a < 0 || b < 0) return NONE;
  const s = table.find(a, b);
  return s === -1 ? NONE : table.rankAt(s);
}

/** O(n²) with a rank per adjacent pair: fastest for the short pieces that dominate text. */
function mergeSmall(table: MergeTable, syms: Int32Array, n: number): number {
  const ranks = new Int32Array(Math.max(0, n - 1));
  for (let i = 0; i + 1 < n; i++) ranks[i] = pairRank(table, syms[i]!, syms[i + 1]!);
  while (n > 1) {
    let best = NONE;
    let at = -1;
    for (let i = 0; i + 1 < n; i++) {
      if (ranks[i]! < best) {
        best = ranks[i]!;
        at = i;
      }
    }
    if (at === -1) break;
    syms[at] = table.mergedAt(table.find(syms[at]!, syms[at + 1]!));
    syms.copyWithin(at + 1, at + 2, n);
    ranks.copyWithin(at, at + 1, n - 1);
    n--;
    if (at > 0) ranks[at - 1] = pairRank(table, syms[at - 1]!, syms[at]!);
    if (at + 1 < n) ranks[at] = pairRank(table, syms[at]!, syms[at + 1]!);
  }
  return n;
}

/**
 * Linked list plus a binary heap ordered by (rank, position), with lazy
 * deletion: an entry is stale when its left symbol or right neighbour
 * changed since it was pushed. O(n log n) for long pieces (text without
 * spaces, long digit or symbol runs).
 */
function mergeHeap(table: MergeTable, syms: Int32Array, n: number): number {
  const next = new Int32Array(n);
  const prev = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    next[i] = i + 1 < n ? i + 1 : -1;
    prev[i] = i - 1;
  }
  // Heap entries: rank, position (left), right position, left id, right id.
  let hr = new Int32Array(n * 2);
  let hp = new Int32Array(n * 2);
  let hq = new Int32Array(n * 2);
  let ha = new Int32Array(n * 2);
  let hb = new Int32Array(n * 2);
  let size = 0;
  const less = (i: number, j: number) => hr[i]! < hr[j]! || (hr[i] === hr[j] && hp[i]! < hp[j]!);
  const swap = (i: number, j: number) => {
    for (const h of [hr, hp, hq, ha, hb]) {
      const t = h[i]!;
      h[i] = h[j]!;
      h[j] = t;
    }
  };
  const push = (p: number) => {
    const q = next[p]!;
    if (q === -1) return;
    const r = pairRank(table, syms[p]!, syms[q]!);
    if (r === NONE) return;
    if (size === hr.length) {
      const grow = (h: Int32Array) => {
        const g = new Int32Array(h.length * 2);
        g.set(h);
        return g;
      };
      [hr, hp, hq, ha, hb] = [grow(hr), grow(hp), grow(hq), grow(ha), grow(hb)];
    }
    let i = size++;
    hr[i] = r;
    hp[i] = p;
    hq[i] = q;
    ha[i] = syms[p]!;
    hb[i] = syms[q]!;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!less(i, parent)) break;
      swap(i, parent);
      i = parent;
    }
  };
  const pop = () => {
    size--;
    if (size > 0) {
      swap(0, size);
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < size && less(l, m)) m = l;
        if (r < size && less(r, m)) m = r;
        if (m === i) break;
        swap(i, m);
        i = m;
      }
    }
  };
  const alive = new Uint8Array(n).fill(1);
  for (let i = 0; i + 1 < n; i++) push(i);
  let count = n;
  while (size > 0) {
    const p = hp[0]!;
    const q = hq[0]!;
    const a = ha[0]!;
    const b = hb[0]!;
    pop();
    if (!alive[p] || !alive[q] || next[p] !== q || syms[p] !== a || syms[q] !== b) continue;
    syms[p] = table.mergedAt(table.find(a, b));
    alive[q] = 0;
    next[p] = next[q]!;
    if (next[q] !== -1) prev[next[q]!] = p;
    count--;
    if (prev[p] !== -1) push(prev[p]!);
    push(p);
  }
  let k = 0;
  for (let i = 0; i !== -1 && k < count; i = next[i]!) syms[k++] = syms[i]!;
  return count;
}
