/** supabase-js clients for tests, created exactly as a frontend would (plus a token). */
import { createClient, type SupabaseClient } from "@supabase/supabase-js";
import WebSocket from "ws";
import type { Database } from "../../types/database.ts";
import { testStack } from "./stack.ts";

/**
 * A client with the given API key, acting for `token` (a user's access token) when given.
 * Node 20 has no global WebSocket, so Realtime gets the `ws` package as transport; the
 * token also goes to Realtime (`setAuth`), as supabase-js does for a signed-in session.
 */
export function supabaseClient(key: string, token?: string): SupabaseClient<Database> {
  const client = createClient<Database>(testStack().API_URL, key, {
    global: token ? { headers: { Authorization: `Bearer ${token}` } } : {},
    auth: { persistSession: false, autoRefreshToken: false },
    realtime: { transport: WebSocket as never },
  });
  if (token) void client.realtime.setAuth(token);
  return client;
}
