/** The stack the test run talks to (provisioned by tests/setup/global-setup.ts). */
import { inject } from "vitest";
import type { StackStatus } from "../../stack/index.ts";

export function testStack(): StackStatus {
  return inject("stack");
}
