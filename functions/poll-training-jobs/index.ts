// Entry point: read configuration, build dependencies, serve.
import { createClient } from "@supabase/supabase-js";
import { createPool } from "../_shared/db.ts";
import { wakeupSecrets } from "../_shared/env.ts";
import { GpuClusterClient } from "../_shared/gpu/client.ts";
import { createModelCardWriter } from "../_shared/model-card-delivery.ts";
import { runPollCycle } from "./cycle.ts";
import { loadPollEnv } from "./env.ts";
import { createHandler } from "./handler.ts";

declare const EdgeRuntime: { waitUntil(p: Promise<unknown>): void } | undefined;

const env = loadPollEnv(Deno.env.toObject());
const db = createPool(env.SUPABASE_DB_URL, { applicationName: "fn:poll-training-jobs", max: 4 });
const supabase = createClient(env.SUPABASE_URL, env.SUPABASE_SERVICE_ROLE_KEY, {
  auth: { persistSession: false, autoRefreshToken: false },
});
// One short attempt per poll: the next poll is the retry.
const gpu = new GpuClusterClient({
  baseUrl: env.GPU_CLUSTER_API_URL,
  apiKey: env.GPU_CLUSTER_API_KEY,
  timeoutMs: env.GPU_CLUSTER_TIMEOUT_MS,
  maxAttempts: 2,
  maxDelayMs: 1_000,
  maxRetryAfterMs: 2_000,
});
const writeModelCard = createModelCardWriter({ db, storage: supabase.storage });

Deno.serve(
  createHandler({
    serviceRoleKey: env.SUPABASE_SERVICE_ROLE_KEY,
    wakeupSecrets: wakeupSecrets(env.WORKER_WAKEUP_SECRET),
    runCycle: (opts) => runPollCycle({ db, gpu, writeModelCard }, opts),
    background: (work) => (typeof EdgeRuntime !== "undefined" ? EdgeRuntime.waitUntil(work) : void work),
  }),
);
