/**
 * The embedded PostgreSQL 15 server: Debian's packages, a fresh cluster in a
 * project folder, pg_cron preloaded (and pg_net when the server ships it).
 *
 * Postgres refuses to run as root, so when we are root the cluster belongs to
 * the `postgres` OS user and every server binary runs through `runuser`.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { appendFileSync, existsSync, mkdirSync, rmSync, writeFileSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { StackConfig } from "./config.ts";

export const PG_BIN = "/usr/lib/postgresql/15/bin";
const PG_SHARE = "/usr/share/postgresql/15";
const APT_PACKAGES = [
  "postgresql-15",
  "postgresql-15-cron",
  "postgresql-15-pgtap",
  "postgresql-15-plpgsql-check",
];
const REQUIRED_FILES: Record<string, string> = {
  "postgresql-15": `${PG_BIN}/postgres`,
  "postgresql-15-cron": `${PG_SHARE}/extension/pg_cron.control`,
  "postgresql-15-pgtap": `${PG_SHARE}/extension/pgtap.control`,
  "postgresql-15-plpgsql-check": `${PG_SHARE}/extension/plpgsql_check.control`,
};

const isRoot = () => process.getuid?.() === 0;

/** True when the server has the real extension's control file installed. */
export function serverHasExtension(name: string): boolean {
  return existsSync(`${PG_SHARE}/extension/${name}.control`);
}

/** Install the Debian packages the stack needs (as root), or explain which are missing. */
export function ensurePostgresPackages(log: (msg: string) => void = console.log): void {
  const missing = APT_PACKAGES.filter((p) => !existsSync(REQUIRED_FILES[p]!));
  if (missing.length === 0) return;
  if (!isRoot()) {
    throw new Error(
      `Missing Debian packages: ${missing.join(", ")}. Install them with: sudo apt-get install -y ${missing.join(" ")}`,
    );
  }
  log(`Installing Debian packages: ${missing.join(", ")}`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  execFileSync("apt-get", ["update"], { stdio: "inherit", env });
  execFileSync("apt-get", ["install", "-y", "--no-install-recommends", ...missing], { stdio: "inherit", env });
  // Debian's postgresql-common creates and starts a default "main" cluster; we never use it.
  spawnSync("pg_ctlcluster", ["15", "main", "stop"], { stdio: "ignore" });
}

function asPostgres(cmd: string, args: string[]): [string, string[]] {
  return isRoot() ? ["runuser", ["-u", "postgres", "--", cmd, ...args]] : [cmd, args];
}

function run(cmd: string, args: string[], opts: { allowFail?: boolean } = {}): string {
  const [c, a] = asPostgres(cmd, args);
  const r = spawnSync(c, a, { encoding: "utf8" });
  if (r.status !== 0 && !opts.allowFail) {
    throw new Error(`${cmd} ${args.join(" ")} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  }
  return `${r.stdout ?? ""}${r.stderr ?? ""}`;
}

/**
 * Where the cluster lives. Normally `<stack dir>/pg`; when running as root and
 * the `postgres` user cannot reach the project folder (a checkout under
 * /root, say), a folder under /var/tmp keyed by the stack dir instead.
 */
export function pgHome(cfg: StackConfig): string {
  const inProject = resolve(cfg.stackDir, "pg");
  if (!isRoot()) return inProject;
  mkdirSync(cfg.stackDir, { recursive: true });
  const ok = spawnSync("runuser", ["-u", "postgres", "--", "test", "-x", cfg.stackDir]).status === 0;
  if (ok) return inProject;
  const key = createHash("sha256").update(cfg.stackDir).digest("hex").slice(0, 12);
  return `/var/tmp/supabase-lora-${key}/pg`;
}

export type PgOptions = {
  /** Throwaway cluster for tests: skip fsync for speed. */
  ephemeral?: boolean;
  /** Wipe any previous cluster first. */
  fresh?: boolean;
};

/** Create (if needed) and start the cluster; returns the data directory. */
export function startPostgres(cfg: StackConfig, opts: PgOptions = {}): string {
  const home = pgHome(cfg);
  const data = resolve(home, "data");
  stopPostgres(cfg);
  if (opts.fresh) rmSync(home, { recursive: true, force: true });
  if (!existsSync(resolve(data, "PG_VERSION"))) initCluster(cfg, home, data, opts);
  const log = resolve(home, "postgres.log");
  run(`${PG_BIN}/pg_ctl`, ["start", "-w", "-t", "60", "-D", data, "-l", log]);
  return data;
}

function initCluster(cfg: StackConfig, home: string, data: string, opts: PgOptions): void {
  mkdirSync(home, { recursive: true });
  if (isRoot()) execFileSync("chown", ["-R", "postgres:postgres", home]);
  const pwfile = resolve(home, "pwfile");
  writeFileSync(pwfile, `${cfg.dbPassword}\n`, { mode: 0o600 });
  if (isRoot()) execFileSync("chown", ["postgres:postgres", pwfile]);
  run(`${PG_BIN}/initdb`, [
    "-D", data, "-U", "postgres", `--pwfile=${pwfile}`, "--auth-local=trust",
    "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8",
  ]);
  rmSync(pwfile);
  const preload = ["pg_cron", ...(serverHasExtension("pg_net") ? ["pg_net"] : [])];
  const conf = [
    "",
    "# --- embedded Supabase-like stack (stack/postgres.ts) ---",
    "listen_addresses = '127.0.0.1'",
    `port = ${cfg.dbPort}`,
    `unix_socket_directories = '${home}'`,
    `shared_preload_libraries = '${preload.join(",")}'`,
    "cron.database_name = 'postgres'",
    // pg_cron 1.4 otherwise opens libpq connections that would need a password.
    "cron.use_background_workers = on",
    "max_worker_processes = 32",
    "max_connections = 200",
    "wal_level = logical",
    "timezone = 'UTC'",
    "log_timezone = 'UTC'",
    ...(opts.ephemeral ? ["fsync = off", "synchronous_commit = off", "full_page_writes = off"] : []),
  ];
  appendFileSync(resolve(data, "postgresql.conf"), conf.join("\n") + "\n");
}

/** Stop the cluster if it runs (fast shutdown); safe to call when it does not. */
export function stopPostgres(cfg: StackConfig): void {
  const data = resolve(pgHome(cfg), "data");
  if (!existsSync(resolve(data, "postmaster.pid"))) return;
  run(`${PG_BIN}/pg_ctl`, ["stop", "-w", "-m", "fast", "-D", data], { allowFail: true });
}

/** The tail of the server log, for error messages. */
export function postgresLogTail(cfg: StackConfig, lines = 30): string {
  const log = resolve(pgHome(cfg), "postgres.log");
  if (!existsSync(log)) return "";
  return readFileSync(log, "utf8").split("\n").slice(-lines).join("\n");
}
