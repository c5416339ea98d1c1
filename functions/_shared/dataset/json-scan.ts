/**
 * A strict RFC 8259 scanner that finds the FIRST problem in a JSON text and
 * says where it is and how to fix it. It is the slow path: lines are parsed
 * with the native JSON.parse first, and only a line that fails (or whose
 * cheap post-checks in json-check.ts see something suspicious) is scanned.
 *
 * It accepts exactly what JSON.parse accepts, and additionally rejects what
 * JSON.parse silently lets through: duplicate keys (JSON.parse keeps the
 * last), nesting deeper than a cap, and strings holding U+0000 or a lone
 * surrogate. Iterative, so hostile nesting cannot overflow the stack.
 * Positions are UTF-16 indexes into the text; callers turn them into columns.
 */

export type JsonProblemCode = "LT213" | "LT214" | "LT215" | "LT216" | "LT217" | "LT218";

export type JsonProblem = { code: JsonProblemCode; index: number; message: string; hint?: string };

/** Scanner states. */
const S = {
  Value: 0, // a value must follow
  ValueOrClose: 1, // after "[": a value or "]"
  After: 2, // after a value: ",", a closer, or the end
  KeyOrClose: 3, // after "{": a key or "}"
  Key: 4, // after "," in an object: a key
} as const;
type State = (typeof S)[keyof typeof S];

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

function isWs(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}
function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}
function hex4(text: string, at: number): number {
  const h = text.slice(at, at + 4);
  return /^[0-9a-fA-F]{4}$/.test(h) ? parseInt(h, 16) : -1;
}

function invalid(index: number, message: string, hint?: string): JsonProblem {
  return hint === undefined ? { code: "LT213", index, message } : { code: "LT213", index, message, hint };
}

/** Scan a string starting at the opening quote; returns its end (after the closing quote) and, if asked, its value. */
function scanString(text: string, start: number, decode: boolean): { end: number; value: string } | JsonProblem {
  let j = start + 1;
  let value = "";
  let runStart = j;
  for (;;) {
    if (j >= text.length) {
      return invalid(start, "Unterminated string", "The line ends inside a string: close it with \", and escape newlines inside strings as \\n");
    }
    const c = text.charCodeAt(j);
    if (c === QUOTE) {
      if (decode) value += text.slice(runStart, j);
      return { end: j + 1, value };
    }
    if (c < 0x20) {
      return invalid(j, `Unescaped control character U+${c.toString(16).toUpperCase().padStart(4, "0")} in string`, "Escape control characters inside strings: \\n, \\t, \\r or \\u00XX");
    }
    if (c >= 0xd800 && c <= 0xdfff) {
      const next = text.charCodeAt(j + 1);
      if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        j += 2;
        continue;
      }
      return { code: "LT218", index: j, message: "String contains a lone surrogate", hint: "Remove the broken character; it cannot be encoded as UTF-8" };
    }
    if (c !== BACKSLASH) {
      j++;
      continue;
    }
    if (decode) value += text.slice(runStart, j);
    const e = text[j + 1];
    if (e === "u") {
      const code = hex4(text, j + 2);
      if (code < 0) return invalid(j, "Invalid \\u escape: expected 4 hex digits");
      if (code === 0) {
        return { code: "LT217", index: j, message: "String contains \\u0000 (NUL)", hint: "Remove NUL characters; Postgres and tokenizers cannot store or read them" };
      }
      if (code >= 0xd800 && code <= 0xdbff) {
        const low = text.startsWith("\\u", j + 6) ? hex4(text, j + 8) : -1;
        if (low < 0xdc00 || low > 0xdfff) {
          return { code: "LT218", index: j, message: `String contains a lone surrogate \\u${text.slice(j + 2, j + 6)}`, hint: "A high surrogate must be followed by a low one (\\uDC00–\\uDFFF); fix the escaping of the emoji or character" };
        }
        if (decode) value += String.fromCharCode(code, low);
        j += 12;
      } else if (code >= 0xdc00 && code <= 0xdfff) {
        return { code: "LT218", index: j, message: `String contains a lone surrogate \\u${text.slice(j + 2, j + 6)}`, hint: "A low surrogate must follow a high one (\\uD800–\\uDBFF); fix the escaping of the emoji or character" };
      } else {
        if (decode) value += String.fromCharCode(code);
        j += 6;
      }
    } else if (e !== undefined && "\"\\/bfnrt".includes(e)) {
      if (decode) value += JSON.parse(`"\\${e}"`) as string;
      j += 2;
    } else {
      return invalid(j, `Invalid escape \\${e ?? ""}`, "Only \\\" \\\\ \\/ \\b \\f \\n \\r \\t and \\uXXXX are valid escapes; write a literal backslash as \\\\");
    }
    runStart = j;
  }
}

/** Scan a number starting at `start`; returns its end. */
function scanNumber(text: string, start: number): number | JsonProblem {
  let j = start;
  if (text.charCodeAt(j) === 0x2d) j++;
  const bad = (hint: string) => invalid(start, `Invalid number "${/^[-+0-9.eE]*/.exec(text.slice(start, start + 40))![0] || text[start]}"`, hint);
  if (!isDigit(text.charCodeAt(j))) return bad("A number needs a digit after \"-\"");
  if (text.charCodeAt(j) === 0x30 && isDigit(text.charCodeAt(j + 1))) return bad("Numbers must not have leading zeros");
  while (isDigit(text.charCodeAt(j))) j++;
  if (text.charCodeAt(j) === 0x2e) {
    j++;
    if (!isDigit(text.charCodeAt(j))) return bad("A decimal point must be followed by digits");
    while (isDigit(text.charCodeAt(j))) j++;
  }
  const e = text.charCodeAt(j);
  if (e === 0x65 || e === 0x45) {
    j++;
    const s = text.charCodeAt(j);
    if (s === 0x2b || s === 0x2d) j++;
    if (!isDigit(text.charCodeAt(j))) return bad("An exponent needs digits");
    while (isDigit(text.charCodeAt(j))) j++;
  }
  return j;
}

function nonFinite(text: string, i: number): JsonProblem | null {
  for (const word of ["NaN", "Infinity", "-Infinity", "-NaN"]) {
    if (text.startsWith(word, i)) {
      return { code: "LT214", index: i, message: `${word} is not valid JSON`, hint: "JSON has no NaN or Infinity: write null, or a finite number (Python: json.dumps(..., allow_nan=False) finds them)" };
    }
  }
  return null;
}

/** Describe the character at `i` for a message. */
function describe(text: string, i: number): string {
  const cp = text.codePointAt(i)!;
  return cp < 0x20 || cp === 0x7f ? `U+${cp.toString(16).toUpperCase().padStart(4, "0")}` : `"${String.fromCodePoint(cp)}"`;
}

/**
 * The first problem of `text` as one JSON value, or null when it is valid,
 * has no duplicate keys, no U+0000 or lone surrogates in strings, and nests
 * at most `maxDepth` arrays/objects deep.
 */
export function diagnoseJson(text: string, maxDepth: number): JsonProblem | null {
  const stack: Array<Set<string> | null> = []; // an object's keys so far, or null for an array
  let state: State = S.Value;
  let i = 0;
  const n = text.length;
  for (;;) {
    while (i < n && isWs(text.charCodeAt(i))) i++;
    if (i >= n) {
      if (stack.length === 0 && state === S.After) return null;
      if (stack.length === 0 && state === S.Value) return invalid(i, "Empty JSON text");
      return invalid(i, "Unexpected end of line", "The JSON value is not complete: close every { and [ (a raw newline inside a string splits an object across lines)");
    }
    const c = text.charCodeAt(i);
    const ch = text[i]!;
    if (state === S.After) {
      const top = stack[stack.length - 1];
      if (top === undefined) return invalid(i, `Unexpected ${describe(text, i)} after the JSON value`, "Each line must hold exactly one JSON object");
      if (ch === ",") {
        state = top === null ? S.Value : S.Key;
      } else if ((top === null && ch === "]") || (top !== null && ch === "}")) {
        stack.pop();
      } else {
        return invalid(i, `Unexpected ${describe(text, i)}: expected "," or "${top === null ? "]" : "}"}"`, "Separate items with commas and close what you opened");
      }
      i++;
      continue;
    }
    if (state === S.KeyOrClose || state === S.Key) {
      if (ch === "}") {
        if (state === S.Key) return invalid(i, "Trailing comma before \"}\"", "Remove the comma after the last member");
        stack.pop();
        state = S.After;
        i++;
        continue;
      }
      if (c !== QUOTE) {
        return ch === "'"
          ? invalid(i, "Keys must use double quotes", "JSON strings use \"double quotes\", not 'single quotes' (Python: use json.dumps, not str())")
          : invalid(i, `Unexpected ${describe(text, i)}: expected a key in double quotes`, "Object keys must be strings in double quotes");
      }
      const r = scanString(text, i, true);
      if ("code" in r) return r;
      const keys = stack[stack.length - 1]!;
      if (keys.has(r.value)) {
        return { code: "LT215", index: i, message: `Key "${r.value}" appears more than once in the same object`, hint: "Keep one occurrence; JSON parsers silently keep only the last value" };
      }
      keys.add(r.value);
      i = r.end;
      while (i < n && isWs(text.charCodeAt(i))) i++;
      if (text[i] !== ":") return invalid(i, `Expected ":" after key "${r.value}"`);
      i++;
      state = S.Value;
      continue;
    }
    // state is Value or ValueOrClose
    if (ch === "]" && state === S.ValueOrClose) {
      stack.pop();
      state = S.After;
      i++;
      continue;
    }
    if (ch === "{" || ch === "[") {
      if (stack.length + 1 > maxDepth) {
        return { code: "LT216", index: i, message: `Nesting deeper than ${maxDepth} levels`, hint: "Flatten the structure; no supported format needs deep nesting" };
      }
      stack.push(ch === "{" ? new Set() : null);
      state = ch === "{" ? S.KeyOrClose : S.ValueOrClose;
      i++;
      continue;
    }
    state = S.After;
    if (c === QUOTE) {
      const r = scanString(text, i, false);
      if ("code" in r) return r;
      i = r.end;
      continue;
    }
    const nf = nonFinite(text, i);
    if (nf) return nf;
    if (ch === "-" || isDigit(c)) {
      const r = scanNumber(text, i);
      if (typeof r !== "number") return r;
      i = r;
      continue;
    }
    const literal = ["true", "false", "null"].find((w) => text.startsWith(w, i));
    if (literal) {
      i += literal.length;
      continue;
    }
    if (ch === "'") return invalid(i, "Strings must use double quotes", "JSON strings use \"double quotes\", not 'single quotes' (Python: use json.dumps, not str())");
    if ((ch === "]" || ch === "}") && stack.length > 0) return invalid(i, `Trailing comma before "${ch}"`, "Remove the comma after the last item");
    if (/^(True|False|None)\b/.test(text.slice(i, i + 6))) {
      return invalid(i, `Unexpected ${text.slice(i).match(/^\w+/)![0]}`, "This is Python syntax: JSON uses true, false and null (write the file with json.dumps)");
    }
    return invalid(i, `Unexpected ${describe(text, i)}`, "Expected a JSON value: an object, array, string, number, true, false or null");
  }
}

/** 1-based column, in code points, of UTF-16 index `index` of `text`. */
export function columnAt(text: string, index: number): number {
  let col = 1;
  for (let i = 0; i < index && i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff && i + 1 < index) i++;
    }
    col++;
  }
  return col;
}
