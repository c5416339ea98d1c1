/**
 * Retry timing for the GPU cluster client: exponential backoff with full
 * jitter, and parsing of `Retry-After`. Pure functions; randomness and the
 * clock are passed in so tests are deterministic.
 */

/** Backoff settings, in milliseconds. */
export type BackoffOptions = { baseDelayMs: number; maxDelayMs: number };

/**
 * "Full jitter" backoff (AWS Architecture Blog, "Exponential Backoff And
 * Jitter"): a uniform delay in `[0, min(cap, base * 2^(attempt-1)))`.
 * `attempt` is the attempt that just failed, starting at 1; `random` returns
 * a number in `[0, 1)`.
 */
export function backoffDelay(attempt: number, opts: BackoffOptions, random: () => number): number {
  const ceiling = Math.min(opts.maxDelayMs, opts.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.floor(random() * ceiling);
}

/**
 * Parse a `Retry-After` header (delay in seconds, or an HTTP date) into
 * milliseconds from `nowMs`. Returns `undefined` when absent or unparsable;
 * dates in the past give 0.
 */
export function parseRetryAfter(value: string | null | undefined, nowMs: number): number | undefined {
  if (value == null) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  // HTTP dates name a month; this keeps Date.parse from reading "-5" as a year.
  if (!/[A-Za-z]{3}/.test(trimmed)) return undefined;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - nowMs);
}
