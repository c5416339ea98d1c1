/**
 * A monitoring test world: a GPU cluster simulator owned by this test file
 * (its faults, time scale and webhook deliveries are ours to steer) and a
 * throwaway embedded stack whose functions talk to it, with the cluster's
 * callbacks pointed at this stack's gpu-webhook and gpu-upload-urls. A
 * simulator-wide fault (an out-of-memory failure at a step) cannot disturb
 * another test file's jobs this way.
 */
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { resolve } from "node:path";
import pg from "pg";
import { createClient, type SupabaseClient } from "@supabase/supabase-js";
import WebSocket from "ws";
import { type GpuSimulator, type GpuSimulatorFaults, startGpuSimulator } from "../../../gpu-cluster/simulator/index.ts";
import { generateWebhookSecret } from "../../../functions/_shared/webhooks.ts";
import { loadStackConfig, PROJECT_ROOT } from "../../../stack/config.ts";
import { startStack, type StackHandle } from "../../../stack/index.ts";
import { freePort } from "../../../stack/throwaway.ts";

export type WorldOptions = {
  purpose: string;
  /** Simulated seconds per real second (default 30). */
  timeScale?: number;
  queueDelaySeconds?: number;
  progressIntervalSeconds?: number;
  faults?: GpuSimulatorFaults;
  /** Keep pg_cron's poll schedule (default: unscheduled, tests wake the poller themselves). */
  keepPollCron?: boolean;
};

export type World = {
  apiUrl: string;
  dbUrl: string;
  anonKey: string;
  serviceRoleKey: string;
  jwtSecret: string;
  apiKey: string;
  webhookSecret: string;
  sim: GpuSimulator;
  db: pg.Pool;
  /** Drop webhook deliveries to gpu-webhook (the cluster sees 503 and gives up after its retries). */
  blockWebhooks: (on: boolean) => void;
  /** Webhook deliveries the simulator attempted, by URL kind. */
  outbound: { webhooks: number; blockedWebhooks: number; uploadUrlRequests: number };
  serviceClient: () => SupabaseClient;
  userClient: (token: string) => SupabaseClient;
  stop: () => Promise<void>;
};


/** Start a simulator and a stack wired to it. */
export async function startWorld(opts: WorldOptions): Promise<World> {
  const dir = resolve(PROJECT_ROOT, `.stack-${opts.purpose}-${process.pid}-${randomBytes(3).toString("hex")}`);
  const config = loadStackConfig({
    ...process.env,
    STACK_DIR: dir,
    STACK_DB_PORT: String(await freePort()),
    STACK_API_PORT: String(await freePort()),
    STACK_GPU_PORT: String(await freePort()),
    STACK_REST_PORT: String(await freePort()),
  });
  const apiKey = `mon_${randomBytes(16).toString("hex")}`;
  const webhookSecret = generateWebhookSecret();
  let blocked = false;
  const outbound = { webhooks: 0, blockedWebhooks: 0, uploadUrlRequests: 0 };
  const sim = await startGpuSimulator({
    apiKey,
    webhookSecret,
    timeScale: opts.timeScale ?? 30,
    queueDelaySeconds: opts.queueDelaySeconds ?? 30,
    progressIntervalSeconds: opts.progressIntervalSeconds ?? 20,
    webhookRetryDelaysMs: [100, 300],
    faults: opts.faults ?? {},
    fetch: async (input, init) => {
      const url = String(input instanceof Request ? input.url : input);
      if (url.includes("/functions/v1/gpu-webhook")) {
        outbound.webhooks++;
        if (blocked) {
          outbound.blockedWebhooks++;
          return new Response("blocked by the test", { status: 503 });
        }
      }
      if (url.includes("/functions/v1/gpu-upload-urls")) outbound.uploadUrlRequests++;
      return await fetch(input, init);
    },
  });
  let handle: StackHandle;
  try {
    handle = await startStack(config, {
      fresh: true,
      ephemeral: true,
      functionEnv: {
        GPU_CLUSTER_API_URL: sim.url,
        GPU_CLUSTER_API_KEY: apiKey,
        GPU_WEBHOOK_SECRET: webhookSecret,
        GPU_CLUSTER_CALLBACK_URL: `${config.apiUrl}/functions/v1/gpu-webhook`,
        GPU_CLUSTER_UPLOAD_URLS_CALLBACK_URL: `${config.apiUrl}/functions/v1/gpu-upload-urls`,
      },
    });
  } catch (err) {
    await sim.close();
    throw err;
  }
  const db = new pg.Pool({ connectionString: config.dbUrl, max: 6 });
  if (!opts.keepPollCron) await db.query("select cron.unschedule('poll-training-jobs')");
  const s = handle.status;
  const client = (key: string, token?: string) =>
    createClient(s.API_URL, key, {
      global: token ? { headers: { Authorization: `Bearer ${token}` } } : {},
      auth: { persistSession: false, autoRefreshToken: false },
      realtime: { transport: WebSocket as never },
    });
  return {
    apiUrl: s.API_URL,
    dbUrl: s.DB_URL,
    anonKey: s.ANON_KEY,
    serviceRoleKey: s.SERVICE_ROLE_KEY,
    jwtSecret: s.JWT_SECRET,
    apiKey,
    webhookSecret,
    sim,
    db,
    blockWebhooks: (on) => {
      blocked = on;
    },
    outbound,
    serviceClient: () => client(s.SERVICE_ROLE_KEY),
    userClient: (token) => client(s.ANON_KEY, token),
    stop: async () => {
      await db.end();
      await sim.close();
      await handle.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
