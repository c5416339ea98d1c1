/**
 * The embedded stack's Edge Functions runtime: real Deno serving the
 * project's functions the way `supabase functions serve` does.
 *
 * - Functions are the `[functions.<slug>]` blocks of `supabase/config.toml`
 *   (stack/functions/config.ts); disabled ones are not served.
 * - Each function runs in its own `deno run` process, booted on its first
 *   request and reused afterwards (stack/functions/worker.ts), with network,
 *   env, read access to the project and write access to the temp dir.
 *   `npm:` imports resolve from the project's node_modules, so nothing is
 *   downloaded at run time.
 * - Environment: the platform's `SUPABASE_URL`, `SUPABASE_ANON_KEY`,
 *   `SUPABASE_SERVICE_ROLE_KEY`, `SUPABASE_DB_URL` (from `opts.env`), plus the
 *   project's secrets from `<root>/.env` when present (the local counterpart of
 *   `supabase functions serve --env-file` / `supabase secrets set`; names
 *   starting with `SUPABASE_` are skipped there, as the CLI does). Nothing else
 *   from the stack's own environment reaches a function.
 * - The gateway (stack/functions/gateway.ts) enforces `verify_jwt` and proxies.
 */
import { resolve } from "node:path";
import type { RouteHandler } from "./api-server.ts";
import { loadFunctionsConfig, type FunctionSpec } from "./functions/config.ts";
import { readFunctionSecrets } from "./functions/dotenv.ts";
import { createGateway } from "./functions/gateway.ts";
import { FunctionWorker } from "./functions/worker.ts";

export type FunctionsRuntimeOptions = {
  /** Project root (deno binary, deno.json, default config and env file). */
  root: string;
  /** HS256 secret that `verify_jwt` checks tokens against. */
  jwtSecret: string;
  /** Platform variables every function gets (SUPABASE_URL, keys, SUPABASE_DB_URL). */
  env: Record<string, string>;
  /** Config file declaring the functions; default `<root>/supabase/config.toml`. */
  configPath?: string;
  /** Env file with function secrets; default `<root>/.env` (ignored when missing). */
  envFile?: string;
  /** Where function output and lifecycle notes go; default stderr. */
  log?: (line: string) => void;
  /** Boot deadline per process; default 30 s. */
  bootTimeoutMs?: number;
};

export type FunctionsRuntime = {
  handler: RouteHandler;
  /** The functions being served, by slug. */
  functions: ReadonlyMap<string, FunctionSpec>;
  /** Kill every function process. */
  close: () => Promise<void>;
};

/** Read the function config and return the `/functions/v1` handler; processes start on first request. */
export async function startFunctionsRuntime(opts: FunctionsRuntimeOptions): Promise<FunctionsRuntime> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const specs = loadFunctionsConfig(opts.configPath ?? resolve(opts.root, "supabase/config.toml"));
  const secrets = readFunctionSecrets(opts.envFile ?? resolve(opts.root, ".env"), log);
  const env = { ...secrets, ...opts.env };
  const workers = new Map<string, FunctionWorker>();
  for (const spec of specs) {
    workers.set(spec.slug, new FunctionWorker({ spec, root: opts.root, env, log, bootTimeoutMs: opts.bootTimeoutMs }));
  }
  return {
    handler: createGateway({ workers, jwtSecret: opts.jwtSecret, log }),
    functions: new Map(specs.map((s) => [s.slug, s])),
    close: async () => {
      await Promise.all([...workers.values()].map((w) => w.stop()));
    },
  };
}
