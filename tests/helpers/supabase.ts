/** supabase-js clients for tests, created exactly as a frontend would (plus a token). */
import { createClient, type SupabaseClient } from "@supabase/supabase-js";
import type { Database } from "../../types/database.ts";
import { testStack } from "./stack.ts";

/**
 * Node 20 has no global WebSocket and createClient() insists on one for
 * Realtime, which the embedded stack does not provide.
 */
class NoWebSocket {
  constructor() {
    throw new Error("Realtime is not available in these tests");
  }
}

/** A client with the given API key, acting for `token` (a user's access token) when given. */
export function supabaseClient(key: string, token?: string): SupabaseClient<Database> {
  return createClient<Database>(testStack().API_URL, key, {
    global: token ? { headers: { Authorization: `Bearer ${token}` } } : {},
    auth: { persistSession: false, autoRefreshToken: false },
    realtime: { transport: NoWebSocket as never },
  });
}
