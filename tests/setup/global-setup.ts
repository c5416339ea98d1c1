/**
 * vitest global setup: provisions a throwaway stack (fresh cluster on free
 * ports, in `.stack-test-<pid>/`) for the whole run and tears it down afterwards.
 * Set TEST_STACK_STATUS=<path to status.json> to run against a stack that is
 * already up instead (a real `supabase start`, or `npm run stack`).
 */
import { readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { resolve } from "node:path";
import type { TestProject } from "vitest/node";
import { loadStackConfig, PROJECT_ROOT } from "../../stack/config.ts";
import { startStack, type StackStatus } from "../../stack/index.ts";

declare module "vitest" {
  export interface ProvidedContext {
    stack: StackStatus;
  }
}

async function freePort(): Promise<number> {
  return await new Promise((ok, fail) => {
    const srv = createServer();
    srv.once("error", fail);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => ok(typeof addr === "object" && addr ? addr.port : 0));
    });
  });
}

export default async function setup(project: TestProject) {
  const external = process.env.TEST_STACK_STATUS;
  if (external) {
    project.provide("stack", JSON.parse(readFileSync(external, "utf8")) as StackStatus);
    return;
  }
  // One folder per run so that concurrent runs (several checkouts, CI) never share a cluster.
  const dir = resolve(PROJECT_ROOT, `.stack-test-${process.pid}`);
  const config = loadStackConfig({
    ...process.env,
    STACK_DIR: dir,
    STACK_DB_PORT: String(await freePort()),
    STACK_API_PORT: String(await freePort()),
    STACK_GPU_PORT: String(await freePort()),
  });
  const handle = await startStack(config, { fresh: true, ephemeral: true });
  project.provide("stack", handle.status);
  return async () => {
    await handle.stop();
    rmSync(dir, { recursive: true, force: true });
  };
}
