// Placeholder: the Storage API stand-in is being written.
import type { RouteHandler } from "../api-server.ts";
import { sendJson } from "../api-server.ts";
export type StorageServerOptions = { dbUrl: string; storageDir: string; jwtSecret: string; publicUrl: string };
export async function startStorageServer(_o: StorageServerOptions): Promise<{ handler: RouteHandler; close: () => Promise<void> }> {
  return { handler: async (_q, res) => sendJson(res, 501, { error: "not implemented" }), close: async () => {} };
}
