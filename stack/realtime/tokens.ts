/**
 * Access token checks with the reasons Supabase Realtime gives
 * (RealtimeWeb.ChannelsAuthorization): the signature with the project's JWT
 * secret, then `role` and `exp` required, then expiry.
 */
import { compactVerify, decodeJwt } from "jose";

export type Claims = Record<string, unknown> & { role: string; exp: number; sub?: string };

/** `code` and `message` as Realtime logs them; a join error reply says `${code}: ${message}`. */
export type TokenCheck = { ok: true; claims: Claims } | { ok: false; code: string; message: string };

/** Verify `token`; on failure the code and message Realtime replies with. */
export async function checkToken(secret: string, token: unknown, now = Date.now()): Promise<TokenCheck> {
  const malformed = { ok: false, code: "MalformedJWT", message: "The token provided is not a valid JWT" } as const;
  if (typeof token !== "string") return malformed;
  const cleaned = decodeURIComponent(token).replace(/\s/g, "");
  let claims: Record<string, unknown>;
  try {
    claims = decodeJwt(cleaned);
  } catch {
    return malformed;
  }
  try {
    await compactVerify(cleaned, new TextEncoder().encode(secret), { algorithms: ["HS256", "HS384", "HS512"] });
  } catch {
    return { ok: false, code: "JwtSignatureError", message: "Failed to validate JWT signature" };
  }
  if (typeof claims.role !== "string" || typeof claims.exp !== "number") {
    return { ok: false, code: "InvalidJWTToken", message: "Fields `role` and `exp` are required in JWT" };
  }
  const nowSec = Math.floor(now / 1000);
  if (claims.exp <= nowSec) {
    return { ok: false, code: "InvalidJWTToken", message: `Token has expired ${nowSec - claims.exp} seconds ago` };
  }
  return { ok: true, claims: claims as Claims };
}
