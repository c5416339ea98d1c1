// Entry point: read configuration, build dependencies, serve.
import { createClient } from "@supabase/supabase-js";
import { createPool } from "../_shared/db.ts";
import { loadEnv, wakeupSecrets } from "../_shared/env.ts";
import { createModelCardWriter } from "../_shared/model-card-delivery.ts";
import { createHandler, storageReader } from "./handler.ts";

const env = loadEnv(Deno.env.toObject());
const pool = createPool(env.SUPABASE_DB_URL, { applicationName: "fn:verify-artifacts", max: 2 });
const supabase = createClient(env.SUPABASE_URL, env.SUPABASE_SERVICE_ROLE_KEY, {
  auth: { persistSession: false, autoRefreshToken: false },
});

Deno.serve(createHandler({
  serviceRoleKey: env.SUPABASE_SERVICE_ROLE_KEY,
  wakeupSecrets: wakeupSecrets(env.WORKER_WAKEUP_SECRET),
  pool,
  read: storageReader(`${env.SUPABASE_URL}/storage/v1`, env.SUPABASE_SERVICE_ROLE_KEY),
  writeModelCard: createModelCardWriter({ db: pool, storage: supabase.storage }),
}));
