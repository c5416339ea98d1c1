/**
 * The global upload limit, read as `supabase start` does from
 * `[storage] file_size_limit` in supabase/config.toml (the CLI passes it to
 * the Storage container as FILE_SIZE_LIMIT). Sizes use the CLI's parser
 * (docker/go-units RAMInBytes): "50MiB", "50MB" and "50M" are all binary.
 */
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parse } from "smol-toml";
import { PROJECT_ROOT } from "../config.ts";

/** `supabase start`'s default when config.toml does not say. */
export const DEFAULT_FILE_SIZE_LIMIT = 50 * 1024 * 1024;

const UNITS: Record<string, number> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };

/** Parse a CLI size ("50MiB", "5 MB", "500KB", "1024"); throws on anything else. */
export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)*) ?([kmgtp])?i?b?$/i.exec(text.trim());
  if (!m) throw new Error(`Invalid size "${text}": use e.g. "50MiB"`);
  return Math.floor(Number(m[1]) * UNITS[(m[2] ?? "").toLowerCase()]!);
}

/** The configured limit in bytes, or the default when config.toml or the key is absent. */
export function loadFileSizeLimit(root: string = PROJECT_ROOT): number {
  const path = resolve(root, "supabase/config.toml");
  if (!existsSync(path)) return DEFAULT_FILE_SIZE_LIMIT;
  const storage = (parse(readFileSync(path, "utf8")) as { storage?: { file_size_limit?: unknown } }).storage;
  const value = storage?.file_size_limit;
  if (value === undefined) return DEFAULT_FILE_SIZE_LIMIT;
  if (typeof value === "number") return value;
  if (typeof value !== "string") throw new Error("supabase/config.toml: [storage] file_size_limit must be a size string");
  return parseSize(value);
}
