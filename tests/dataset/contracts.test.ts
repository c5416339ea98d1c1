/**
 * The shared contracts stay true: every code is documented with its
 * severity, the zod line schemas agree with the engine on the fixtures, and
 * the engine runs unchanged under Deno.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { ISSUE_CODES } from "../../functions/_shared/dataset/codes.ts";
import { validateBytes } from "../../functions/_shared/dataset/dedupe.ts";
import { DATASET_LINE_SCHEMAS, ValidationResultSchema, type DatasetFormat } from "../../types/dataset.ts";
import type { FixtureSpec } from "../fixtures/datasets/make-fixtures.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const FIXTURES = resolve(ROOT, "tests/fixtures/datasets");

describe("docs/errors-lt2xx.md", () => {
  it("documents every code the engine emits, with its severity", () => {
    const doc = readFileSync(resolve(ROOT, "docs/errors-lt2xx.md"), "utf8");
    const rows = Object.fromEntries([...doc.matchAll(/^\| (LT2\d\d) \| (error|warning) \|/gm)].map((m) => [m[1], m[2]]));
    for (const [code, c] of Object.entries(ISSUE_CODES)) expect(rows[code], code).toBe(c.severity);
  });
});

describe("types/dataset.ts line schemas", () => {
  const manifest = JSON.parse(readFileSync(resolve(FIXTURES, "manifest.json"), "utf8")) as FixtureSpec[];

  it("accept every line of the valid fixtures, per format, as the engine does", () => {
    for (const spec of manifest.filter((m) => m.file.startsWith("valid-") && m.expect.length === 0)) {
      const bytes = readFileSync(resolve(FIXTURES, spec.file));
      const result = validateBytes(new Uint8Array(bytes));
      const schema = DATASET_LINE_SCHEMAS[result.format as DatasetFormat];
      const lines = bytes.toString("utf8").split("\n").filter((l) => l.trim() !== "");
      for (const l of lines) expect(schema.safeParse(JSON.parse(l)).success, `${spec.file}: ${l}`).toBe(true);
    }
  });

  it("reject the lines the engine rejects for their shape", () => {
    const bad = [
      { messages: [] },
      { messages: [{ role: "human", content: "q" }, { role: "assistant", content: "a" }] },
      { messages: [{ role: "user", content: "q" }, { role: "assistant", content: "  " }] },
      { messages: [{ role: "user", content: "q" }, { role: "assistant", content: "a", weight: 2 }] },
      { messages: [{ role: "user", content: "q", weight: 1 }, { role: "assistant", content: "a" }] },
      { messages: [{ role: "user", content: "q" }, { role: "user", content: "q" }, { role: "assistant", content: "a" }] },
      { messages: [{ role: "user", content: "q" }, { role: "system", content: "s" }, { role: "assistant", content: "a" }] },
      { messages: [{ role: "system", content: "s" }, { role: "user", content: "q" }] },
      { messages: [{ role: "user", content: "q", contnet: "x" }, { role: "assistant", content: "a" }] },
    ];
    for (const line of bad) {
      expect(DATASET_LINE_SCHEMAS.chat.safeParse(line).success, JSON.stringify(line)).toBe(false);
      expect(validateBytes(new TextEncoder().encode(JSON.stringify(line))).report.errors.some((e) => e.line === 1)).toBe(true);
    }
    expect(DATASET_LINE_SCHEMAS.instruction.safeParse({ instruction: "x" }).success).toBe(false);
    expect(DATASET_LINE_SCHEMAS.prompt_completion.safeParse({ prompt: "p", completion: "" }).success).toBe(false);
  });
});

describe("the engine under Deno", () => {
  it("validates a file with the same result as under Node (Web APIs only)", () => {
    const file = resolve(FIXTURES, "json-duplicate-key.jsonl");
    const script = `
      import { validateBytes } from "${resolve(ROOT, "functions/_shared/dataset/dedupe.ts")}";
      const bytes = await Deno.readFile(${JSON.stringify(file)});
      console.log(JSON.stringify(validateBytes(bytes, { chunkSize: 64 })));
    `;
    const deno = spawnSync(resolve(ROOT, "node_modules/.bin/deno"), ["eval", "--config", resolve(ROOT, "deno.json"), "--ext=ts", script], { encoding: "utf8", env: { ...process.env, NO_COLOR: "1" }, timeout: 120_000 });
    expect(deno.stderr).toBe("");
    const underDeno = ValidationResultSchema.parse(JSON.parse(deno.stdout));
    expect(underDeno).toEqual(validateBytes(new Uint8Array(readFileSync(file))));
  });
});
