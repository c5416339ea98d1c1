/**
 * `npm test`: the one quality gate, run the same way locally and in CI.
 *
 * Static checks (tsc, deno check, eslint), then one throwaway stack for
 * everything that needs a database: generated files not stale, Supabase CLI
 * `db lint` and `db advisors` (failing on warnings), pgTAP, and vitest.
 * Stops at the first failing step; always tears the stack down.
 */
import { spawn, spawnSync } from "node:child_process";
import { readdirSync, existsSync } from "node:fs";
import { resolve } from "node:path";
import { PROJECT_ROOT } from "../stack/config.ts";
import { cliDbUrl, supabaseCli } from "../stack/migrate.ts";
import type { StackHandle } from "../stack/index.ts";
import { startThrowawayStack } from "../stack/throwaway.ts";
import { checkDocsExamples } from "./docs-examples.ts";
import { checkSchema } from "./dump-schema.ts";
import { checkTypes } from "./gen-types.ts";
import { runPgTap } from "./pgtap.ts";

const bin = (name: string) => resolve(PROJECT_ROOT, "node_modules/.bin", name);
const results: Array<{ step: string; ok: boolean; seconds: number }> = [];

async function step(name: string, fn: () => void | Promise<void>): Promise<void> {
  const t0 = Date.now();
  console.log(`\n▶ ${name}`);
  try {
    await fn();
    results.push({ step: name, ok: true, seconds: (Date.now() - t0) / 1000 });
  } catch (err) {
    results.push({ step: name, ok: false, seconds: (Date.now() - t0) / 1000 });
    console.error(`✗ ${name}: ${(err as Error).message}`);
    throw err;
  }
}

/**
 * For steps that talk to the stack over HTTP: the stack's API gateway, Storage
 * and functions relay live in this process, so waiting with spawnSync would
 * block their event loop and every HTTP request would hang.
 */
function execAsync(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<void> {
  return new Promise((ok, fail) => {
    const child = spawn(cmd, args, { cwd: PROJECT_ROOT, stdio: "inherit", env: { ...process.env, ...env } });
    child.on("error", fail);
    child.on("exit", (code, signal) =>
      code === 0 ? ok() : fail(new Error(`${cmd} ${args.join(" ")} exited with ${code ?? signal}`)));
  });
}

function exec(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): void {
  const r = spawnSync(cmd, args, { cwd: PROJECT_ROOT, stdio: "inherit", env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} exited with ${r.status ?? r.signal}`);
}

function functionEntrypoints(): string[] {
  const dir = resolve(PROJECT_ROOT, "functions");
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && !d.name.startsWith("_") && existsSync(resolve(dir, d.name, "index.ts")))
    .map((d) => `functions/${d.name}/index.ts`);
}

function summary(): void {
  console.log("\n── npm test summary ──");
  for (const r of results) console.log(`${r.ok ? "✓" : "✗"} ${r.step} (${r.seconds.toFixed(1)} s)`);
  const passed = results.filter((r) => r.ok).length;
  console.log(`checks: ${passed} passed, ${results.length - passed} failed`);
}

let stack: StackHandle | undefined;
let failed = false;
const stopStack = async () => {
  const s = stack;
  stack = undefined;
  await s?.stop();
};
process.on("SIGINT", () => void stopStack().then(() => process.exit(130)));
process.on("SIGTERM", () => void stopStack().then(() => process.exit(143)));

try {
  await step("typecheck (tsc)", () => exec(bin("tsc"), ["-p", "."]));
  await step("typecheck docs examples (docs/API.md)", () => {
    const failure = checkDocsExamples();
    if (failure) throw new Error(failure);
  });
  await step("typecheck functions (deno check)", () => {
    const entries = functionEntrypoints();
    if (entries.length > 0) exec(bin("deno"), ["check", "--config", "deno.json", ...entries]);
  });
  await step("lint (eslint)", () => exec(bin("eslint"), ["--max-warnings", "0", "."]));
  await step("throwaway stack up", async () => {
    stack = await startThrowawayStack("check", { log: (m) => console.log(`  [stack] ${m}`) });
  });
  const dbUrl = stack!.status.DB_URL;
  await step("generated types and schema dump are fresh", async () => {
    const stale = [checkTypes(dbUrl), await checkSchema(dbUrl)].filter((m): m is string => m !== null);
    if (stale.length > 0) throw new Error(stale.join("\n"));
  });
  await step("supabase db lint", () => {
    console.log(supabaseCli(PROJECT_ROOT, ["db", "lint", "--db-url", cliDbUrl(dbUrl), "--schema", "public,private,ops", "--level", "warning", "--fail-on", "warning"]));
  });
  await step("supabase db advisors", () => {
    console.log(supabaseCli(PROJECT_ROOT, ["db", "advisors", "--db-url", cliDbUrl(dbUrl), "--type", "all", "--level", "warn", "--fail-on", "warn"]));
  });
  await step("pgTAP", () => runPgTap(dbUrl));
  await step("vitest", () => execAsync(bin("vitest"), ["run"], { TEST_STACK_STATUS: stack!.config.statusFile }));
} catch {
  failed = true;
} finally {
  await stopStack();
  summary();
}
process.exit(failed ? 1 : 0);
