/**
 * Exact distributions of non-negative integers (messages or tokens per
 * example) as a sparse histogram value → count.
 *
 * Why a histogram: percentiles must be exact, yet the validation cursor must
 * not grow with the number of examples. Token counts are integers bounded by
 * the line-length cap, so the number of distinct values is bounded too, and
 * two histograms merge by adding counts. Stored as a plain object (integer
 * keys, which JavaScript keeps in ascending order) so it round-trips through
 * JSON unchanged.
 */
import type { Distribution } from "../../../types/dataset.ts";

/** value → number of examples with that value. */
export type Histogram = Record<string, number>;

/** Count one more occurrence of `value` (a non-negative integer). */
export function addValue(h: Histogram, value: number): void {
  h[value] = (h[value] ?? 0) + 1;
}

/** Add every count of `from` into `into`. */
export function mergeInto(into: Histogram, from: Histogram): void {
  for (const [k, c] of Object.entries(from)) into[k] = (into[k] ?? 0) + c;
}

/** [value, count] pairs in ascending order of value. */
function entries(h: Histogram): Array<[number, number]> {
  return Object.entries(h)
    .map(([k, c]): [number, number] => [Number(k), c])
    .sort((a, b) => a[0] - b[0]);
}

/**
 * The nearest-rank percentile: the smallest value v such that at least
 * ceil(p/100 · n) values are ≤ v (p in 0–100; p = 0 gives the minimum).
 * Equals `sorted[max(0, ceil(p/100 · n) - 1)]` of the brute-force sort.
 */
export function percentile(h: Histogram, p: number): number | null {
  const sorted = entries(h);
  const n = sorted.reduce((s, [, c]) => s + c, 0);
  if (n === 0) return null;
  const rank = Math.max(1, Math.ceil((p / 100) * n));
  let seen = 0;
  for (const [v, c] of sorted) {
    seen += c;
    if (seen >= rank) return v;
  }
  return sorted[sorted.length - 1]![0];
}

/** count, sum, mean, min, p5, p50, p95, max; null when empty. */
export function summarize(h: Histogram): Distribution | null {
  const sorted = entries(h);
  let count = 0;
  let sum = 0;
  for (const [v, c] of sorted) {
    count += c;
    sum += v * c;
  }
  if (count === 0) return null;
  const at = (p: number) => percentile(h, p)!;
  return {
    count,
    sum,
    mean: Math.round((sum / count) * 100) / 100,
    min: sorted[0]![0],
    p5: at(5),
    p50: at(50),
    p95: at(95),
    max: sorted[sorted.length - 1]![0],
  };
}

/** Number of values strictly greater than `limit`. */
export function countAbove(h: Histogram, limit: number): number {
  let n = 0;
  for (const [k, c] of Object.entries(h)) if (Number(k) > limit) n += c;
  return n;
}

/** Σ min(value, cap) over all values: tokens kept when every example is truncated at `cap`. */
export function sumCapped(h: Histogram, cap: number): number {
  let s = 0;
  for (const [k, c] of Object.entries(h)) s += Math.min(Number(k), cap) * c;
  return s;
}
