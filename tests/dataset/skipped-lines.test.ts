/**
 * The lines a tolerated file is trained without (issue 15.1): the engine
 * hands every invalid line to the worker, whatever the chunking, and refuses
 * to tolerate more than it can ask the cluster to skip (LT246).
 */
import { describe, expect, it } from "vitest";
import { finalize, initialState, processChunk, type EngineOptions } from "../../functions/_shared/dataset/engine.ts";
import { validateBytes } from "../../functions/_shared/dataset/dedupe.ts";

const enc = new TextEncoder();
const good = (i: number) => JSON.stringify({ messages: [{ role: "user", content: `q${i}` }, { role: "assistant", content: `a${i}` }] });

/** Skipped lines as the worker collects them, chunk by chunk, the cursor through JSON. */
function skippedLines(bytes: Uint8Array, chunkSize: number, options: EngineOptions): number[] {
  let state = initialState({ ...options, fileSize: bytes.length });
  const lines: number[] = [];
  let offset = 0;
  do {
    const chunk = bytes.subarray(offset, offset + chunkSize);
    offset += chunk.length;
    const r = processChunk(state, chunk, { isLast: offset >= bytes.length });
    lines.push(...r.newSkippedLines);
    state = JSON.parse(JSON.stringify(r.state)) as typeof state;
  } while (!state.done);
  return lines;
}

describe("skipped lines", () => {
  // Line 3: bad JSON; 5: blank (not skipped, not invalid); 7: invalid UTF-8; 9: too long; 11: no assistant; 14: unknown format.
  const text = [
    good(1), good(2), "{'single': 1}", good(3), "", good(4),
    null, good(5), `{"messages": [{"role": "user", "content": "${"x".repeat(400)}"}]}`, good(6),
    JSON.stringify({ messages: [{ role: "user", content: "only" }] }), good(7), good(8), JSON.stringify({ text: "t" }),
    ...Array.from({ length: 10 }, (_, i) => good(10 + i)),
  ];
  const bytes = new Uint8Array(text.flatMap((l, i) => [
    ...(l === null ? [0x7b, 0xff, 0x7d] : enc.encode(l)), ...(i < text.length - 1 ? [0x0a] : []),
  ]));
  const options: EngineOptions = { maxInvalidFraction: 0.5, maxLineBytes: 300 };

  it.each([1, 5, 64, bytes.length])("processChunk() reports every invalid line exactly once, in order (%i-byte chunks)", (size) => {
    expect(skippedLines(bytes, size, options)).toEqual([3, 7, 9, 11, 14]);
  });

  it("the skipped lines are exactly the invalid lines the statistics count, and the file is ready", () => {
    const result = validateBytes(bytes, { options });
    expect(result.verdict).toBe("ready");
    expect(result.stats.lines.invalid).toBe(5);
    expect([...new Set(result.report.errors.map((e) => e.line))]).toEqual([3, 7, 9, 11, 14]);
  });

  it("finalize() fails a tolerated file with LT246 when more lines are invalid than may be skipped", () => {
    const result = validateBytes(bytes, { options: { ...options, maxSkippedLines: 4 } });
    expect(result.verdict).toBe("error");
    expect(result.report.errors).toContainEqual(expect.objectContaining({ code: "LT246", line: null }));
    const fine = finalize(processChunk(initialState({ ...options, maxSkippedLines: 5 }), bytes, { isLast: true }).state);
    expect(fine.verdict).toBe("ready");
  });
});
