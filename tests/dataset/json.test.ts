/**
 * The JSON checks: the slow scanner accepts exactly what JSON.parse accepts
 * (plus the problems JSON.parse lets through), the fast path agrees with the
 * scanner on every input, and problems come with the right position.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkJson } from "../../functions/_shared/dataset/json-check.ts";
import { columnAt, diagnoseJson } from "../../functions/_shared/dataset/json-scan.ts";

const DEPTH = 16;
const EXTRA = new Set(["LT215", "LT216", "LT217", "LT218"]); // valid for JSON.parse, rejected by us

function parses(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** JSON-ish text: valid documents with random edits, and raw junk. */
const jsonish = fc.oneof(
  fc.json(),
  fc.tuple(fc.json(), fc.nat(), fc.constantFrom("", ",", "}", "]", '"', "\\", ":", "NaN", "-", "0", "\\u0000", "\\ud800", "'", " ", "{", "[", "\u0000")).map(([s, at, insert]) => s.slice(0, at % (s.length + 1)) + insert + s.slice(at % (s.length + 1))),
  fc.tuple(fc.json(), fc.nat()).map(([s, at]) => s.slice(0, at % (s.length + 1)) + s.slice((at % (s.length + 1)) + 1)),
  fc.string({ unit: "binary", maxLength: 30 }),
  fc.constantFrom('{"a":1,"a":2}', '{"a":{"b":1,"\\u0062":2}}', `${"[".repeat(40)}${"]".repeat(40)}`, '{"a":"\\u0000"}', '["\\udc00"]', '{"k\\ud800":1}', '["\\ud83d\\ude00"]'),
);

describe("diagnoseJson()", () => {
  it("accepts exactly what JSON.parse accepts, apart from the problems JSON.parse lets through", () => {
    fc.assert(
      fc.property(jsonish, (text) => {
        const problem = diagnoseJson(text, DEPTH);
        if (parses(text)) expect(problem === null || EXTRA.has(problem.code)).toBe(true);
        else expect(problem).not.toBeNull();
      }),
      { numRuns: 3000 },
    );
  });

  it.each([
    ['{"a": 1,}', "LT213", 8, /Trailing comma/],
    ["{'a': 1}", "LT213", 1, /double quotes/],
    ['{"a": True}', "LT213", 6, /Python/],
    ['{"a": 1} {"b": 2}', "LT213", 9, /after the JSON value/],
    ['{"a": "x\ty"}', "LT213", 8, /control character U\+0009/],
    ['{"a": 01}', "LT213", 6, /"01".*leading zeros/],
    ['{"a": [1, 2', "LT213", 11, /Unexpected end/],
    ['{"a": -Infinity}', "LT214", 6, /-Infinity/],
    ['{"a": 1, "b": {"c": 2, "c": 3}}', "LT215", 23, /Key "c"/],
    ['{"a": 1, "\\u0061": 2}', "LT215", 9, /Key "a"/],
    ['{"a": "x\\u0000"}', "LT217", 8, /NUL/],
    ['{"a": "\\ud800x"}', "LT218", 7, /surrogate/],
    ['{"a": "\\udfff"}', "LT218", 7, /surrogate/],
  ] as const)("reports %s as %s at index %i", (text, code, index, message) => {
    const p = diagnoseJson(text, DEPTH)!;
    expect(p).toMatchObject({ code, index });
    expect(`${p.message} ${p.hint ?? ""}`).toMatch(message);
  });

  it("reports nesting deeper than the cap at the first bracket past it", () => {
    expect(diagnoseJson(`${"[".repeat(16)}${"]".repeat(16)}`, 16)).toBeNull();
    expect(diagnoseJson(`${"[".repeat(17)}${"]".repeat(17)}`, 16)).toMatchObject({ code: "LT216", index: 16 });
    expect(diagnoseJson("[".repeat(1_000_000), 16)).toMatchObject({ code: "LT216" }); // iterative: no stack overflow
  });
});

describe("checkJson()", () => {
  it("agrees with the scanner on every input: the fast path only skips work, never a problem", () => {
    fc.assert(
      fc.property(jsonish, (text) => {
        const fast = checkJson(text, DEPTH);
        const slow = diagnoseJson(text, DEPTH);
        if (slow === null) expect(fast.ok).toBe(true);
        else expect(fast).toEqual({ ok: false, problem: slow });
      }),
      { numRuns: 3000 },
    );
  });

  it("returns the parsed value of a clean line", () => {
    expect(checkJson('{"messages": [{"role": "user", "content": "a:b\\"c"}]}', DEPTH)).toEqual({ ok: true, value: { messages: [{ role: "user", content: 'a:b"c' }] } });
  });

  it("finds duplicates that only escapes reveal and colons inside strings do not hide", () => {
    expect(checkJson('{"a:": 1, "b": "::", "a": 2}', DEPTH)).toMatchObject({ ok: true });
    expect(checkJson('{"x": "\\\\", "x": 1}', DEPTH)).toMatchObject({ ok: false, problem: { code: "LT215" } });
  });
});

describe("columnAt()", () => {
  it("counts code points, so astral characters take one column", () => {
    expect(columnAt("abc", 0)).toBe(1);
    expect(columnAt("😀😀x", 4)).toBe(3);
    expect(columnAt("é日x", 2)).toBe(3);
  });
});
