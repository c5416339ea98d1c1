/**
 * The resumable dataset-validation engine.
 *
 *   let state = initialState(options);
 *   for each byte range of the file (HTTP Range requests from `state.bytes`):
 *     const r = processChunk(state, bytes, { isLast, counters });
 *     const dups = await store.claim(r.newHashes);      // worker: a table with a unique index
 *     state = recordDuplicates(r.state, dups);          // persist state with the claim, atomically
 *   const result = finalize(state);
 *
 * Pure and synchronous; the state is plain JSON (the cursor the database
 * stores). Results do not depend on how the file is cut into chunks: lines
 * are processed only once complete (a partial line is carried over, so a
 * multi-byte character split across chunks decodes as one), and every
 * byte-position rule (size limit, NUL bytes, sniffing) is defined on the
 * file, not on the chunk. See docs/ingestion.md.
 */
import type { Issue, TokenizerFamily, ValidationResult } from "../../../types/dataset.ts";
import { concatBytes, decodeUtf8, fromBase64, sniff, SNIFF_BYTES, toBase64 } from "./bytes.ts";
import type { IssueCode } from "./codes.ts";
import { recommendedEpochs } from "./epochs.ts";
import { countAbove, summarize, sumCapped } from "./histogram.ts";
import { countBySeverity, makeIssue, record } from "./issues.ts";
import { processLine, type HashEntry, type LineContext } from "./line.ts";
import { resolveOptions, type EngineOptions, type EngineState } from "./state.ts";
import type { TokenCounter } from "./tokens.ts";

export type { HashEntry } from "./line.ts";
export type { EngineOptions, EngineState } from "./state.ts";

export type ChunkOptions = {
  /** These are the file's last bytes: the final line needs no "\n". */
  isLast?: boolean;
  /** A counter for every family in the state's options (see tokenizer-loader.ts). */
  counters?: Partial<Record<TokenizerFamily, TokenCounter>>;
};

export type Progress = { bytes: number; lines: number; examples: number; invalid: number; done: boolean };

export type ChunkResult = {
  state: EngineState;
  progress: Progress;
  /** Fingerprints of this chunk's valid examples, in line order, for the duplicate store. */
  newHashes: HashEntry[];
  /**
   * This chunk's invalid lines, ascending. A tolerated file (`maxInvalidFraction`)
   * is trained on without them: the worker stores them and dispatch sends them
   * to the cluster as `dataset_spec.skip_lines`. Empty after a fatal problem.
   */
  newSkippedLines: number[];
};

/** A valid example identical to the earlier example on `firstLine`. */
export type Duplicate = { line: number; firstLine: number };

const EMPTY = new Uint8Array(0);
const MiB = 1024 * 1024;

/** A fresh cursor. A known `fileSize` over the limit fails the file before any byte is read. */
export function initialState(options: EngineOptions = {}): EngineState {
  const s: EngineState = {
    version: 1,
    options: resolveOptions(options),
    bytes: 0,
    line: 0,
    carry: "",
    skipping: false,
    sniffed: false,
    done: false,
    fatal: false,
    format: null,
    counts: { blank: 0, valid: 0, invalid: 0, duplicates: 0 },
    roles: {},
    messages: {},
    tokens: {},
    totals: {},
    errors: [],
    warnings: [],
  };
  if (options.fileSize !== undefined && options.fileSize > s.options.maxFileBytes) tooLarge(s);
  return s;
}

function fileIssue(s: EngineState, code: IssueCode, message: string, hint?: string, line: number | null = null, column?: number): void {
  record(s, makeIssue(code, line, message, { ...(hint ? { hint } : {}), ...(column ? { column } : {}) }), s.options.maxReportedIssues);
}

function stop(s: EngineState): void {
  s.fatal = true;
  s.done = true;
  s.carry = "";
  s.skipping = false;
}

function tooLarge(s: EngineState): void {
  const max = s.options.maxFileBytes;
  const limit = max >= MiB
    ? `${(max / MiB).toLocaleString("en-US", { maximumFractionDigits: 2 })} MiB`
    : `${max.toLocaleString("en-US")} bytes`;
  fileIssue(s, "LT200", `The file is larger than ${limit}`, "Split the dataset into smaller files");
  stop(s);
}

function tooLong(s: EngineState, line: number, ctx: LineContext): void {
  s.counts.invalid++;
  ctx.skipped.push(line);
  record(s, makeIssue("LT211", line, `The line is longer than ${s.options.maxLineBytes.toLocaleString("en-US")} bytes`, { hint: "Shorten the example, or check that the file really has one JSON object per line" }), s.options.maxReportedIssues);
}

/**
 * Process the next bytes of the file (those starting at `state.bytes`).
 * Returns a new state; the input state is not modified.
 */
export function processChunk(state: EngineState, bytes: Uint8Array, opts: ChunkOptions = {}): ChunkResult {
  const s = structuredClone(state);
  const ctx: LineContext = { counters: opts.counters ?? {}, hashes: [], skipped: [] };
  if (s.done) return result(s, ctx);
  for (const f of s.options.families) if (!ctx.counters[f]) throw new Error(`processChunk() needs a token counter for "${f}"`);

  // Byte-position rules first, so they hold whatever the chunk boundaries:
  // nothing past the size limit or past the first NUL byte is looked at.
  let data = bytes;
  let halt: "size" | "nul" | null = null;
  const room = s.options.maxFileBytes - s.bytes;
  if (data.length > room) {
    data = data.subarray(0, room);
    halt = "size";
  }
  const nul = data.indexOf(0);
  if (nul !== -1) {
    data = data.subarray(0, nul);
    halt = "nul";
  }
  s.bytes += data.length;
  const buf = s.skipping ? data : concatBytes(s.carry ? fromBase64(s.carry) : EMPTY, data);
  const isLast = opts.isLast === true;

  if (!s.sniffed && (buf.length >= SNIFF_BYTES || buf.includes(0x0a) || isLast || halt !== null)) {
    s.sniffed = true;
    const found = sniff(buf.subarray(0, SNIFF_BYTES));
    if (found) {
      const hint = found.code === "LT203" ? "Save the file as UTF-8" : `Decompress or convert it: upload the .jsonl text itself, not a ${found.kind} file`;
      fileIssue(s, found.code, `This is a ${found.kind} file, not JSONL text`, hint);
      stop(s);
      return result(s, ctx);
    }
  }

  const max = s.options.maxLineBytes;
  let pos = 0;
  for (;;) {
    const nl = buf.indexOf(0x0a, pos);
    if (nl === -1 || s.fatal) break;
    const line = s.line + 1;
    if (s.skipping) s.skipping = false;
    else if (nl - pos > max) tooLong(s, line, ctx);
    else processLine(s, buf.subarray(pos, nl), line, ctx);
    s.line = line;
    pos = nl + 1;
  }
  let rest = s.skipping ? EMPTY : buf.subarray(pos);
  if (rest.length > max) {
    tooLong(s, s.line + 1, ctx);
    s.skipping = true;
    rest = EMPTY;
  }

  if (halt === "size") {
    tooLarge(s);
  } else if (halt === "nul") {
    const before = decodeUtf8(rest);
    const column = s.skipping || before === null ? undefined : [...before].length + 1;
    const at = `line ${(s.line + 1).toLocaleString("en-US")}${column === undefined ? "" : `, column ${column}`}`;
    fileIssue(s, "LT202", `NUL byte at ${at}: this is a binary file, or text in UTF-16/UTF-32`, "Upload UTF-8 JSONL text");
    stop(s);
  } else if (isLast) {
    if (s.skipping) s.line++;
    else if (rest.length > 0) processLine(s, rest, ++s.line, ctx);
    s.skipping = false;
    s.done = true;
    rest = EMPTY;
  }
  if (!s.fatal) s.carry = rest.length > 0 ? toBase64(rest) : "";
  return result(s, ctx);
}

function result(s: EngineState, ctx: LineContext): ChunkResult {
  return {
    state: s,
    progress: { bytes: s.bytes, lines: s.line, examples: s.counts.valid, invalid: s.counts.invalid, done: s.done },
    newHashes: ctx.hashes,
    newSkippedLines: s.fatal ? [] : ctx.skipped,
  };
}

/** Record duplicates found by the hash store for the chunk just processed. Returns a new state. */
export function recordDuplicates(state: EngineState, duplicates: readonly Duplicate[]): EngineState {
  if (duplicates.length === 0) return state;
  const s = structuredClone(state);
  for (const d of duplicates) {
    s.counts.duplicates++;
    record(s, makeIssue("LT260", d.line, `The example is identical to the one on line ${d.firstLine}`, { hint: "Remove duplicates: they over-weight those examples" }), s.options.maxReportedIssues);
  }
  return s;
}

/**
 * A NUL byte means the file is not text: whatever its earlier "lines" looked
 * like (invalid UTF-8, broken JSON, duplicates recorded after the chunk) says
 * nothing about a dataset, so the verdict is the one file-level LT202.
 */
function onlyBinaryVerdict(s: EngineState): void {
  s.errors = s.errors.filter((i) => i.code === "LT202");
  s.warnings = [];
  s.totals = { LT202: s.totals.LT202! };
  s.counts = { blank: 0, valid: 0, invalid: 0, duplicates: 0 };
  s.format = null;
  s.roles = {};
  s.messages = {};
  s.tokens = {};
}

/** The verdict, statistics and report of a fully processed file. */
export function finalize(state: EngineState): ValidationResult {
  if (!state.done) throw new Error("finalize() needs the whole file: call processChunk(..., { isLast: true }) first");
  const s = structuredClone(state);
  if ((s.totals.LT202 ?? 0) > 0) onlyBinaryVerdict(s);
  const o = s.options;
  const { valid, invalid, blank } = s.counts;
  const nonBlank = valid + invalid;
  const invalidFraction = nonBlank === 0 ? 0 : invalid / nonBlank;
  if (!s.fatal) {
    if (nonBlank === 0) fileIssue(s, "LT205", "The file has no examples", "Upload a JSONL file with one example per line");
    else {
      if (invalidFraction > o.maxInvalidFraction) {
        const pct = (x: number) => `${(x * 100).toLocaleString("en-US", { maximumFractionDigits: 2 })}%`;
        fileIssue(s, "LT207", `${invalid.toLocaleString("en-US")} of ${nonBlank.toLocaleString("en-US")} lines are invalid (${pct(invalidFraction)}); the tolerance is ${pct(o.maxInvalidFraction)}`, "Fix the listed lines, or raise max_invalid_fraction to skip them");
      } else if (invalid > o.maxSkippedLines) {
        fileIssue(s, "LT246", `${invalid.toLocaleString("en-US")} invalid lines; at most ${o.maxSkippedLines.toLocaleString("en-US")} can be skipped in training`, "Fix or remove the listed lines and upload the file again");
      }
      if (valid < o.minExamples) fileIssue(s, "LT206", `${valid} valid examples; at least ${o.minExamples} are needed`, "Add more examples");
    }
  }
  const failed = s.fatal || ["LT205", "LT206", "LT207", "LT246"].some((c) => (s.totals[c] ?? 0) > 0);
  const tokens: ValidationResult["stats"]["tokens"] = {};
  for (const f of o.families) {
    const h = s.tokens[f] ?? { total: {}, trainable: {} };
    tokens[f] = { total: summarize(h.total), trainable: summarize(h.trainable), totalTokens: sumCapped(h.total, Infinity), trainableTokens: sumCapped(h.trainable, Infinity) };
  }
  const models: ValidationResult["stats"]["models"] = {};
  for (const id of Object.keys(o.models).sort()) {
    const m = o.models[id]!;
    const h = s.tokens[m.family]?.total ?? {};
    models[id] = { family: m.family, contextLength: m.contextLength, examplesOverContext: countAbove(h, m.contextLength), billableTokensPerEpoch: sumCapped(h, m.contextLength) };
  }
  const totals: Record<string, number> = {};
  for (const code of Object.keys(s.totals).sort()) totals[code] = s.totals[code]!;
  return {
    verdict: failed ? "error" : "ready",
    format: s.format,
    stats: {
      format: s.format,
      lines: { total: s.line, blank, valid, invalid },
      examples: valid,
      duplicates: s.counts.duplicates,
      messagesPerExample: summarize(s.messages),
      roleCounts: s.roles,
      tokens,
      models,
      recommendedEpochs: recommendedEpochs(valid),
    },
    report: {
      errorCount: countBySeverity(totals, "error"),
      warningCount: countBySeverity(totals, "warning"),
      totals,
      errors: s.errors as Issue[],
      warnings: s.warnings as Issue[],
      invalidFraction,
      maxInvalidFraction: o.maxInvalidFraction,
    },
  };
}
