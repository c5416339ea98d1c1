/**
 * Migrations are applied with the real Supabase CLI (pinned in package.json),
 * exactly as against a hosted project: `supabase db push --db-url`.
 */
import { spawnSync } from "node:child_process";
import { resolve } from "node:path";

/** `postgresql://...` with `sslmode=disable` appended, as the CLI needs for a local server. */
export function cliDbUrl(dbUrl: string): string {
  const u = new URL(dbUrl);
  if (!u.searchParams.has("sslmode")) u.searchParams.set("sslmode", "disable");
  return u.toString();
}

/** Run a Supabase CLI command from the project root; throws with its output on failure. */
export function supabaseCli(root: string, args: string[]): string {
  const bin = resolve(root, "node_modules/.bin/supabase");
  const r = spawnSync(bin, args, { cwd: root, encoding: "utf8", env: { ...process.env, DO_NOT_TRACK: "1" } });
  const out = `${r.stdout ?? ""}${r.stderr ?? ""}`;
  if (r.status !== 0) throw new Error(`supabase ${args.join(" ")} failed (${r.status}):\n${out}`);
  return out;
}

/** Apply every pending migration in supabase/migrations. */
export function pushMigrations(root: string, dbUrl: string): string {
  return supabaseCli(root, ["db", "push", "--db-url", cliDbUrl(dbUrl), "--include-all", "--yes"]);
}
