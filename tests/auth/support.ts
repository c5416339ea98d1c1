/** Helpers for the Auth stand-in tests: supabase-js auth clients, raw GoTrue calls, and the auth tables. */
import { randomUUID } from "node:crypto";
import type { SupabaseClient } from "@supabase/supabase-js";
import { withClient } from "../helpers/db.ts";
import { testStack } from "../helpers/stack.ts";
import { supabaseClient } from "../helpers/supabase.ts";

export const newEmail = (prefix = "auth") => `${prefix}-${randomUUID().slice(0, 8)}@example.test`;
export const newPassword = () => `pw-${randomUUID()}`;

/** What a frontend has: a client with the anon key. */
export const anonAuth = (): SupabaseClient["auth"] => supabaseClient(testStack().ANON_KEY).auth;
/** What a trusted server has: the service-role client's admin API. */
export const adminAuth = (): SupabaseClient["auth"]["admin"] => supabaseClient(testStack().SERVICE_ROLE_KEY).auth.admin;

export type RawResponse = { status: number; headers: Headers; body: unknown };

/** A request to `/auth/v1{path}` as auth-js makes it (apikey, API version), with overrides. */
export async function gotrue(
  method: string,
  path: string,
  o: { json?: unknown; rawBody?: string; token?: string; headers?: Record<string, string> } = {},
): Promise<RawResponse> {
  const headers: Record<string, string> = {
    apikey: testStack().ANON_KEY,
    "x-supabase-api-version": "2024-01-01",
    ...(o.json !== undefined ? { "content-type": "application/json;charset=UTF-8" } : {}),
    ...(o.token ? { authorization: `Bearer ${o.token}` } : {}),
    ...o.headers,
  };
  const res = await fetch(`${testStack().API_URL}/auth/v1${path}`, {
    method,
    headers,
    body: o.json !== undefined ? JSON.stringify(o.json) : o.rawBody,
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null };
}

/** Run one superuser query against the stack's database. */
export async function sql<T extends Record<string, unknown>>(text: string, params: unknown[] = []): Promise<T[]> {
  return await withClient(async (c) => (await c.query<T>(text, params)).rows);
}

/** The claims of a JWT, unverified (the tests check what Auth put there). */
export function claimsOf(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split(".")[1]!, "base64url").toString("utf8")) as Record<string, unknown>;
}
