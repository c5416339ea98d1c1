/**
 * Parse one line as JSON with every check JSON.parse skips, fast.
 *
 * The fast path is the native JSON.parse plus two cheap passes:
 * - a lexer that jumps from quote to quote with indexOf and counts, outside
 *   strings, the ":" (one per object member in the text) and the nesting
 *   depth;
 * - a walk of the parsed value that counts the members that survived.
 * JSON.parse keeps only the last of duplicate keys, so fewer surviving
 * members than colons means a duplicate key. U+0000 and lone surrogates can
 * only come from \u escapes (raw NULs are rejected as binary, raw
 * surrogates cannot be UTF-8), so strings are only inspected when the line
 * contains "\u". Anything suspicious, and every parse failure, goes to the
 * slow scanner (json-scan.ts), which reports the first problem and where.
 */
import { diagnoseJson, type JsonProblem } from "./json-scan.ts";

export type JsonCheck = { ok: true; value: unknown } | { ok: false; problem: JsonProblem };

const BAD_CHARS = /\0|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Members (":" outside strings) and maximum nesting depth of a text JSON.parse accepted. */
function lex(text: string): { members: number; depth: number } {
  let members = 0;
  let depth = 0;
  let max = 0;
  let i = 0;
  const n = text.length;
  for (;;) {
    const q = text.indexOf('"', i);
    const end = q === -1 ? n : q;
    for (let j = i; j < end; j++) {
      const c = text.charCodeAt(j);
      if (c === 0x3a) members++;
      else if (c === 0x7b || c === 0x5b) {
        if (++depth > max) max = depth;
      } else if (c === 0x7d || c === 0x5d) depth--;
    }
    if (q === -1) return { members, depth: max };
    // Skip the string: find a closing quote preceded by an even number of backslashes.
    let k = q + 1;
    for (;;) {
      const e = text.indexOf('"', k);
      let b = e - 1;
      while (text.charCodeAt(b) === 0x5c) b--;
      if ((e - 1 - b) % 2 === 0) {
        i = e + 1;
        break;
      }
      k = e + 1;
    }
  }
}

/** Count surviving members; with `strings`, also report whether any key or string holds a NUL or lone surrogate. */
function walk(value: unknown, strings: boolean, acc: { members: number; bad: boolean }): void {
  if (typeof value === "string") {
    if (strings && BAD_CHARS.test(value)) acc.bad = true;
  } else if (Array.isArray(value)) {
    for (const v of value) walk(v, strings, acc);
  } else if (value !== null && typeof value === "object") {
    const keys = Object.keys(value);
    acc.members += keys.length;
    for (const k of keys) {
      if (strings && BAD_CHARS.test(k)) acc.bad = true;
      walk((value as Record<string, unknown>)[k], strings, acc);
    }
  }
}

/** Parse `text` as one JSON value; see the module comment for what is checked. */
export function checkJson(text: string, maxDepth: number): JsonCheck {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return slow(text, maxDepth);
  }
  const { members, depth } = lex(text);
  if (depth > maxDepth) return slow(text, maxDepth);
  const acc = { members: 0, bad: false };
  walk(value, text.includes("\\u"), acc);
  if (acc.members !== members || acc.bad) return slow(text, maxDepth);
  return { ok: true, value };
}

function slow(text: string, maxDepth: number): JsonCheck {
  const problem = diagnoseJson(text, maxDepth);
  // The scanner accepts exactly what JSON.parse does; reaching here without a
  // problem would be a bug in one of the two, reported rather than hidden.
  return { ok: false, problem: problem ?? { code: "LT213", index: 0, message: "Invalid JSON" } };
}
