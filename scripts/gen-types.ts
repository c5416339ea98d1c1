/**
 * Generates types/database.ts with @supabase/postgres-meta, the generator
 * behind `supabase gen types typescript`, with the settings the CLI uses.
 * Usage: tsx scripts/gen-types.ts <db-url> [--check]
 */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { resolve } from "node:path";
import { PROJECT_ROOT } from "../stack/config.ts";

export const TYPES_FILE = resolve(PROJECT_ROOT, "types/database.ts");

/** Run the generator against `dbUrl` and return the TypeScript source. */
export function generateTypes(dbUrl: string): string {
  const server = resolve(PROJECT_ROOT, "node_modules/@supabase/postgres-meta/dist/server/server.js");
  const r = spawnSync(process.execPath, [server], {
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
    env: {
      ...process.env,
      PG_META_DB_URL: dbUrl,
      PG_META_GENERATE_TYPES: "typescript",
      PG_META_GENERATE_TYPES_INCLUDED_SCHEMAS: "public",
      PG_META_GENERATE_TYPES_DETECT_ONE_TO_ONE_RELATIONSHIPS: "true",
      PG_META_POSTGREST_VERSION: "13",
    },
  });
  if (r.status !== 0 || !r.stdout.includes("export type Database")) {
    throw new Error(`postgres-meta type generation failed (${r.status}):\n${r.stderr}`);
  }
  return r.stdout;
}

/** Compare with the checked-in file; returns a message when stale, else null. */
export function checkTypes(dbUrl: string): string | null {
  const fresh = generateTypes(dbUrl);
  const current = existsSync(TYPES_FILE) ? readFileSync(TYPES_FILE, "utf8") : "";
  return fresh === current ? null : "types/database.ts is stale: run `npm run gen` and commit the result";
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [dbUrl, flag] = process.argv.slice(2);
  if (!dbUrl) throw new Error("usage: tsx scripts/gen-types.ts <db-url> [--check]");
  if (flag === "--check") {
    const stale = checkTypes(dbUrl);
    if (stale) {
      console.error(stale);
      process.exit(1);
    }
  } else {
    writeFileSync(TYPES_FILE, generateTypes(dbUrl));
    console.log(`wrote ${TYPES_FILE}`);
  }
}
