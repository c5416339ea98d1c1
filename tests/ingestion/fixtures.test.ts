/**
 * The dataset fixture corpus (tests/fixtures/datasets/, expectations in its
 * manifest) through the whole pipeline: every file is uploaded with
 * supabase-js at once, and each dataset row must reach the manifest's
 * verdict with each expected code at its line (and column) in the stored
 * report; failed files carry a user error. None may crash the worker or
 * stay in validating.
 *
 * Two fixtures need engine limits the pipeline does not let a client set
 * (a 300-byte line cap, a 1 KiB file cap); a generated file with a line over
 * the real 2 MiB cap stands in for the first. The 500 MiB file cap (LT200)
 * is enforced by the bucket before any byte reaches the worker.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LocalUser } from "../../stack/jwt.ts";
import type { FixtureSpec } from "../fixtures/datasets/make-fixtures.ts";
import { connect, newUser } from "../helpers/db.ts";
import { type DatasetRow, newDataset, runRow, upload, waitForVerdict } from "./helpers.ts";

const DIR = resolve(import.meta.dirname, "../fixtures/datasets");
const manifest = JSON.parse(readFileSync(resolve(DIR, "manifest.json"), "utf8")) as FixtureSpec[];
const SUMMARY = new Set(["LT206", "LT207"]);
const FILE_LEVEL = new Set(["LT200", "LT201", "LT202", "LT203", "LT205", "LT206", "LT207"]);

type Case = { name: string; bytes: Uint8Array; spec: FixtureSpec; maxInvalidFraction?: number };

/** A valid chat file whose line 3 is 2 MiB + 1 KiB long. */
function longLineFile(): Case {
  const ok = (i: number) => JSON.stringify({ messages: [{ role: "user", content: `q${i}` }, { role: "assistant", content: `a${i}` }] });
  const long = JSON.stringify({ messages: [{ role: "user", content: "q" }, { role: "assistant", content: "x".repeat(2 * 1024 * 1024 + 1024) }] });
  const lines = [ok(1), ok(2), long, ...Array.from({ length: 12 }, (_, i) => ok(i + 3))];
  return {
    name: "generated-line-over-2MiB.jsonl",
    bytes: new TextEncoder().encode(`${lines.join("\n")}\n`),
    spec: { file: "generated-line-over-2MiB.jsonl", verdict: "error", expect: [{ code: "LT211", line: 3 }] } as FixtureSpec,
  };
}

const cases: Case[] = [
  ...manifest
    .filter((m) => m.options?.maxLineBytes === undefined && m.options?.maxFileBytes === undefined)
    .map((spec) => ({
      name: spec.file,
      bytes: new Uint8Array(readFileSync(resolve(DIR, spec.file))),
      spec,
      ...(typeof spec.options?.maxInvalidFraction === "number" ? { maxInvalidFraction: spec.options.maxInvalidFraction } : {}),
    })),
  longLineFile(),
];

describe("dataset fixtures through the pipeline", () => {
  let db: pg.Client;
  let owner: LocalUser;
  const verdicts = new Map<string, DatasetRow>();
  const runs = new Map<string, { outcome: string | null; failed_attempts: number }>();

  beforeAll(async () => {
    db = await connect();
    owner = await newUser(db, "fixtures");
    // Every upload at once, as many clients would; then wait for every verdict.
    await Promise.all(cases.map(async (c) => {
      const { id, path } = await newDataset(db, owner, { fileName: c.name, maxInvalidFraction: c.maxInvalidFraction });
      const { error } = await upload(owner, path, c.bytes);
      if (error) throw new Error(`upload of ${c.name} failed: ${error.message}`);
      verdicts.set(c.name, await waitForVerdict(db, id, 180_000));
      runs.set(c.name, (await runRow(db, id))!);
    }));
  }, 240_000);
  afterAll(async () => {
    await db.end();
  });

  it("has at least 30 malformed files, and no dataset stays in validating", () => {
    expect(cases.filter((c) => c.spec.verdict === "error").length).toBeGreaterThanOrEqual(30);
    expect(verdicts.size).toBe(cases.length);
    for (const [name, run] of runs) expect(run, name).toMatchObject({ outcome: verdicts.get(name)!.status, failed_attempts: 0 });
  });

  for (const c of cases) {
    const label = c.spec.expect.map((e) => `${e.code}@${e.line ?? "file"}${e.column ? `:${e.column}` : ""}`).join(", ") || "nothing";
    it(`${c.name} ends ${c.spec.verdict} with ${label} in the stored report`, () => {
      const row = verdicts.get(c.name)!;
      expect(row.status).toBe(c.spec.verdict);
      const report = row.report!;
      const issues = [...report.errors, ...report.warnings];
      for (const e of c.spec.expect) {
        const found = issues.find((i) => i.code === e.code && i.line === e.line);
        expect(found, `${e.code} at line ${e.line}`).toBeDefined();
        if (e.column !== undefined) expect(found!.column, `${e.code} column`).toBe(e.column);
      }
      const expectedCodes = new Set(c.spec.expect.map((e) => e.code));
      expect(report.errors.filter((i) => !expectedCodes.has(i.code) && !SUMMARY.has(i.code))).toEqual([]);
      if (c.spec.verdict === "error") {
        expect(row.error).toMatchObject({ kind: "user", code: expect.stringMatching(/^LT2\d\d$/), message: expect.any(String) });
        expect(FILE_LEVEL.has(row.error!.code) || expectedCodes.has(row.error!.code)).toBe(true);
        expect(report.totals[row.error!.code]).toBeGreaterThan(0);
      } else {
        expect(row.error).toBeNull();
        expect(row.stats!.examples).toBeGreaterThan(0);
      }
    });
  }
});
