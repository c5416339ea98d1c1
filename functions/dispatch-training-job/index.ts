// Entry point: read configuration, build dependencies, serve.
import { createClient } from "@supabase/supabase-js";
import { createPool } from "../_shared/db.ts";
import { wakeupSecrets } from "../_shared/env.ts";
import { GpuClusterClient } from "../_shared/gpu/client.ts";
import { createDownloadUrlSigner } from "../_shared/storage.ts";
import { loadDispatchEnv } from "./env.ts";
import { createHandler } from "./handler.ts";
import { dispatchStore } from "./store.ts";

const env = loadDispatchEnv(Deno.env.toObject());
const pool = createPool(env.SUPABASE_DB_URL, { applicationName: "fn:dispatch-training-job", max: 2 });
const supabase = createClient(env.SUPABASE_URL, env.SUPABASE_SERVICE_ROLE_KEY, {
  auth: { persistSession: false, autoRefreshToken: false },
});

Deno.serve(
  createHandler({
    serviceRoleKey: env.SUPABASE_SERVICE_ROLE_KEY,
    wakeupSecrets: wakeupSecrets(env.WORKER_WAKEUP_SECRET),
    store: dispatchStore(pool),
    // Few, short attempts per call: the queue does the long-haul retrying, with backoff.
    gpu: (onRetry) =>
      new GpuClusterClient({
        baseUrl: env.GPU_CLUSTER_API_URL,
        apiKey: env.GPU_CLUSTER_API_KEY,
        timeoutMs: env.GPU_CLUSTER_TIMEOUT_MS,
        maxAttempts: 3,
        maxDelayMs: 2_000,
        maxRetryAfterMs: 5_000,
        onRetry,
      }),
    signDatasetUrl: createDownloadUrlSigner(supabase.storage),
    callbacks: { eventsUrl: env.GPU_CLUSTER_CALLBACK_URL, uploadUrlsUrl: env.GPU_CLUSTER_UPLOAD_URLS_CALLBACK_URL },
  }),
);
