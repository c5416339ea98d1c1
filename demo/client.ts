/**
 * The demo's "frontend": everything it does, it does as the demo user with
 * supabase-js against the stack's API URL, the way a browser app would:
 * tables and RPCs through the real PostgREST at `/rest/v1`, Storage at
 * `/storage/v1`, Edge Functions at `/functions/v1`. The client carries the
 * anon key (checked by the gateway) and the user's access token (RLS).
 */
import { createClient, type PostgrestError, type SupabaseClient } from "@supabase/supabase-js";
import type { Database } from "../types/database.ts";

export type DemoSupabase = SupabaseClient<Database>;

/** Node 20 has no WebSocket and supabase-js insists on one for Realtime, which the embedded stack lacks. */
class NoWebSocket {
  constructor() {
    throw new Error("Realtime is not available on the embedded stack; the demo polls instead");
  }
}

/** supabase-js acting for the user (anon key + the user's access token), as a signed-in frontend. */
export function userSupabase(apiUrl: string, anonKey: string, accessToken: string): DemoSupabase {
  return createClient<Database>(apiUrl, anonKey, {
    global: { headers: { Authorization: `Bearer ${accessToken}` } },
    auth: { persistSession: false, autoRefreshToken: false },
    realtime: { transport: NoWebSocket as never },
  });
}

/** The data of a supabase-js result, or an Error carrying PostgREST's code, message and hint. */
export function unwrap<T>(what: string, res: { data: T; error: PostgrestError | null }): NonNullable<T> {
  if (res.error) {
    const hint = res.error.hint ? ` (hint: ${res.error.hint})` : "";
    throw new Error(`${what} failed: ${res.error.code} ${res.error.message}${hint}`);
  }
  if (res.data === null || res.data === undefined) throw new Error(`${what} returned nothing`);
  return res.data as NonNullable<T>;
}
