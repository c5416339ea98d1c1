/**
 * One complete line through every check, in order: CR and BOM stripping,
 * blank lines, strict UTF-8, JSON, the top-level object, the file's format,
 * and for a valid example its statistics, fingerprint and token counts.
 * A line ends up exactly one of blank, valid or invalid.
 */
import type { TokenizerFamily } from "../../../types/dataset.ts";
import { decodeUtf8, findInvalidUtf8, isBlank } from "./bytes.ts";
import type { IssueCode } from "./codes.ts";
import { exampleHash, type Example, type LineIssue } from "./example.ts";
import { checkExample, detectFormat, unknownFormatIssue } from "./formats.ts";
import { addValue } from "./histogram.ts";
import { makeIssue, record } from "./issues.ts";
import { checkJson } from "./json-check.ts";
import { columnAt } from "./json-scan.ts";
import type { EngineState } from "./state.ts";
import type { TokenCounter } from "./tokens.ts";

/** A valid example's fingerprint, for duplicate detection across chunks. */
export type HashEntry = { hash: string; line: number };

export type LineContext = {
  counters: Partial<Record<TokenizerFamily, TokenCounter>>;
  hashes: HashEntry[];
  /** Lines counted invalid in this chunk: what the cluster must skip when the file is tolerated. */
  skipped: number[];
};

const fmt = (n: number) => n.toLocaleString("en-US");

function issue(s: EngineState, code: IssueCode, line: number, message: string, extra: { column?: number; hint?: string } = {}): void {
  record(s, makeIssue(code, line, message, extra), s.options.maxReportedIssues);
}

function invalidLine(s: EngineState, line: number, i: LineIssue, ctx: LineContext): void {
  s.counts.invalid++;
  ctx.skipped.push(line);
  issue(s, i.code, line, i.message, i);
}

/** Process the bytes of line `line` (without its "\n"). */
export function processLine(s: EngineState, raw: Uint8Array, line: number, ctx: LineContext): void {
  let bytes = raw;
  if (bytes.length > 0 && bytes[bytes.length - 1] === 0x0d) bytes = bytes.subarray(0, bytes.length - 1);
  if (line === 1 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
    bytes = bytes.subarray(3);
    issue(s, "LT204", 1, "The file starts with a UTF-8 byte order mark; it was ignored", { hint: "Save the file as UTF-8 without BOM" });
  }
  if (isBlank(bytes)) {
    s.counts.blank++;
    issue(s, "LT212", line, "Blank line skipped", { hint: "Remove empty lines between examples" });
    return;
  }
  const text = decodeUtf8(bytes);
  if (text === null) {
    const bad = findInvalidUtf8(bytes);
    const at = bad ? bytes[bad.offset]! : 0;
    invalidLine(s, line, {
      code: "LT210",
      message: `Invalid UTF-8 byte 0x${at.toString(16).toUpperCase().padStart(2, "0")}`,
      hint: "Save the file as UTF-8 (it may be Latin-1 or Windows-1252), or remove the corrupted bytes",
      ...(bad ? { column: bad.column } : {}),
    }, ctx);
    return;
  }
  const json = checkJson(text, s.options.maxDepth);
  if (!json.ok) {
    const p = json.problem;
    invalidLine(s, line, { code: p.code, message: p.message, column: columnAt(text, p.index), ...(p.hint ? { hint: p.hint } : {}) }, ctx);
    return;
  }
  const value = json.value;
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    const kind = Array.isArray(value) ? "an array" : value === null ? "null" : `a ${typeof value}`;
    invalidLine(s, line, { code: "LT219", message: `The line is ${kind}, not a JSON object`, column: columnAt(text, text.search(/\S/)), hint: "Each line must be one JSON object, e.g. {\"messages\": [...]}" }, ctx);
    return;
  }
  const obj = value as Record<string, unknown>;
  if (s.format === null) {
    const detected = detectFormat(obj);
    if (detected === null) {
      invalidLine(s, line, unknownFormatIssue(obj), ctx);
      return;
    }
    s.format = detected;
  }
  const issues: LineIssue[] = [];
  const example = checkExample(s.format, obj, issues);
  for (const i of issues) issue(s, i.code, line, i.message, i);
  if (example === null) {
    s.counts.invalid++;
    ctx.skipped.push(line);
    return;
  }
  s.counts.valid++;
  if (example.kind === "chat") {
    addValue(s.messages, example.messages.length);
    for (const m of example.messages) s.roles[m.role] = (s.roles[m.role] ?? 0) + 1;
  }
  ctx.hashes.push({ hash: exampleHash(example), line });
  countTokens(s, example, line, ctx);
}

function countTokens(s: EngineState, example: Example, line: number, ctx: LineContext): void {
  for (const family of s.options.families) {
    const counter = ctx.counters[family]!;
    const { total, trainable } = counter.count(example);
    const h = (s.tokens[family] ??= { total: {}, trainable: {} });
    addValue(h.total, total);
    addValue(h.trainable, trainable);
    const over = Object.entries(s.options.models)
      .filter(([, m]) => m.family === family && total > m.contextLength)
      .sort(([a], [b]) => (a < b ? -1 : 1));
    if (over.length > 0) {
      const list = over.map(([id, m]) => `${id} (${fmt(m.contextLength)})`).join(", ");
      issue(s, "LT261", line, `The example has ${fmt(total)} ${family} tokens, more than the context of ${list}; it will be truncated`, { hint: "Shorten or split the example, or pick a model with a longer context" });
    }
    const control = findControl(counter, example);
    if (control !== null) {
      issue(s, "LT262", line, `Content contains ${JSON.stringify(control)}, which the ${family} chat template reads as a control token`, { hint: "Remove template markup from the text; it would end turns early or confuse the model" });
    }
  }
}

function findControl(counter: TokenCounter, ex: Example): string | null {
  const texts = ex.kind === "chat" ? ex.messages.map((m) => m.content) : [ex.prompt, ex.completion];
  for (const t of texts) {
    const found = counter.findControlText(t);
    if (found !== null) return found;
  }
  return null;
}
