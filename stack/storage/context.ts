/** What every Storage stand-in route works with. */
import type { FileStore } from "./files.ts";
import type { StorageDb } from "./db.ts";

export type StorageContext = {
  db: StorageDb;
  files: FileStore;
  jwtSecret: string;
  /** Global upload limit in bytes (Supabase's `[storage] file_size_limit`); buckets may only lower it. */
  fileSizeLimit: number;
};
