/**
 * Bounded concurrency: run an async function over items with at most `limit`
 * calls in flight, so a worker with a thousand jobs to poll neither runs them
 * one by one nor opens a thousand connections at once.
 * Web APIs only (Deno and Node).
 */

/**
 * Calls `fn` for every item with at most `limit` calls running at once and
 * resolves with the results in item order. A rejection is kept as a
 * `{ error }` result instead of stopping the others.
 */
export async function mapWithConcurrency<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<Array<{ value: R } | { error: unknown }>> {
  const results = new Array<{ value: R } | { error: unknown }>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      try {
        results[i] = { value: await fn(items[i]!, i) };
      } catch (error) {
        results[i] = { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}
