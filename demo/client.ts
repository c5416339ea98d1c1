/**
 * The demo's "frontend": everything it does, it does as the demo user with
 * supabase-js against the stack's API URL, the way a browser app would:
 * tables and RPCs through the real PostgREST at `/rest/v1`, Storage at
 * `/storage/v1`, Edge Functions at `/functions/v1`, Realtime at
 * `/realtime/v1/websocket`. The client carries the anon key (checked by the
 * gateway) and the user's access token (RLS, also for Realtime).
 */
import { createClient, type PostgrestError, type SupabaseClient } from "@supabase/supabase-js";
import WebSocket from "ws";
import type { Database } from "../types/database.ts";

export type DemoSupabase = SupabaseClient<Database>;

/**
 * supabase-js acting for the user (anon key + the user's access token), as a signed-in frontend.
 * Node 20 has no global WebSocket, so Realtime gets the `ws` package; `setAuth` hands Realtime the
 * token that a signed-in session would have given it.
 */
export function userSupabase(apiUrl: string, anonKey: string, accessToken: string): DemoSupabase {
  const client = createClient<Database>(apiUrl, anonKey, {
    global: { headers: { Authorization: `Bearer ${accessToken}` } },
    auth: { persistSession: false, autoRefreshToken: false },
    realtime: { transport: WebSocket as never },
  });
  void client.realtime.setAuth(accessToken);
  return client;
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
