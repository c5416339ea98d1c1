// Entry point: read configuration, build dependencies, serve.
import { createClient } from "@supabase/supabase-js";
import { createPool } from "../_shared/db.ts";
import { loadEnv } from "../_shared/env.ts";
import { createHandler } from "./handler.ts";

const env = loadEnv(Deno.env.toObject());
const pool = createPool(env.SUPABASE_DB_URL, { applicationName: "fn:list-artifacts", max: 2 });

Deno.serve(
  createHandler({
    db: pool,
    // A client per request acting with the caller's token, as supabase-js in the browser would.
    storageFor: (token) =>
      createClient(env.SUPABASE_URL, env.SUPABASE_ANON_KEY, {
        global: { headers: { Authorization: `Bearer ${token}` } },
        auth: { persistSession: false, autoRefreshToken: false },
      }).storage,
  }),
);
