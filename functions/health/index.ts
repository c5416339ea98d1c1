// Entry point: read configuration, build dependencies, serve.
import { createPool } from "../_shared/db.ts";
import { loadEnv } from "../_shared/env.ts";
import { createHandler } from "./handler.ts";

const env = loadEnv(Deno.env.toObject());
const pool = createPool(env.SUPABASE_DB_URL, { applicationName: "fn:health", max: 1 });

Deno.serve(
  createHandler({
    pingDb: async () => {
      const { rows } = await pool.query<{ one: number }>("select 1 as one");
      const one = rows[0]?.one;
      if (one === undefined) throw new Error("select 1 returned no row");
      return one;
    },
  }),
);
