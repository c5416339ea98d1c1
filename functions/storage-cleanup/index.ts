// Entry point: read configuration, build dependencies, serve.
import { createClient } from "@supabase/supabase-js";
import { createPool } from "../_shared/db.ts";
import { loadEnv, wakeupSecrets } from "../_shared/env.ts";
import { createHandler, storageRemover } from "./handler.ts";

const env = loadEnv(Deno.env.toObject());
const db = createPool(env.SUPABASE_DB_URL, { applicationName: "fn:storage-cleanup", max: 1 });
const supabase = createClient(env.SUPABASE_URL, env.SUPABASE_SERVICE_ROLE_KEY, {
  auth: { persistSession: false, autoRefreshToken: false },
});

Deno.serve(createHandler({ serviceRoleKey: env.SUPABASE_SERVICE_ROLE_KEY, wakeupSecrets: wakeupSecrets(env.WORKER_WAKEUP_SECRET), db, remove: storageRemover(supabase.storage) }));
