/**
 * The Supabase platform surface for a bare Postgres: `sql/platform/*.sql`
 * (roles, auth, storage, realtime publication) and, for pgmq, pg_net and
 * Vault, the real extension when the server ships it, else our stand-in
 * from `sql/standins/`. Never applied to a real Supabase stack.
 */
import { readdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import pg from "pg";
import { serverHasExtension } from "./postgres.ts";

type Component = { name: string; extension: string; createSql: string; standin: string };

const EXTENSIONS: Component[] = [
  { name: "pgmq", extension: "pgmq", createSql: "create extension if not exists pgmq", standin: "pgmq.sql" },
  {
    name: "pg_net", extension: "pg_net",
    createSql: "create extension if not exists pg_net with schema extensions", standin: "pg_net.sql",
  },
  {
    name: "vault", extension: "supabase_vault",
    createSql: "create extension if not exists supabase_vault with schema vault cascade", standin: "vault.sql",
  },
];

export type ComponentReport = Record<string, "real" | "stand-in">;

/** Apply the platform SQL and extensions; returns which components are real and which stand-ins. */
export async function applyPlatform(root: string, dbUrl: string): Promise<ComponentReport> {
  const client = new pg.Client({ connectionString: dbUrl });
  await client.connect();
  const report: ComponentReport = {};
  try {
    const dir = resolve(root, "sql/platform");
    for (const file of readdirSync(dir).filter((f) => f.endsWith(".sql")).sort()) {
      await runFile(client, resolve(dir, file));
    }
    for (const c of EXTENSIONS) {
      if (serverHasExtension(c.extension)) {
        await client.query(c.createSql);
        report[c.name] = "real";
      } else {
        await runFile(client, resolve(root, "sql/standins", c.standin));
        report[c.name] = "stand-in";
      }
    }
  } finally {
    await client.end();
  }
  return report;
}

async function runFile(client: pg.Client, path: string): Promise<void> {
  try {
    await client.query(readFileSync(path, "utf8"));
  } catch (err) {
    throw new Error(`Applying ${path} failed: ${(err as Error).message}`, { cause: err });
  }
}
