/**
 * STAND-IN for the Supabase Storage API (embedded stack only; docs/standins/storage.md).
 * Serves the object endpoints supabase-js uses under `/storage/v1` on the
 * gateway, keeps bytes under `storageDir`, and enforces storage.objects RLS
 * by running every query as the caller's JWT role, as the real service does.
 */
import type { RouteHandler } from "../api-server.ts";
import { loadFileSizeLimit } from "./config.ts";
import type { StorageContext } from "./context.ts";
import { StorageDb } from "./db.ts";
import { FileStore } from "./files.ts";
import { sendError } from "./http.ts";
import { route } from "./routes.ts";

export type StorageServerOptions = {
  dbUrl: string;
  storageDir: string;
  jwtSecret: string;
  /** The gateway's public URL (real Storage uses it for TUS/S3 locations; unused by these endpoints). */
  publicUrl: string;
  /** Global upload limit in bytes; defaults to supabase/config.toml's `[storage] file_size_limit` (50 MiB). */
  fileSizeLimit?: number;
};

/** Start the Storage stand-in; mount `handler` at `/storage/v1` (it receives the path after that prefix). */
export async function startStorageServer(
  o: StorageServerOptions,
): Promise<{ handler: RouteHandler; close: () => Promise<void> }> {
  const files = new FileStore(o.storageDir);
  await files.init();
  const db = new StorageDb(o.dbUrl);
  const ctx: StorageContext = {
    db,
    files,
    jwtSecret: o.jwtSecret,
    fileSizeLimit: o.fileSizeLimit ?? loadFileSizeLimit(),
  };
  const handler: RouteHandler = async (req, res, path) => {
    try {
      await route(ctx, req, res, path);
    } catch (e) {
      sendError(req, res, e);
    }
  };
  return { handler, close: () => db.close() };
}
