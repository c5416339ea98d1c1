/**
 * Repository hygiene that a reader of the docs relies on (issue 15.9): the
 * Supabase CLI's local cache is not part of the project, and the range table
 * of docs/ERRORS.md covers every code the project raises or reports.
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { ISSUE_CODES } from "../../functions/_shared/dataset/codes.ts";
import { PROJECT_ROOT } from "../../stack/config.ts";

const git = (...args: string[]) => execFileSync("git", args, { cwd: PROJECT_ROOT, encoding: "utf8" });

describe("repository hygiene", () => {
  it("supabase/.temp (the CLI's cache) is neither tracked nor committable", () => {
    expect(git("ls-files", "supabase/.temp").trim()).toBe("");
    expect(git("check-ignore", "supabase/.temp/cli-latest").trim()).toBe("supabase/.temp/cli-latest");
  });

  it("docs/ERRORS.md's range table covers every LT code of the migrations and of the dataset engine", () => {
    const doc = readFileSync(resolve(PROJECT_ROOT, "docs/ERRORS.md"), "utf8");
    const ranges = [...doc.matchAll(/^\| LT(\d{3})–LT(\d{3}) \|/gm)].map((m) => [Number(m[1]), Number(m[2])] as const);
    expect(ranges.length).toBeGreaterThan(0);
    const dir = resolve(PROJECT_ROOT, "supabase/migrations");
    const sql = readdirSync(dir).map((f) => readFileSync(resolve(dir, f), "utf8")).join("\n");
    const codes = new Set([...sql.matchAll(/errcode = 'LT(\d{3})'/g)].map((m) => Number(m[1])));
    for (const code of Object.keys(ISSUE_CODES)) codes.add(Number(code.slice(2)));
    const uncovered = [...codes].filter((c) => !ranges.some(([lo, hi]) => c >= lo && c <= hi)).sort();
    expect(uncovered).toEqual([]);
  });
});
