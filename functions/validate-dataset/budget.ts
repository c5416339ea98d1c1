/**
 * How much one invocation may do, and how big the next chunk should be.
 *
 * Edge Functions get 2 s of CPU per request (and 256 MB of memory). The
 * invocation stops starting chunks once it has spent `workMs` (~1 s) in
 * synchronous work (validation, serialising the cursor, loading a tokenizer),
 * leaving room for the one chunk in flight, the database and the runtime.
 * Time spent waiting for Storage or Postgres costs no CPU, so it is only
 * bounded by `wallMs`, which keeps an invocation well inside the queue's
 * visibility timeout.
 *
 * Chunk size adapts: the first chunk is small (token counters are slow until
 * their caches warm up), later ones aim at `targetChunkMs` of work at the
 * measured rate, at most four times the previous size, and double while no
 * line ends in a chunk (a line can be up to 2 MiB).
 */

export type BudgetOptions = {
  /** Synchronous work per invocation before it hands over (ms). */
  workMs: number;
  /** Wall clock per invocation before it hands over (ms). */
  wallMs: number;
  /** Work one chunk should take (ms). */
  targetChunkMs: number;
  firstChunkBytes: number;
  minChunkBytes: number;
  maxChunkBytes: number;
  /** Fixed chunk size, for tests (overrides the adaptive size). */
  chunkBytes?: number;
  /** Most chunks per invocation (tests use it to force many invocations). */
  maxChunks?: number;
};

const KiB = 1024;

export const DEFAULT_BUDGET: BudgetOptions = {
  workMs: 1000,
  wallMs: 20_000,
  targetChunkMs: 150,
  firstChunkBytes: 16 * KiB,
  minChunkBytes: 16 * KiB,
  maxChunkBytes: 4 * 1024 * KiB,
};

export class Budget {
  readonly options: BudgetOptions;
  readonly #now: () => number;
  readonly #started: number;
  #workMs = 0;
  #chunks = 0;
  #next: number;

  constructor(options: Partial<BudgetOptions> = {}, now: () => number = () => performance.now()) {
    this.options = { ...DEFAULT_BUDGET, ...options };
    this.#now = now;
    this.#started = now();
    this.#next = this.options.chunkBytes ?? this.options.firstChunkBytes;
  }

  /** Run `fn` and count its duration as work. */
  measure<T>(fn: () => T): T {
    const t0 = this.#now();
    try {
      return fn();
    } finally {
      this.#workMs += this.#now() - t0;
    }
  }

  /** Count `ms` of work done elsewhere (e.g. an awaited tokenizer load). */
  spend(ms: number): void {
    this.#workMs += ms;
  }

  get workMs(): number {
    return this.#workMs;
  }

  get chunks(): number {
    return this.#chunks;
  }

  /** No new chunk should start in this invocation. */
  get exhausted(): boolean {
    const o = this.options;
    return this.#workMs >= o.workMs || this.#now() - this.#started >= o.wallMs ||
      (o.maxChunks !== undefined && this.#chunks >= o.maxChunks);
  }

  /** Bytes to request for the next chunk. */
  nextChunkBytes(): number {
    return this.#next;
  }

  /** Learn from a processed chunk: its size, its work time and whether any line ended in it. */
  observe(bytes: number, workMs: number, linesEnded: boolean): void {
    this.#chunks++;
    const o = this.options;
    if (o.chunkBytes !== undefined) return;
    let next: number;
    if (!linesEnded) next = this.#next * 2;
    else {
      const rate = bytes / Math.max(workMs, 1);
      const remaining = Math.max(o.workMs - this.#workMs, 0);
      next = Math.min(rate * Math.min(o.targetChunkMs, Math.max(remaining, o.targetChunkMs / 4)), bytes * 4);
    }
    this.#next = Math.round(Math.min(Math.max(next, o.minChunkBytes), o.maxChunkBytes));
  }
}
