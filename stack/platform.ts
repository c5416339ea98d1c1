/**
 * The Supabase platform surface for a bare Postgres: `sql/platform/*.sql`
 * (roles, auth, storage, realtime publication) and, for pgmq, pg_net and
 * Vault, either the real extension or our stand-in from `sql/standins/`.
 * Never applied to a real Supabase stack.
 *
 * Which one is decided by what the database already holds, not by what the
 * server ships: a database made on a stand-in keeps it (with its queues,
 * messages and secrets) after the real extension gets installed, until an
 * explicit `--migrate-extensions` moves it over (./extension-migration.ts).
 * Only a database holding neither gets the real extension when the server
 * has it. A database on the real extension on a server without it is refused.
 */
import { readdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import pg from "pg";
import { migrateToExtension } from "./extension-migration.ts";
import { serverHasExtension } from "./postgres.ts";

export type Component = {
  name: string;
  extension: string;
  createSql: string;
  standin: string;
  /** The schema the stand-in (and the extension) lives in. */
  schema: string;
  /** A relation only our stand-in creates (or, with the extension row absent, only it can have made). */
  marker: string;
};

export const EXTENSIONS: Component[] = [
  {
    name: "pgmq", extension: "pgmq", createSql: "create extension if not exists pgmq", standin: "pgmq.sql",
    schema: "pgmq", marker: "pgmq.meta",
  },
  {
    name: "pg_net", extension: "pg_net",
    createSql: "create extension if not exists pg_net with schema extensions", standin: "pg_net.sql",
    schema: "net", marker: "net.http_request_queue",
  },
  {
    name: "vault", extension: "supabase_vault",
    createSql: "create extension if not exists supabase_vault with schema vault cascade", standin: "vault.sql",
    schema: "vault", marker: "vault._root_key",
  },
];

export type ComponentReport = Record<string, "real" | "stand-in">;
export type Installed = "real" | "stand-in" | "none";

export type PlatformOptions = {
  /** Whether the server ships an extension (default: its control file exists); tests pass a double. */
  hasExtension?: (extension: string) => boolean;
  /** Move components the database holds as stand-ins to the real extension where the server has it. */
  migrateExtensions?: boolean;
  /** Creates the real extension (default: its `create extension`); tests pass a double. */
  createExtension?: (client: pg.ClientBase, component: Component) => Promise<void>;
  log?: (message: string) => void;
};

/** What the database holds for a component: the real extension, our stand-in, or nothing yet. */
export async function installedImplementation(client: pg.ClientBase, c: Component): Promise<Installed> {
  const { rows } = await client.query<{ ext: boolean; standin: boolean }>(
    "select exists (select 1 from pg_catalog.pg_extension where extname = $1) as ext, to_regclass($2) is not null as standin",
    [c.extension, c.marker],
  );
  return rows[0]!.ext ? "real" : rows[0]!.standin ? "stand-in" : "none";
}

/** Apply the platform SQL and extensions; returns which components are real and which stand-ins. */
export async function applyPlatform(root: string, dbUrl: string, opts: PlatformOptions = {}): Promise<ComponentReport> {
  const client = new pg.Client({ connectionString: dbUrl });
  await client.connect();
  try {
    const dir = resolve(root, "sql/platform");
    for (const file of readdirSync(dir).filter((f) => f.endsWith(".sql")).sort()) {
      await runFile(client, resolve(dir, file));
    }
    return await applyExtensions(client, root, opts);
  } finally {
    await client.end();
  }
}

/** pgmq, pg_net and Vault: keep what the database holds; on a new database, the real extension where the server has it. */
export async function applyExtensions(client: pg.ClientBase, root: string, opts: PlatformOptions = {}): Promise<ComponentReport> {
  const hasExtension = opts.hasExtension ?? serverHasExtension;
  const createExtension = opts.createExtension ?? (async (c, comp) => void (await c.query(comp.createSql)));
  const log = opts.log ?? (() => {});
  const report: ComponentReport = {};
  for (const c of EXTENSIONS) {
    const installed = await installedImplementation(client, c);
    const available = hasExtension(c.extension);
    if (installed === "real") {
      if (!available) {
        throw new Error(
          `${c.name}: this database uses the real ${c.extension} extension, which this server does not have. ` +
            `Install the extension on this server; the stand-in cannot take over its data.`,
        );
      }
      await createExtension(client, c);
      report[c.name] = "real";
    } else if (installed === "stand-in" && available && opts.migrateExtensions) {
      log(`${c.name}: moving the stand-in's data to the real ${c.extension} extension`);
      await migrateToExtension(client, c, () => createExtension(client, c));
      report[c.name] = "real";
    } else if (installed === "none" && available) {
      await createExtension(client, c);
      report[c.name] = "real";
    } else {
      // Re-applying the stand-in is idempotent: it never drops queues, messages or secrets.
      await runFile(client, resolve(root, "sql/standins", c.standin));
      report[c.name] = "stand-in";
      if (installed === "stand-in" && available) {
        log(`${c.name}: the server has the real ${c.extension} extension, but this database holds the stand-in: keeping it. ` +
          "Run `npm run stack -- --migrate-extensions` to move its data to the extension.");
      }
    }
  }
  return report;
}

async function runFile(client: pg.ClientBase, path: string): Promise<void> {
  try {
    await client.query(readFileSync(path, "utf8"));
  } catch (err) {
    throw new Error(`Applying ${path} failed: ${(err as Error).message}`, { cause: err });
  }
}
