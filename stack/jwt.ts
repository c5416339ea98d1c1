/**
 * The JWTs the stack itself needs: the long-lived anon and service_role API
 * keys `supabase start` prints, and verification of any token signed with the
 * stack's secret (HS256) for the gateway and the stand-ins. User sessions
 * come from the Auth stand-in (stack/auth/), as GoTrue issues them.
 */
import { SignJWT, jwtVerify, type JWTPayload } from "jose";

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

/** Verify an HS256 token as Supabase's gateway does; throws on a bad signature or expiry. */
export async function verifyToken(secret: string, token: string): Promise<JWTPayload> {
  const { payload } = await jwtVerify(token, enc(secret), { algorithms: ["HS256"] });
  return payload;
}

/** A signed-in user as the demo and the tests pass it around: its id, email and session access token. */
export type LocalUser = { id: string; email: string; token: string };
