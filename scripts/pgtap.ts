/**
 * Runs the pgTAP suites in tests/pgtap/*.sql, each in a transaction that is
 * rolled back, and fails when any assertion fails or the plan is not met.
 */
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { resolve } from "node:path";
import { PROJECT_ROOT } from "../stack/config.ts";
import { PG_BIN } from "../stack/postgres.ts";

/** Run every suite; throws listing the failing ones. */
export function runPgTap(dbUrl: string): void {
  const dir = resolve(PROJECT_ROOT, "tests/pgtap");
  const failures: string[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".sql")).sort()) {
    const r = spawnSync(
      `${PG_BIN}/psql`,
      [dbUrl, "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-c", "begin", "-c", "create extension if not exists pgtap with schema extensions", "-f", resolve(dir, file), "-c", "rollback"],
      { encoding: "utf8" },
    );
    const out = `${r.stdout}${r.stderr}`;
    const notOk = out.split("\n").filter((l) => l.startsWith("not ok") || l.startsWith("# Looks like"));
    const oks = out.split("\n").filter((l) => l.startsWith("ok ")).length;
    if (r.status !== 0 || notOk.length > 0) {
      failures.push(`${file}:\n${out}`);
    } else {
      console.log(`  ${file}: ${oks} assertions ok`);
    }
  }
  if (failures.length > 0) throw new Error(`pgTAP failures:\n${failures.join("\n")}`);
}
