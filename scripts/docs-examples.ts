/**
 * Type-checks the supabase-js examples in docs/*.md against the generated
 * `Database` types: every ```ts block becomes the body of an async function
 * with a typed `supabase` client in scope, and tsc must accept them all.
 * Usage: tsx scripts/docs-examples.ts (exit 1 on a type error).
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { PROJECT_ROOT } from "../stack/config.ts";

const DOCS = ["API.md"];
const PRELUDE = `import type { SupabaseClient } from "@supabase/supabase-js";
import type { Database } from "../types/database.ts";
declare const supabase: SupabaseClient<Database>;
declare const file: File;
declare const datasetId: string;
declare const jobId: string;
`;

/** Extract the ```ts blocks of a Markdown file with the line each starts on. */
export function tsBlocks(markdown: string): Array<{ line: number; code: string }> {
  const blocks: Array<{ line: number; code: string }> = [];
  const re = /^```ts\n([\s\S]*?)^```/gm;
  for (const m of markdown.matchAll(re)) {
    blocks.push({ line: markdown.slice(0, m.index).split("\n").length + 1, code: m[1]! });
  }
  return blocks;
}

/** Write the blocks as functions and run tsc over them; returns tsc's output when it fails, else null. */
export function checkDocsExamples(): string | null {
  const dir = resolve(PROJECT_ROOT, `.docs-examples-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  try {
    const files: string[] = [];
    for (const doc of DOCS.filter((d) => readdirSync(resolve(PROJECT_ROOT, "docs")).includes(d))) {
      const blocks = tsBlocks(readFileSync(resolve(PROJECT_ROOT, "docs", doc), "utf8"));
      blocks.forEach((b, i) => {
        const name = `${doc.replace(/\W/g, "_")}_${i}.ts`;
        writeFileSync(resolve(dir, name), `${PRELUDE}// docs/${doc} line ${b.line}\nexport async function example() {\n${b.code}}\n`);
        files.push(name);
      });
    }
    writeFileSync(resolve(dir, "tsconfig.json"), JSON.stringify({ extends: "../tsconfig.json", include: ["*.ts"], compilerOptions: { noUnusedLocals: false } }));
    const r = spawnSync(resolve(PROJECT_ROOT, "node_modules/.bin/tsc"), ["-p", dir], { encoding: "utf8" });
    if (r.status !== 0) return `${r.stdout}${r.stderr}`;
    console.log(`  ${files.length} examples type-check`);
    return null;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const failure = checkDocsExamples();
  if (failure) {
    console.error(failure);
    process.exit(1);
  }
}
