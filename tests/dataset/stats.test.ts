/**
 * Statistics and small building blocks: exact percentiles, OpenAI's epoch
 * rule, the tolerance for invalid lines, FNV-1a, UTF-8 error positions and
 * the ordering of reported issues.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeUtf8, findInvalidUtf8 } from "../../functions/_shared/dataset/bytes.ts";
import { validateBytes } from "../../functions/_shared/dataset/dedupe.ts";
import { recommendedEpochs } from "../../functions/_shared/dataset/epochs.ts";
import { fnv1a64 } from "../../functions/_shared/dataset/hash.ts";
import { addValue, countAbove, mergeInto, percentile, summarize, sumCapped, type Histogram } from "../../functions/_shared/dataset/histogram.ts";
import { makeIssue, record, type IssueLog } from "../../functions/_shared/dataset/issues.ts";

const hist = (values: number[]): Histogram => {
  const h: Histogram = {};
  for (const v of values) addValue(h, v);
  return h;
};

describe("histogram percentiles", () => {
  it("equal the nearest-rank percentile of the brute-force sorted list", () => {
    fc.assert(
      fc.property(fc.array(fc.nat({ max: 5000 }), { minLength: 1, maxLength: 400 }), fc.integer({ min: 0, max: 100 }), (values, p) => {
        const sorted = [...values].sort((a, b) => a - b);
        const expected = sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)];
        expect(percentile(hist(values), p)).toBe(expected);
      }),
      { numRuns: 500 },
    );
  });

  it("summarize() gives count, sum, mean, min, p5, p50, p95 and max of the values", () => {
    const values = Array.from({ length: 101 }, (_, i) => (i * 37) % 101);
    const s = summarize(hist(values))!;
    expect(s).toEqual({ count: 101, sum: 5050, mean: 50, min: 0, p5: 5, p50: 50, p95: 95, max: 100 });
    expect(summarize({})).toBeNull();
  });

  it("merge like concatenating the lists, in either order, through JSON", () => {
    fc.assert(
      fc.property(fc.array(fc.nat({ max: 300 })), fc.array(fc.nat({ max: 300 })), (a, b) => {
        const ab = JSON.parse(JSON.stringify(hist(a))) as Histogram;
        mergeInto(ab, hist(b));
        const ba = hist(b);
        mergeInto(ba, hist(a));
        expect(ab).toEqual(hist([...a, ...b]));
        expect(ba).toEqual(ab);
      }),
    );
  });

  it("countAbove() and sumCapped() give examples over a context and tokens kept after truncation", () => {
    const h = hist([10, 20, 30, 30, 50]);
    expect(countAbove(h, 29)).toBe(3);
    expect(countAbove(h, 50)).toBe(0);
    expect(sumCapped(h, 25)).toBe(10 + 20 + 25 * 3);
  });
});

describe("recommendedEpochs()", () => {
  it.each([
    [1, 25], // 100 // 1 = 100, capped at 25
    [5, 20], // the cookbook's own toy example
    [10, 10],
    [30, 3], // 100 // 30 = 3 (integer division, as the cookbook)
    [33, 3],
    [34, 3], // 102 example passes: the target of 3
    [8333, 3],
    [8334, 2], // 25002 > 25000: 25000 // 8334 = 2
    [12_500, 2],
    [12_501, 1],
    [1_000_000, 1],
  ])("%i examples → %i epochs", (n, epochs) => {
    expect(recommendedEpochs(n)).toBe(epochs);
  });

  it("is null without examples", () => {
    expect(recommendedEpochs(0)).toBeNull();
  });
});

describe("max_invalid_fraction", () => {
  const good = (i: number) => JSON.stringify({ prompt: `p${i}`, completion: ` c${i}` });
  const file = new TextEncoder().encode([...Array.from({ length: 95 }, (_, i) => good(i)), "x", "{", "[1]", '{"prompt": 1, "completion": "c"}', "{}"].join("\n"));

  it("skips invalid lines within the tolerance and reports them", () => {
    const r = validateBytes(file, { options: { maxInvalidFraction: 0.05 } });
    expect(r.verdict).toBe("ready");
    expect(r.stats.lines).toEqual({ total: 100, blank: 0, valid: 95, invalid: 5 });
    expect(r.stats.examples).toBe(95);
    expect(r.report.invalidFraction).toBe(0.05);
    expect([...new Set(r.report.errors.map((e) => e.line))]).toEqual([96, 97, 98, 99, 100]);
    expect(r.report.totals.LT207).toBeUndefined();
  });

  it("fails the file, with LT207, when more lines than tolerated are invalid", () => {
    const r = validateBytes(file, { options: { maxInvalidFraction: 0.04 } });
    expect(r.verdict).toBe("error");
    expect(r.report.errors[0]).toMatchObject({ code: "LT207", line: null });
    expect(r.report.errors[0]!.message).toBe("5 of 100 lines are invalid (5%); the tolerance is 4%");
  });

  it("still needs the minimum number of valid examples", () => {
    const few = new TextEncoder().encode([good(1), good(2), "oops"].join("\n"));
    const r = validateBytes(few, { options: { maxInvalidFraction: 1 } });
    expect(r.verdict).toBe("error");
    expect(r.report.errors.map((e) => e.code)).toEqual(["LT206", "LT213"]);
  });
});

describe("fnv1a64()", () => {
  it("matches the published FNV-1a 64 test vectors", () => {
    expect(fnv1a64("")).toBe("cbf29ce484222325");
    expect(fnv1a64("a")).toBe("af63dc4c8601ec8c");
    expect(fnv1a64("foobar")).toBe("85944171f73967e8");
  });
});

describe("findInvalidUtf8()", () => {
  it("finds a problem exactly when strict TextDecoder fails, at the first bad byte", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (bytes) => {
        const bad = findInvalidUtf8(bytes);
        expect(bad === null).toBe(decodeUtf8(bytes) !== null);
        if (bad) {
          const before = decodeUtf8(bytes.subarray(0, bad.offset));
          expect(before).not.toBeNull();
          expect(bad.column).toBe([...before!].length + 1);
        }
      }),
      { numRuns: 3000 },
    );
  });
});

describe("issue log", () => {
  it("keeps the first N issues by line whatever the order they arrive in, and counts all", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 500 }), { maxLength: 200 }), (lines) => {
        const log: IssueLog = { totals: {}, errors: [], warnings: [] };
        for (const l of lines) record(log, makeIssue("LT213", l, "x"), 10);
        expect(log.errors.map((e) => e.line)).toEqual([...lines].sort((a, b) => a - b).slice(0, 10));
        expect(log.totals.LT213 ?? 0).toBe(lines.length);
      }),
    );
  });
});
