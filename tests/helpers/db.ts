/**
 * Database access for SQL-level tests (state machines, triggers, grants,
 * workers): `asRole` runs SQL as PostgREST would for a role, inside a
 * transaction, with `request.jwt.claims`. What a client does is tested
 * through supabase-js against the stack instead (tests/helpers/supabase.ts).
 */
import pg from "pg";
import { randomUUID } from "node:crypto";
import { createClient } from "@supabase/supabase-js";
import WebSocket from "ws";
import type { LocalUser } from "../../stack/jwt.ts";
import { testStack } from "./stack.ts";

export type Role = "anon" | "authenticated" | "service_role";

/** A fresh superuser connection to the test database; the caller ends it. */
export async function connect(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: testStack().DB_URL });
  await client.connect();
  return client;
}

/** Run `fn` with a superuser connection, closing it afterwards. */
export async function withClient<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = await connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** Claims PostgREST would set for a request made with this user's token (or the anon/service key). */
export function claimsFor(role: Role, user?: { id: string; email?: string }): Record<string, unknown> {
  if (role === "authenticated") {
    if (!user) throw new Error("authenticated claims need a user");
    return { sub: user.id, role, aud: "authenticated", email: user.email ?? "" };
  }
  return { role, iss: "supabase-demo" };
}

/**
 * Run `fn` as PostgREST would for a request with the given role and user, in
 * a transaction that is rolled back unless `commit` is set.
 */
export async function asRole<T>(
  client: pg.ClientBase,
  who: { role: Role; user?: { id: string; email?: string } },
  fn: (c: pg.ClientBase) => Promise<T>,
  opts: { commit?: boolean } = {},
): Promise<T> {
  await client.query("begin");
  try {
    await client.query("select set_config('role', $1, true), set_config('request.jwt.claims', $2, true)", [
      who.role,
      JSON.stringify(claimsFor(who.role, who.user)),
    ]);
    const out = await fn(client);
    await client.query(opts.commit ? "commit" : "rollback");
    return out;
  } catch (err) {
    await client.query("rollback");
    throw err;
  }
}

/**
 * A confirmed user created through the Auth admin API (service role) and
 * signed in with its password: `token` is that session's access token.
 * `_client` is unused (users are no longer inserted with SQL); the parameter
 * stays so that callers need not change.
 */
export async function newUser(_client: pg.ClientBase, prefix = "user"): Promise<LocalUser> {
  return await signedInUser(testStack(), `${prefix}-${randomUUID().slice(0, 8)}@example.test`);
}

/** Create `email` with the admin API of the stack at `s.API_URL` and sign it in. */
export async function signedInUser(
  s: { API_URL: string; ANON_KEY: string; SERVICE_ROLE_KEY: string },
  email: string,
): Promise<LocalUser> {
  const opts = { auth: { persistSession: false, autoRefreshToken: false }, realtime: { transport: WebSocket as never } };
  const password = `pw-${randomUUID()}`;
  const admin = createClient(s.API_URL, s.SERVICE_ROLE_KEY, opts);
  const created = await admin.auth.admin.createUser({ email, password, email_confirm: true });
  if (created.error) throw new Error(`Creating user "${email}" failed: ${created.error.message}`);
  const signedIn = await createClient(s.API_URL, s.ANON_KEY, opts).auth.signInWithPassword({ email, password });
  if (signedIn.error) throw new Error(`Signing in "${email}" failed: ${signedIn.error.message}`);
  return { id: created.data.user.id, email, token: signedIn.data.session.access_token };
}

/** Expect `promise` to reject with the given SQLSTATE. */
export async function sqlState(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code;
  }
}
