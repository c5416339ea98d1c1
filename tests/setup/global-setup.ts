/**
 * vitest global setup: provisions a throwaway stack (fresh cluster on free
 * ports) for the whole run and tears it down afterwards. With
 * TEST_STACK_STATUS=<path to a status.json> the tests run against a stack
 * that is already up instead (`npm test` passes its own; or `npm run stack`).
 */
import { readFileSync } from "node:fs";
import type { TestProject } from "vitest/node";
import type { StackStatus } from "../../stack/index.ts";
import { startThrowawayStack } from "../../stack/throwaway.ts";

declare module "vitest" {
  export interface ProvidedContext {
    stack: StackStatus;
  }
}

export default async function setup(project: TestProject) {
  const external = process.env.TEST_STACK_STATUS;
  if (external) {
    project.provide("stack", JSON.parse(readFileSync(external, "utf8")) as StackStatus);
    return;
  }
  const handle = await startThrowawayStack("test");
  project.provide("stack", handle.status);
  return async () => {
    await handle.stop();
  };
}
