/**
 * Function secrets from an env file, as `supabase functions serve --env-file`
 * reads them (godotenv syntax: `KEY=value`, optional `export `, `#` comments,
 * single or double quotes, `\n` escapes inside double quotes). Names starting
 * with `SUPABASE_` are reserved for the platform and skipped, as the CLI does.
 */
import { existsSync, readFileSync } from "node:fs";

const LINE = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*[=:]\s*(.*?)\s*$/;

/** Parse env-file text into name/value pairs (later lines win). */
export function parseDotenv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    if (/^\s*(#|$)/.test(raw)) continue;
    const m = LINE.exec(raw);
    if (!m) throw new Error(`Cannot parse env file line: ${JSON.stringify(raw)}`);
    out[m[1]!] = unquote(m[2]!);
  }
  return out;
}

function unquote(value: string): string {
  const q = value[0];
  if ((q === '"' || q === "'") && value.length >= 2) {
    const end = value.lastIndexOf(q);
    if (end > 0) {
      const inner = value.slice(1, end);
      return q === "'" ? inner : inner.replace(/\\([nrt"\\])/g, (_, c: string) => ({ n: "\n", r: "\r", t: "\t" })[c] ?? c);
    }
  }
  // Unquoted: a ` #` starts a comment.
  const hash = value.search(/\s#/);
  return (hash >= 0 ? value.slice(0, hash) : value).trim();
}

/**
 * Read the env file if it exists; reserved `SUPABASE_*` names are dropped and
 * reported through `warn`.
 */
export function readFunctionSecrets(path: string, warn: (msg: string) => void = () => {}): Record<string, string> {
  if (!existsSync(path)) return {};
  const all = parseDotenv(readFileSync(path, "utf8"));
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(all)) {
    if (name.startsWith("SUPABASE_")) warn(`functions: skipping "${name}" from ${path}: names starting with SUPABASE_ are reserved`);
    else out[name] = value;
  }
  return out;
}
