/**
 * The cursor is the only state: however the file is cut into chunks, and
 * with the state passed through JSON between chunks (as the database
 * stores it), the result is exactly the same; redelivered chunks never
 * double-count; the state stays small.
 */
import { describe, expect, it } from "vitest";
import { MemoryHashStore, validateBytes } from "../../functions/_shared/dataset/dedupe.ts";
import { finalize, initialState, processChunk, recordDuplicates, type EngineState } from "../../functions/_shared/dataset/engine.ts";
import type { Example } from "../../functions/_shared/dataset/example.ts";
import type { TokenCounter } from "../../functions/_shared/dataset/tokens.ts";

const enc = new TextEncoder();

/** A stand-in counter (code points), so these tests need no vocabulary. */
const fakeCounter: TokenCounter = {
  family: "llama3",
  count(ex: Example) {
    if (ex.kind === "completion") return { total: [...ex.prompt + ex.completion].length, trainable: [...ex.completion].length };
    const total = ex.messages.reduce((n, m) => n + [...m.content].length + 4, 0);
    const trainable = ex.messages.filter((m) => m.role === "assistant" && m.weight !== 0).reduce((n, m) => n + [...m.content].length, 0);
    return { total, trainable };
  },
  findControlText: (s) => (s.includes("<|eot_id|>") ? "<|eot_id|>" : null),
};
const counters = { llama3: fakeCounter };
const options = { maxLineBytes: 300, maxInvalidFraction: 0.5, maxReportedIssues: 12, models: { small: { family: "llama3" as const, contextLength: 60 } } };

const line = (i: number, text = `Question ${i} – ünïcödé 日本語 😀`) =>
  JSON.stringify({ messages: [{ role: "system", content: "Be brief." }, { role: "user", content: text }, { role: "assistant", content: `Answer ${i} 🎉`.repeat(1 + (i % 4)) }] });

/** Every line-level feature at once: BOM, CRLF, blanks, invalid lines, duplicates, over-long lines, multi-byte text, no final newline. */
function compositeFile(): Uint8Array {
  const out: string[] = [];
  for (let i = 1; i <= 150; i++) {
    if (i % 23 === 0) out.push(i % 2 ? "" : "  \t");
    else if (i % 17 === 0) out.push(`{"messages": [{"role": "user", "content": "broken ${i}"}`);
    else if (i % 37 === 0) out.push(line(1));
    else if (i % 41 === 0) out.push(line(i, "ŵ".repeat(200)));
    else if (i % 43 === 0) out.push(`{"messages": [{"role": "user", "content": "a", "content": "b"}]}`);
    else out.push(line(i));
  }
  const text = out.map((l, i) => (i % 31 === 30 ? `${l}\r` : l)).join("\n");
  return new Uint8Array([0xef, 0xbb, 0xbf, ...enc.encode(text)]);
}

describe("chunked validation", () => {
  const file = compositeFile();
  const whole = validateBytes(file, { options, counters });

  it("the composite file exercises errors, warnings, duplicates and token statistics", () => {
    const codes = Object.keys(whole.report.totals);
    for (const c of ["LT204", "LT211", "LT212", "LT213", "LT215", "LT260", "LT261"]) expect(codes).toContain(c);
    expect(whole.stats.duplicates).toBeGreaterThan(0);
    expect(whole.stats.tokens.llama3!.total!.count).toBe(whole.stats.examples);
    expect(whole.verdict).toBe("ready");
  });

  it.each([1, 7, 4096])("gives exactly the whole-file result with %i-byte chunks and the state through JSON", (chunkSize) => {
    const states: EngineState[] = [];
    const chunked = validateBytes(file, { options, counters, chunkSize, roundTrip: true, onState: (s) => states.length < 50 && states.push(s) });
    expect(chunked).toEqual(whole);
    expect(JSON.stringify(chunked)).toBe(JSON.stringify(whole));
    for (const s of states) expect(JSON.parse(JSON.stringify(s))).toEqual(s);
  });

  it("keeps a 4-byte character split across chunk boundaries intact", () => {
    const lines = Array.from({ length: 12 }, (_, i) => JSON.stringify({ prompt: "😀".repeat(i + 1), completion: "𝕏😀" }));
    const bytes = enc.encode(lines.join("\n"));
    for (const chunkSize of [1, 2, 3, 5]) {
      const r = validateBytes(bytes, { chunkSize, roundTrip: true });
      expect(r.report.errors).toEqual([]);
      expect(r.verdict).toBe("ready");
    }
  });

  it("finds duplicates whose first occurrence is in an earlier chunk", () => {
    const lines = [...Array.from({ length: 20 }, (_, i) => line(i)), line(3), line(0), line(3)];
    const bytes = enc.encode(lines.join("\n"));
    const r = validateBytes(bytes, { chunkSize: 200 });
    expect(r.stats.duplicates).toBe(3);
    expect(r.report.warnings.map((w) => [w.line, w.message])).toEqual([
      [21, "The example is identical to the one on line 4"],
      [22, "The example is identical to the one on line 1"],
      [23, "The example is identical to the one on line 4"],
    ]);
  });

  it("does not double-count when a chunk is processed again from the same cursor (redelivered message)", () => {
    const bytes = enc.encode([...Array.from({ length: 30 }, (_, i) => line(i % 12)), "not json"].join("\n"));
    const size = 512;
    const run = (redeliver: number) => {
      const store = new MemoryHashStore();
      let state = initialState({ fileSize: bytes.length });
      for (let k = 0, off = 0; !state.done; k++) {
        const chunk = bytes.subarray(off, off + size);
        const isLast = off + chunk.length >= bytes.length;
        const step = () => {
          const r = processChunk(state, chunk, { isLast });
          return recordDuplicates(r.state, store.claim(r.newHashes));
        };
        let next = step();
        if (k === redeliver) next = step(); // the message was delivered twice: same cursor, same chunk
        state = JSON.parse(JSON.stringify(next)) as EngineState;
        off += chunk.length;
      }
      return finalize(state);
    };
    const once = run(-1);
    expect(once.stats.duplicates).toBe(18);
    for (const k of [0, 2, 5]) expect(run(k)).toEqual(once);
  });

  it("never modifies the state it is given", () => {
    const state = initialState({});
    const deepFreeze = (o: unknown): void => {
      if (o && typeof o === "object") {
        Object.freeze(o);
        Object.values(o).forEach(deepFreeze);
      }
    };
    const first = processChunk(state, file.subarray(0, 5000)).state;
    const snapshot = JSON.stringify(first);
    deepFreeze(first);
    expect(() => processChunk(first, file.subarray(5000, 9000))).not.toThrow();
    expect(JSON.stringify(first)).toBe(snapshot);
  });

  it("reports progress as the offset of the next byte to send, and stops after the last chunk", () => {
    let state = initialState({});
    const r1 = processChunk(state, file.subarray(0, 1000));
    expect(r1.progress).toMatchObject({ bytes: 1000, done: false });
    state = processChunk(r1.state, file.subarray(1000), { isLast: true }).state;
    expect(state.done).toBe(true);
    expect(state.bytes).toBe(file.length);
    const again = processChunk(state, enc.encode(line(1)), { isLast: true });
    expect(again.state).toEqual(state);
    expect(again.newHashes).toEqual([]);
    expect(() => finalize(r1.state)).toThrow(/whole file/);
  });

  it("stops reading at a fatal problem and ignores later chunks", () => {
    const gz = new Uint8Array([0x1f, 0x8b, 0x08, 0x00, 0x41, 0x0a, 0x42]);
    const r = processChunk(initialState({}), gz.subarray(0, 2));
    expect(r.state.sniffed).toBe(false); // two bytes, no newline: not enough to decide yet
    const r2 = processChunk(r.state, gz.subarray(2, 5));
    expect(r2.state.fatal).toBe(true);
    expect(finalize(r2.state).report.errors.map((e) => e.code)).toEqual(["LT201"]);
  });

  it("keeps the cursor small: bounded by the line cap and the histograms' distinct values, not by the number of examples", () => {
    const lines = Array.from({ length: 20_000 }, (_, i) => line(i, `q${i % 200} `.repeat(1 + (i % 7))));
    const bytes = enc.encode(lines.join("\n"));
    let largest = 0;
    const sizes: number[] = [];
    validateBytes(bytes, {
      options: { ...options, maxInvalidFraction: 0 },
      counters,
      chunkSize: 64 * 1024,
      onState: (s) => {
        const n = JSON.stringify(s).length;
        sizes.push(n);
        largest = Math.max(largest, n);
      },
    });
    expect(sizes.length).toBeGreaterThan(20);
    expect(largest).toBeLessThan(16 * 1024);
    // After the first tenth of the file the state no longer grows.
    expect(sizes[sizes.length - 1]!).toBeLessThan(sizes[Math.floor(sizes.length / 10)]! + 1024);
  });
});
