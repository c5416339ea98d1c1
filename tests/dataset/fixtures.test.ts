/**
 * Every fixture in tests/fixtures/datasets/ against its manifest entry:
 * the verdict, each expected issue at its line and column, and nothing else
 * wrong. The expectations are computed by make-fixtures.ts from the text, not
 * from the engine.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { validateBytes } from "../../functions/_shared/dataset/dedupe.ts";
import type { EngineOptions } from "../../functions/_shared/dataset/state.ts";
import { ValidationResultSchema } from "../../types/dataset.ts";
import type { FixtureSpec } from "../fixtures/datasets/make-fixtures.ts";

const DIR = resolve(import.meta.dirname, "../fixtures/datasets");
const manifest = JSON.parse(readFileSync(resolve(DIR, "manifest.json"), "utf8")) as FixtureSpec[];
/** Summaries of the whole file that follow from line errors (not listed per fixture). */
const SUMMARY = new Set(["LT206", "LT207"]);

describe("dataset fixtures", () => {
  it("cover at least 30 malformed files and every code that needs no tokenizer", () => {
    expect(manifest.filter((m) => m.verdict === "error").length).toBeGreaterThanOrEqual(30);
    const codes = new Set(manifest.flatMap((m) => m.expect.map((e) => e.code)));
    for (const code of ["LT200", "LT201", "LT202", "LT203", "LT204", "LT205", "LT206", "LT210", "LT211", "LT212", "LT213", "LT214", "LT215", "LT216", "LT217", "LT218", "LT219", "LT230", "LT231", "LT232", "LT233", "LT234", "LT235", "LT236", "LT237", "LT238", "LT239", "LT240", "LT241", "LT242", "LT243", "LT244", "LT245", "LT260"]) {
      expect(codes, code).toContain(code);
    }
  });

  for (const spec of manifest) {
    it(`validateBytes() reports ${spec.expect.map((e) => `${e.code}@${e.line ?? "file"}${e.column ? `:${e.column}` : ""}`).join(", ") || "nothing"} for ${spec.file} (${spec.verdict})`, () => {
      const bytes = new Uint8Array(readFileSync(resolve(DIR, spec.file)));
      const options = spec.options as EngineOptions | undefined;
      const result = validateBytes(bytes, options ? { options } : {});
      expect(ValidationResultSchema.parse(result)).toEqual(result);
      expect(result.verdict).toBe(spec.verdict);
      const issues = [...result.report.errors, ...result.report.warnings];
      for (const e of spec.expect) {
        const found = issues.find((i) => i.code === e.code && i.line === e.line);
        expect(found, `${e.code} at line ${e.line}`).toBeDefined();
        if (e.column !== undefined) expect(found!.column, `${e.code} column`).toBe(e.column);
        expect(found!.message.length).toBeGreaterThan(0);
      }
      const expectedCodes = new Set(spec.expect.map((e) => e.code));
      const unexpected = result.report.errors.filter((i) => !expectedCodes.has(i.code) && !SUMMARY.has(i.code));
      expect(unexpected).toEqual([]);
      if (spec.expect.length === 0) expect(result.report.warnings).toEqual([]);

      // The same file cut into tiny chunks, through JSON between chunks, gives the same result.
      for (const chunkSize of [1, 7]) {
        expect(validateBytes(bytes, { ...(options ? { options } : {}), chunkSize, roundTrip: true })).toEqual(result);
      }
    });
  }
});
