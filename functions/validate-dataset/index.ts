// Entry point: read configuration, build dependencies, serve.
import { createPool } from "../_shared/db.ts";
import { loadTokenCounter } from "../_shared/dataset/tokenizer-loader.ts";
import { loadEnv, wakeupSecrets } from "../_shared/env.ts";
import { createHandler } from "./handler.ts";
import { createStorageReader } from "./object-reader.ts";
import { createPgStore } from "./store.ts";

const env = loadEnv(Deno.env.toObject());
const pool = createPool(env.SUPABASE_DB_URL, { applicationName: "fn:validate-dataset", max: 4 });

Deno.serve(
  createHandler({
    serviceRoleKey: env.SUPABASE_SERVICE_ROLE_KEY,
    wakeupSecrets: wakeupSecrets(env.WORKER_WAKEUP_SECRET),
    store: createPgStore(pool),
    reader: createStorageReader({ url: env.SUPABASE_URL, serviceRoleKey: env.SUPABASE_SERVICE_ROLE_KEY }),
    loadCounter: loadTokenCounter,
    log: (message, data) => console.log(message, JSON.stringify(data ?? {})),
    memory: () => Deno.memoryUsage(),
  }),
);
