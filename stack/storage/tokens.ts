/**
 * JWT handling for the Storage stand-in: verifying callers' tokens and
 * signing/verifying signed-URL tokens. Real Storage signs URLs with the
 * project's JWT secret (HS256) and a payload of `{ url: "<bucket>/<name>" }`
 * (plus `owner` and `upsert` for uploads), and verifies them with
 * jsonwebtoken, whose messages ("jwt expired", "invalid signature") end up in
 * error bodies; the stand-in reproduces those messages.
 */
import { errors as joseErrors, SignJWT, type JWTPayload } from "jose";
import { verifyToken } from "../jwt.ts";

/** Verify an HS256 token with the stack secret; throws an Error with jsonwebtoken's message. */
export async function verifyJwt(secret: string, token: string): Promise<JWTPayload> {
  if (!token) throw new Error("jwt must be provided");
  try {
    return await verifyToken(secret, token);
  } catch (e) {
    throw new Error(jsonwebtokenMessage(e), { cause: e });
  }
}

function jsonwebtokenMessage(e: unknown): string {
  if (e instanceof joseErrors.JWTExpired) return "jwt expired";
  if (e instanceof joseErrors.JWSSignatureVerificationFailed) return "invalid signature";
  if (e instanceof joseErrors.JOSEAlgNotAllowed) return "invalid algorithm";
  if (e instanceof joseErrors.JWTClaimValidationFailed) return `jwt ${e.claim} invalid`;
  return "jwt malformed";
}

/** A signed-URL token for `url` (bucket/name), valid for `expiresIn` seconds. */
export async function signUrlToken(
  secret: string,
  claims: { url: string; owner?: string; upsert?: boolean },
  expiresIn: number,
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return await new SignJWT({ ...claims })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuedAt(now)
    .setExpirationTime(now + expiresIn)
    .sign(new TextEncoder().encode(secret));
}

export type SignedUrlClaims = JWTPayload & { url?: unknown; owner?: unknown; upsert?: unknown };
