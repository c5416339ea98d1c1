/**
 * Exact duplicate detection across chunks, with bounded cursor state.
 *
 * Remembering every fingerprint in the cursor would make it grow with the
 * file (8 bytes × 1M examples), so fingerprints live in a store instead:
 * processChunk returns the chunk's `newHashes` (hash, line) in line order,
 * the store "claims" them, and reports each entry whose hash was first seen
 * on an EARLIER line. Claiming is idempotent: re-claiming the same
 * (hash, line) after a redelivered message finds the entry's own line and
 * reports nothing, so a duplicate is never counted twice.
 *
 * The worker's store is a table, e.g.
 *   create table private.dataset_example_hashes (
 *     dataset_id uuid, hash text, line int, primary key (dataset_id, hash));
 *   insert ... select distinct on (hash) hash, line ... order by hash, line
 *     on conflict do nothing;
 *   -- duplicates: input rows whose stored line is smaller than their own
 * committed in the same transaction as the new cursor. {@link MemoryHashStore}
 * implements the same contract in memory for tests and benchmarks.
 */
import type { TokenizerFamily, ValidationResult } from "../../../types/dataset.ts";
import { finalize, initialState, processChunk, recordDuplicates, type Duplicate, type EngineOptions, type EngineState, type HashEntry } from "./engine.ts";
import type { TokenCounter } from "./tokens.ts";

/** The contract of a fingerprint store (the worker's is async). */
export interface HashStore {
  claim(entries: readonly HashEntry[]): Duplicate[] | Promise<Duplicate[]>;
}

/** In-memory store: hash → first line. */
export class MemoryHashStore implements HashStore {
  private readonly first = new Map<string, number>();

  claim(entries: readonly HashEntry[]): Duplicate[] {
    const dups: Duplicate[] = [];
    for (const { hash, line } of entries) {
      const seen = this.first.get(hash);
      if (seen === undefined || line < seen) this.first.set(hash, line);
      else if (seen < line) dups.push({ line, firstLine: seen });
    }
    return dups;
  }

  get size(): number {
    return this.first.size;
  }
}

export type RunOptions = {
  options?: EngineOptions;
  /** Bytes per chunk (default: the whole buffer in one chunk). */
  chunkSize?: number;
  counters?: Partial<Record<TokenizerFamily, TokenCounter>>;
  store?: MemoryHashStore;
  /** Pass the state through JSON between chunks, as the database does. */
  roundTrip?: boolean;
  /** Called with every intermediate state (tests check they stay small). */
  onState?: (state: EngineState) => void;
};

/** Validate a whole in-memory file chunk by chunk, the way the worker does. */
export function validateBytes(bytes: Uint8Array, run: RunOptions = {}): ValidationResult {
  const store = run.store ?? new MemoryHashStore();
  const size = Math.max(1, run.chunkSize ?? bytes.length);
  let state = initialState({ ...run.options, fileSize: bytes.length });
  let offset = 0;
  do {
    const chunk = bytes.subarray(offset, offset + size);
    offset += chunk.length;
    const r = processChunk(state, chunk, { isLast: offset >= bytes.length, ...(run.counters ? { counters: run.counters } : {}) });
    state = recordDuplicates(r.state, store.claim(r.newHashes));
    if (run.roundTrip) state = JSON.parse(JSON.stringify(state)) as EngineState;
    run.onState?.(state);
  } while (!state.done);
  return finalize(state);
}
