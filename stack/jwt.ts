/**
 * Local Auth: JWTs signed with the stack's secret in Supabase's claim shapes
 * (HS256; `role`, `iss`, `aud`, `sub`, `email`, `app_metadata`, ...), and
 * users created directly in `auth.users` as GoTrue would store them.
 */
import { randomUUID } from "node:crypto";
import { SignJWT, jwtVerify, type JWTPayload } from "jose";
import type pg from "pg";

const enc = (secret: string) => new TextEncoder().encode(secret);
const TEN_YEARS = 10 * 365 * 24 * 3600;

/** The long-lived API keys `supabase start` prints: anon and service_role. */
export async function mintApiKey(secret: string, role: "anon" | "service_role"): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return await new SignJWT({ iss: "supabase-demo", role })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuedAt(now)
    .setExpirationTime(now + TEN_YEARS)
    .sign(enc(secret));
}

export type UserTokenOptions = { email?: string; expiresIn?: number; sessionId?: string };

/** An access token as GoTrue issues it to a signed-in user. */
export async function mintUserToken(secret: string, userId: string, opts: UserTokenOptions = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return await new SignJWT({
    iss: "http://127.0.0.1:54321/auth/v1",
    aud: "authenticated",
    sub: userId,
    email: opts.email ?? "",
    phone: "",
    role: "authenticated",
    aal: "aal1",
    amr: [{ method: "password", timestamp: now }],
    session_id: opts.sessionId ?? randomUUID(),
    is_anonymous: false,
    app_metadata: { provider: "email", providers: ["email"] },
    user_metadata: {},
  })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuedAt(now)
    .setExpirationTime(now + (opts.expiresIn ?? 3600))
    .sign(enc(secret));
}

/** Verify an HS256 token as Supabase's gateway does; throws on a bad signature or expiry. */
export async function verifyToken(secret: string, token: string): Promise<JWTPayload> {
  const { payload } = await jwtVerify(token, enc(secret), { algorithms: ["HS256"] });
  return payload;
}

export type LocalUser = { id: string; email: string; token: string };

/** Insert a confirmed email user into `auth.users` and return a signed access token for them. */
export async function createUser(db: pg.ClientBase, secret: string, email: string): Promise<LocalUser> {
  const id = randomUUID();
  await db.query(
    `insert into auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
       raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
     values ('00000000-0000-0000-0000-000000000000', $1, 'authenticated', 'authenticated', $2,
       extensions.crypt(gen_random_uuid()::text, extensions.gen_salt('bf', 4)), now(),
       '{"provider":"email","providers":["email"]}', '{}', now(), now())`,
    [id, email],
  );
  return { id, email, token: await mintUserToken(secret, id, { email }) };
}
