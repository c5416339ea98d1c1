// Placeholder: the Deno functions runtime is being written.
import type { RouteHandler } from "./api-server.ts";
import { sendJson } from "./api-server.ts";
export type FunctionsRuntimeOptions = { root: string; jwtSecret: string; env: Record<string, string> };
export async function startFunctionsRuntime(_o: FunctionsRuntimeOptions): Promise<{ handler: RouteHandler; close: () => Promise<void> }> {
  return { handler: async (_q, res) => sendJson(res, 501, { error: "not implemented" }), close: async () => {} };
}
