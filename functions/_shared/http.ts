/**
 * Response helpers shared by every Edge Function: JSON bodies, the success
 * envelope `{ success: true, data }`, and CORS (functions answer browser
 * preflights themselves, as on Supabase).
 * Uses only Web APIs, so vitest (Node) can import it as well as Deno.
 */

/** CORS headers for browser callers of supabase-js `functions.invoke()`. */
export const corsHeaders: Readonly<Record<string, string>> = {
  "access-control-allow-origin": "*",
  "access-control-allow-headers": "authorization, x-client-info, apikey, content-type",
  "access-control-allow-methods": "GET, POST, PUT, PATCH, DELETE, OPTIONS",
};

/** The JSON body of every successful response. */
export type SuccessBody<T> = { success: true; data: T };

/** A JSON Response; `init.headers` is merged with the JSON content type and CORS headers. */
export function json(body: unknown, init: ResponseInit = {}): Response {
  const headers = new Headers(corsHeaders);
  new Headers(init.headers).forEach((value, key) => headers.set(key, value));
  headers.set("content-type", "application/json");
  return new Response(JSON.stringify(body), { ...init, headers });
}

/** `{ success: true, data }` as a JSON Response (status 200 unless `init.status`). */
export function success<T>(data: T, init: ResponseInit = {}): Response {
  const body: SuccessBody<T> = { success: true, data };
  return json(body, init);
}

/** The answer to a CORS preflight (`OPTIONS`) request, or `null` for any other method. */
export function preflight(req: Request): Response | null {
  return req.method === "OPTIONS" ? new Response(null, { status: 204, headers: corsHeaders }) : null;
}
