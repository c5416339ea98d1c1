/**
 * GoTrue's tokens: HS256 access tokens signed with the project's JWT secret
 * and carrying GoTrue's AccessTokenClaims, and opaque refresh tokens (random
 * 12-character strings stored in auth.refresh_tokens).
 */
import { randomInt } from "node:crypto";
import { errors as joseErrors, jwtVerify, SignJWT, type JWTPayload } from "jose";
import type { AuthConfig } from "./config.ts";
import { ERR } from "./errors.ts";
import type { UserRow } from "./users.ts";

export type AmrEntry = { method: string; timestamp: number };

const enc = (s: string) => new TextEncoder().encode(s);

/** A signed access token for `user` in session `sessionId`; `exp` is `iat + jwt_expiry`. */
export async function mintAccessToken(
  config: AuthConfig,
  user: UserRow,
  session: { id: string; amr: AmrEntry[] },
): Promise<{ token: string; expiresAt: number }> {
  const iat = Math.floor(Date.now() / 1000);
  const exp = iat + config.jwtExpiry;
  const token = await new SignJWT({
    iss: config.issuer,
    sub: user.id,
    aud: user.aud ?? "",
    exp,
    iat,
    email: user.email ?? "",
    phone: user.phone ?? "",
    app_metadata: user.raw_app_meta_data ?? {},
    user_metadata: user.raw_user_meta_data ?? {},
    role: user.role ?? "",
    aal: "aal1",
    amr: session.amr,
    session_id: session.id,
    is_anonymous: user.is_anonymous,
  })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .sign(enc(config.jwtSecret));
  return { token, expiresAt: exp };
}

/** Verify a bearer token as GoTrue's parseJWTClaims does (HS256 only), or its 403 `bad_jwt`. */
export async function verifyAccessToken(config: AuthConfig, token: string): Promise<JWTPayload> {
  try {
    const { payload } = await jwtVerify(token, enc(config.jwtSecret), { algorithms: ["HS256"] });
    return payload;
  } catch (e) {
    throw ERR.badJwt(golangJwtMessage(e));
  }
}

// golang-jwt/v5's wording, which GoTrue puts after "unable to parse or verify signature, ".
function golangJwtMessage(e: unknown): string {
  if (e instanceof joseErrors.JWTExpired) return "token has invalid claims: token is expired";
  if (e instanceof joseErrors.JWSSignatureVerificationFailed) return "token signature is invalid: signature is invalid";
  if (e instanceof joseErrors.JOSEAlgNotAllowed) return "token is unverifiable: error while executing keyfunc: signing method is invalid";
  if (e instanceof joseErrors.JWTClaimValidationFailed) return `token has invalid claims: ${e.message}`;
  return "token is malformed: could not parse the token";
}

const ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";

/** A fresh opaque refresh token. */
export function newRefreshToken(): string {
  let out = "";
  for (let i = 0; i < 12; i++) out += ALPHABET[randomInt(ALPHABET.length)];
  return out;
}
