/**
 * Who is calling: the verified JWT of `Authorization: Bearer <jwt>` (falling
 * back to the `apikey` header), as real Storage's jwt plugin reads it. The
 * role claim becomes the database role every query runs as.
 */
import type { IncomingMessage } from "node:http";
import type { JWTPayload } from "jose";
import { ERRORS } from "./errors.ts";
import { verifyJwt } from "./tokens.ts";

export type Caller = {
  /** Database role to `set local role` to (the JWT's `role` claim). */
  role: string;
  claims: JWTPayload;
  /** The raw token, exposed to SQL as `request.jwt`. */
  jwt: string;
  /** The `sub` claim: becomes `owner_id` of what the caller uploads. */
  sub: string | undefined;
  /** False when the route tolerated a missing or invalid token. */
  authenticated: boolean;
};

/** What the Storage API itself runs as when it bypasses RLS (its "super user": the service key). */
export const SERVICE_CALLER: Caller = {
  role: "service_role",
  claims: { role: "service_role" },
  jwt: "",
  sub: undefined,
  authenticated: true,
};

const ANONYMOUS: Caller = { role: "anon", claims: { role: "anon" }, jwt: "", sub: undefined, authenticated: false };

const BEARER = /^Bearer\s+/i;

/**
 * Verify the caller's token. Routes that serve public buckets pass
 * `allowInvalid`: a missing or bad token then yields an unauthenticated anon
 * caller instead of the real service's AccessDenied error.
 */
export async function authenticate(
  req: IncomingMessage,
  secret: string,
  opts: { allowInvalid?: boolean } = {},
): Promise<Caller> {
  const authorization = header(req, "authorization");
  const token = authorization ? authorization.replace(BEARER, "") : (header(req, "apikey") ?? "");
  if (!token && opts.allowInvalid) return ANONYMOUS;
  let claims: JWTPayload;
  try {
    claims = await verifyJwt(secret, token);
  } catch (e) {
    if (opts.allowInvalid) return ANONYMOUS;
    throw ERRORS.accessDenied((e as Error).message, e);
  }
  // Signed, but with claims of the wrong type: refuse before they reach SQL settings.
  if ((claims.role !== undefined && typeof claims.role !== "string") || (claims.sub !== undefined && typeof claims.sub !== "string")) {
    if (opts.allowInvalid) return ANONYMOUS;
    throw ERRORS.invalidJwt("jwt claims invalid: role and sub must be strings");
  }
  const role = typeof claims.role === "string" && claims.role ? claims.role : "anon";
  return { role, claims, jwt: token, sub: typeof claims.sub === "string" ? claims.sub : undefined, authenticated: true };
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}
