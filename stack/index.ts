/**
 * Boots the embedded local stack: Postgres (+ pg_cron), the platform surface,
 * migrations through the Supabase CLI, the pg_net worker, the GPU cluster
 * simulator, the real PostgREST, and the API gateway with PostgREST at
 * `/rest/v1`, the Auth, Storage and Realtime stand-ins and the Deno
 * functions runtime.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { startGpuSimulator, type GpuSimulator, type GpuSimulatorOptions } from "../gpu-cluster/simulator/index.ts";
import pg from "pg";
import type { StackConfig } from "./config.ts";
import { startApiServer, type RouteHandler } from "./api-server.ts";
import { startAuthServer } from "./auth/server.ts";
import { startFunctionsRuntime } from "./functions-runtime.ts";
import { mintApiKey } from "./jwt.ts";
import { pushMigrations } from "./migrate.ts";
import { startNetWorker } from "./net-worker.ts";
import { applyPlatform } from "./platform.ts";
import { ensurePostgresPackages, postgresLogTail, startPostgres, stopPostgres } from "./postgres.ts";
import { postgrestBinary, reloadPostgrestSchema, startPostgrest } from "./postgrest.ts";
import { createRestGateway } from "./rest-gateway.ts";
import { upsertVaultSecrets } from "./secrets.ts";
import { startRealtime } from "./realtime/server.ts";
import { startStorageServer } from "./storage/server.ts";
import { loadFileSizeLimit } from "./storage/config.ts";
import { routeLimits, withRouteLimits } from "./body-limits.ts";

/** What `npm run stack:status` prints, shaped like `supabase status -o json`. */
export type StackStatus = {
  API_URL: string;
  /** PostgREST through the gateway (`<API_URL>/rest/v1`), as `supabase status -o json` names it. */
  REST_URL: string;
  DB_URL: string;
  STORAGE_URL: string;
  FUNCTIONS_URL: string;
  ANON_KEY: string;
  SERVICE_ROLE_KEY: string;
  JWT_SECRET: string;
  /** The GPU cluster simulator (`GPU_CLUSTER_API_URL` of the functions); its admin API is `/_sim/*`. */
  GPU_CLUSTER_URL: string;
  /** Bearer key of the simulator, random per start (`GPU_CLUSTER_API_KEY`). */
  GPU_CLUSTER_API_KEY: string;
  /** Secret the simulator signs webhooks with, random per start (`GPU_WEBHOOK_SECRET`). */
  GPU_WEBHOOK_SECRET: string;
  /** Per component: `real`, `stand-in` (ours, documented in docs/standins/) or `absent` (not served). */
  COMPONENTS: Record<string, ComponentKind>;
};

export type ComponentKind = "real" | "stand-in" | "absent";

/** Password of the `authenticator` role PostgREST logs in as (sql/platform/00_roles.sql). */
const AUTHENTICATOR_PASSWORD = "postgres";

export type StackHandle = { config: StackConfig; status: StackStatus; gpu: GpuSimulator; stop: () => Promise<void> };

export type StartOptions = {
  /** Wipe the cluster and stored objects first. */
  fresh?: boolean;
  /** Move pgmq / pg_net / Vault from a stand-in the database holds to the real extension the server has (`--migrate-extensions`). */
  migrateExtensions?: boolean;
  /** Throwaway stack (tests): no fsync. */
  ephemeral?: boolean;
  /** Extra environment for the functions (as `supabase/functions/.env`). */
  functionEnv?: Record<string, string>;
  /** Pacing of the GPU cluster simulator (default: 600x time, its own queue delay and progress interval). */
  gpu?: Pick<GpuSimulatorOptions, "timeScale" | "queueDelaySeconds" | "progressIntervalSeconds">;
  log?: (msg: string) => void;
};

/** Start every component; on failure, stops what already started and rethrows. */
export async function startStack(config: StackConfig, opts: StartOptions = {}): Promise<StackHandle> {
  const log = opts.log ?? (() => {});
  const stops: Array<() => Promise<void> | void> = [];
  const stop = async () => {
    for (const s of stops.reverse()) {
      try {
        await s();
      } catch (err) {
        console.error(`stack: stopping a component failed: ${(err as Error).message}`);
      }
    }
    stops.length = 0;
  };
  try {
    ensurePostgresPackages(log);
    // Before anything starts: without a PostgREST binary for this platform the stack does not run at all.
    postgrestBinary();
    if (opts.fresh) rmSync(config.storageDir, { recursive: true, force: true });
    mkdirSync(config.storageDir, { recursive: true });
    log(`postgres: starting on 127.0.0.1:${config.dbPort}`);
    try {
      startPostgres(config, { fresh: opts.fresh, ephemeral: opts.ephemeral });
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- postgres.log ---\n${postgresLogTail(config)}`, { cause: err });
    }
    stops.push(() => stopPostgres(config));

    log("platform: roles, auth, storage, realtime, pgmq, pg_net, vault");
    const components = await applyPlatform(config.root, config.dbUrl, { migrateExtensions: opts.migrateExtensions, log });
    log("migrations: supabase db push");
    pushMigrations(config.root, config.dbUrl);
    // Supabase's documented step after migrating; any PostgREST listening reloads its schema cache.
    // (Later DDL reloads it too: the event triggers of sql/platform/30_postgrest.sql.)
    await reloadPostgrestSchema(config.dbUrl);

    const anonKey = await mintApiKey(config.jwtSecret, "anon");
    const serviceRoleKey = await mintApiKey(config.jwtSecret, "service_role");
    // Random per start: it only lets the database wake the workers (private.invoke_worker).
    const workerWakeupSecret = `wake_${randomBytes(24).toString("hex")}`;
    await upsertVaultSecrets(config.dbUrl, { project_url: config.apiUrl, worker_wakeup_secret: workerWakeupSecret });

    const net = await startNetWorker({ dbUrl: config.dbUrl });
    stops.push(() => net.stop());

    const storage = await startStorageServer({
      dbUrl: config.dbUrl, storageDir: config.storageDir, jwtSecret: config.jwtSecret, publicUrl: config.apiUrl,
    });
    stops.push(() => storage.close());

    const auth = startAuthServer({ dbUrl: config.dbUrl, jwtSecret: config.jwtSecret, apiUrl: config.apiUrl });
    stops.push(() => auth.close());

    const gpuApiKey = `sim_${randomBytes(24).toString("hex")}`;
    const gpuWebhookSecret = `whsec_${randomBytes(32).toString("base64")}`;
    // 600x: an hour of simulated training takes six seconds.
    const gpuOptions = { port: config.gpuPort, apiKey: gpuApiKey, webhookSecret: gpuWebhookSecret, timeScale: 600, ...opts.gpu };
    // The simulator's GPUs run faster than the wall clock; usage bounds (private.usage_bound) must know by how much.
    await setJobSetting(config.dbUrl, "usage_wall_clock_factor", gpuOptions.timeScale);
    const gpu = await startGpuSimulator(gpuOptions);
    stops.push(() => gpu.close());
    log(`gpu cluster simulator: listening on ${gpu.url}`);

    const functions = await startFunctionsRuntime({
      root: config.root,
      jwtSecret: config.jwtSecret,
      env: {
        SUPABASE_URL: config.apiUrl,
        SUPABASE_ANON_KEY: anonKey,
        SUPABASE_SERVICE_ROLE_KEY: serviceRoleKey,
        SUPABASE_DB_URL: config.dbUrl,
        WORKER_WAKEUP_SECRET: workerWakeupSecret,
        GPU_CLUSTER_API_URL: gpu.url,
        GPU_CLUSTER_API_KEY: gpuApiKey,
        GPU_WEBHOOK_SECRET: gpuWebhookSecret,
        // The simulator answers at once unless a fault says otherwise; do not wait 10 s for a hang.
        GPU_CLUSTER_TIMEOUT_MS: "5000",
        // Hook for monitoring (docs/monitoring.md): the cluster's signed callbacks reach these functions.
        GPU_CLUSTER_CALLBACK_URL: `${config.apiUrl}/functions/v1/gpu-webhook`,
        GPU_CLUSTER_UPLOAD_URLS_CALLBACK_URL: `${config.apiUrl}/functions/v1/gpu-upload-urls`,
        ...opts.functionEnv,
      },
    });
    stops.push(() => functions.close());

    log(`postgrest: starting on 127.0.0.1:${config.restPort}`);
    const postgrest = await startPostgrest({
      dbUrl: config.dbUrl, authenticatorPassword: AUTHENTICATOR_PASSWORD, jwtSecret: config.jwtSecret,
      port: config.restPort, logFile: resolve(config.stackDir, "postgrest.log"), log,
    });
    stops.push(() => postgrest.stop());
    const realtime = await startRealtime({ dbUrl: config.dbUrl, jwtSecret: config.jwtSecret, log });
    stops.push(() => realtime.close());

    const rest = createRestGateway({ upstream: postgrest.url, apiKeys: [anonKey, serviceRoleKey] });

    const routes: Record<string, RouteHandler> = {
      "/rest/v1": rest, "/auth/v1": auth.handler, "/storage/v1": storage.handler, "/functions/v1": functions.handler,
    };
    const api = await startApiServer(
      config.apiPort,
      withRouteLimits(routes, routeLimits({ fileSizeLimit: loadFileSizeLimit(config.root) })),
      { "/realtime/v1": realtime.upgrade },
    );
    stops.push(() => api.close());
    log(`api: listening on ${config.apiUrl}`);

    const status: StackStatus = {
      API_URL: config.apiUrl,
      REST_URL: `${config.apiUrl}/rest/v1`,
      DB_URL: config.dbUrl,
      STORAGE_URL: `${config.apiUrl}/storage/v1`,
      FUNCTIONS_URL: `${config.apiUrl}/functions/v1`,
      ANON_KEY: anonKey,
      SERVICE_ROLE_KEY: serviceRoleKey,
      JWT_SECRET: config.jwtSecret,
      GPU_CLUSTER_URL: gpu.url,
      GPU_CLUSTER_API_KEY: gpuApiKey,
      GPU_WEBHOOK_SECRET: gpuWebhookSecret,
      COMPONENTS: {
        postgres: "real", pg_cron: "real", supabase_cli: "real", deno: "real",
        ...components, auth: "stand-in", storage: "stand-in", postgrest: "real", realtime: "stand-in",
        gpu_cluster: "stand-in",
      },
    };
    writeFileSync(config.statusFile, JSON.stringify(status, null, 2));
    stops.unshift(() => rmSync(config.statusFile, { force: true }));
    return { config, status, gpu, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function setJobSetting(dbUrl: string, name: string, value: number): Promise<void> {
  const client = new pg.Client({ connectionString: dbUrl });
  await client.connect();
  try {
    await client.query("update private.job_settings set value = $2 where name = $1", [name, value]);
  } finally {
    await client.end();
  }
}
