/**
 * The validation cursor: everything the engine knows between two chunks, as
 * plain JSON so the worker can store it in a jsonb column and resume in a new
 * invocation. Its size is bounded whatever the file size: counters, the first
 * N issues, histograms (distinct values are bounded by the line cap) and the
 * partial last line (at most `maxLineBytes`, base64).
 */
import type { DatasetFormat, TokenizerFamily } from "../../../types/dataset.ts";
import type { Histogram } from "./histogram.ts";
import type { IssueLog } from "./issues.ts";

/**
 * No size limit of the engine's own: the limit is the lora-datasets bucket's
 * `file_size_limit` (MAX_DATASET_SIZE_MB, 500 MiB), which the worker passes as
 * `maxFileBytes` (`private.dataset_validation_options()`), so operators change
 * it in one place.
 */
const NO_FILE_LIMIT = Number.MAX_SAFE_INTEGER;

/** A base model the dataset may be trained on, for per-model statistics. */
export type ModelSpec = { family: TokenizerFamily; contextLength: number };

export type EngineOptions = {
  /** Longest accepted line in bytes, excluding "\n" (default 2 MiB); longer lines are rejected while streaming. */
  maxLineBytes?: number;
  /** Largest accepted file in bytes: the bucket's `file_size_limit` (default: no limit). */
  maxFileBytes?: number;
  /** The object's size when known (Storage metadata): a file over the limit fails before any byte is read. */
  fileSize?: number;
  /** Deepest accepted nesting of arrays/objects (default 16; the formats need 3). */
  maxDepth?: number;
  /** Fewest valid examples for a usable dataset (default 10). */
  minExamples?: number;
  /** Owner's tolerance: invalid lines up to this fraction of non-blank lines are skipped (default 0). */
  maxInvalidFraction?: number;
  /**
   * Most invalid lines a tolerated file may have (default 100,000): the cluster
   * is sent their numbers to skip, so the list must stay a reasonable request.
   */
  maxSkippedLines?: number;
  /** How many errors, and how many warnings, the report lists (default 100 each). */
  maxReportedIssues?: number;
  /** Tokenizer families to count tokens for; each needs a TokenCounter passed to processChunk. */
  families?: TokenizerFamily[];
  /** Base models by id, for context-length warnings and billable tokens. */
  models?: Record<string, ModelSpec>;
};

export type ResolvedOptions = Required<Omit<EngineOptions, "fileSize">>;

export type TokenHistograms = { total: Histogram; trainable: Histogram };

export type EngineState = IssueLog & {
  version: 1;
  options: ResolvedOptions;
  /** Bytes consumed so far: the offset of the next byte the worker must send. */
  bytes: number;
  /** Lines completed so far (the next line is `line + 1`). */
  line: number;
  /** The partial line carried to the next chunk, base64. */
  carry: string;
  /** Discarding the rest of a line that exceeded maxLineBytes. */
  skipping: boolean;
  /** The first bytes were checked for binary formats. */
  sniffed: boolean;
  /** The file ended (isLast was seen) or a fatal problem stopped reading. */
  done: boolean;
  /** A problem of the whole file stopped reading (LT200–LT203). */
  fatal: boolean;
  format: DatasetFormat | null;
  counts: { blank: number; valid: number; invalid: number; duplicates: number };
  roles: Record<string, number>;
  messages: Histogram;
  tokens: Partial<Record<TokenizerFamily, TokenHistograms>>;
};

/** Fill in defaults and reject nonsense early (a bad option is a programming error). */
export function resolveOptions(o: EngineOptions): ResolvedOptions {
  const r: ResolvedOptions = {
    maxLineBytes: o.maxLineBytes ?? 2 * 1024 * 1024,
    maxFileBytes: o.maxFileBytes ?? NO_FILE_LIMIT,
    maxDepth: o.maxDepth ?? 16,
    minExamples: o.minExamples ?? 10,
    maxInvalidFraction: o.maxInvalidFraction ?? 0,
    maxSkippedLines: o.maxSkippedLines ?? 100_000,
    maxReportedIssues: o.maxReportedIssues ?? 100,
    families: [...new Set(o.families ?? [])],
    models: { ...(o.models ?? {}) },
  };
  const positive = ["maxLineBytes", "maxFileBytes", "maxDepth", "maxReportedIssues", "maxSkippedLines"] as const;
  for (const k of positive) if (!Number.isInteger(r[k]) || r[k] <= 0) throw new RangeError(`${k} must be a positive integer`);
  if (!Number.isInteger(r.minExamples) || r.minExamples < 0) throw new RangeError("minExamples must be a non-negative integer");
  if (!(r.maxInvalidFraction >= 0 && r.maxInvalidFraction <= 1)) throw new RangeError("maxInvalidFraction must be between 0 and 1");
  for (const [id, m] of Object.entries(r.models)) {
    if (!Number.isInteger(m.contextLength) || m.contextLength <= 0) throw new RangeError(`models.${id}.contextLength must be a positive integer`);
    if (!r.families.includes(m.family)) r.families.push(m.family);
  }
  return r;
}
