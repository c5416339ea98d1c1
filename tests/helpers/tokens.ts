/**
 * Access tokens made by hand, for tests that need one Auth would never issue
 * (expired, signed with another secret, for a user or session that does not
 * exist). Real sessions come from the Auth stand-in (tests/helpers/db.ts newUser).
 */
import { randomUUID } from "node:crypto";
import { SignJWT } from "jose";

export type ForgedTokenOptions = { email?: string; expiresIn?: number; sessionId?: string; role?: string };

/** A token in GoTrue's claim shape for `userId`, signed with `secret` (HS256). */
export async function mintUserToken(secret: string, userId: string, opts: ForgedTokenOptions = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return await new SignJWT({
    iss: "http://127.0.0.1:54321/auth/v1",
    aud: "authenticated",
    sub: userId,
    email: opts.email ?? "",
    phone: "",
    role: opts.role ?? "authenticated",
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
    .sign(new TextEncoder().encode(secret));
}
