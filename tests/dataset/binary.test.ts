/**
 * A binary file (issue 16.5) gets one file-level verdict, LT202, not a
 * line-level error for each "line" read before its first NUL byte.
 */
import { describe, expect, it } from "vitest";
import { validateBytes } from "../../functions/_shared/dataset/dedupe.ts";

const enc = new TextEncoder();

/** Bytes shaped like a binary blob: invalid UTF-8 on "line 1", a NUL byte on "line 2". */
function binaryBlob(): Uint8Array {
  return new Uint8Array([0x89, 0xfe, 0x10, 0x80, 0x0a, 0x41, 0x42, 0x00, 0x07, 0xff, 0x0a, 0x33]);
}

describe("binary files", () => {
  it.each([1, 3, 64])("validateBytes() reports one file-level LT202 and nothing else for a binary blob (%i-byte chunks)", (chunkSize) => {
    const result = validateBytes(binaryBlob(), { chunkSize, roundTrip: true });
    expect(result.verdict).toBe("error");
    expect(result.report.errors).toHaveLength(1);
    expect(result.report.errors[0]).toMatchObject({ code: "LT202", line: null });
    expect(result.report.errors[0]!.message).toContain("line 2");
    expect(result.report.warnings).toEqual([]);
    expect(result.report.totals).toEqual({ LT202: 1 });
    expect(result.stats.lines).toMatchObject({ valid: 0, invalid: 0 });
  });

  it("validateBytes() drops the errors and duplicates of text lines before a NUL byte: the file is not text", () => {
    const good = JSON.stringify({ messages: [{ role: "user", content: "q" }, { role: "assistant", content: "a" }] });
    const bytes = new Uint8Array([...enc.encode(`${good}\n${good}\n{"broken\n`), 0x00, 0x0a]);
    const result = validateBytes(bytes);
    expect(result.report.totals).toEqual({ LT202: 1 });
    expect(result.report.errors.map((e) => [e.code, e.line])).toEqual([["LT202", null]]);
    expect(result.report.errors[0]!.message).toContain("line 4, column 1");
    expect(result.stats.duplicates).toBe(0);
  });
});
