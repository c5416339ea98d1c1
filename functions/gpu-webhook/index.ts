// Entry point: read configuration, build dependencies, serve.
import { createClient } from "@supabase/supabase-js";
import { createPool } from "../_shared/db.ts";
import { loadEnv, webhookSecrets } from "../_shared/env.ts";
import { ConfigError } from "../_shared/errors.ts";
import { createModelCardWriter } from "../_shared/model-card-delivery.ts";
import { createHandler } from "./handler.ts";

declare const EdgeRuntime: { waitUntil(p: Promise<unknown>): void } | undefined;

const env = loadEnv(Deno.env.toObject());
const secrets = webhookSecrets(env.GPU_WEBHOOK_SECRET);
if (secrets.length === 0) throw new ConfigError("Invalid function environment: GPU_WEBHOOK_SECRET is required");
const db = createPool(env.SUPABASE_DB_URL, { applicationName: "fn:gpu-webhook", max: 4 });
const supabase = createClient(env.SUPABASE_URL, env.SUPABASE_SERVICE_ROLE_KEY, {
  auth: { persistSession: false, autoRefreshToken: false },
});

Deno.serve(
  createHandler({
    secrets,
    db,
    writeModelCard: createModelCardWriter({ db, storage: supabase.storage }),
    background: (work) => (typeof EdgeRuntime !== "undefined" ? EdgeRuntime.waitUntil(work) : void work),
  }),
);
