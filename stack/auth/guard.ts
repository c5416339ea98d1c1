/**
 * GoTrue's requireAuthentication and requireAdmin: a bearer token (401
 * `no_authorization` without one) that verifies (403 `bad_jwt`), names an
 * existing user (`sub`) and, when it carries a `session_id`, an existing
 * session (403 `session_not_found`); the admin API wants a token whose role
 * is an admin role (403 `not_admin`), whoever its subject.
 */
import type { IncomingMessage } from "node:http";
import type { JWTPayload } from "jose";
import type { AuthContext } from "./context.ts";
import { ERR } from "./errors.ts";
import { bearerOf } from "./http.ts";
import { verifyAccessToken } from "./tokens.ts";
import { findUserById, type UserRow } from "./users.ts";

export type Authenticated = { claims: JWTPayload; user: UserRow; sessionId: string | null };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const NIL_UUID = "00000000-0000-0000-0000-000000000000";

export async function requireUser(ctx: AuthContext, req: IncomingMessage): Promise<Authenticated> {
  const claims = await verifyAccessToken(ctx.config, bearerOf(req));
  if (typeof claims.sub !== "string" || claims.sub === "") throw ERR.missingSub();
  if (!UUID.test(claims.sub)) throw ERR.validation("invalid claim: sub claim must be a UUID");
  const client = await ctx.db.pool.connect();
  try {
    const user = await findUserById(client, claims.sub);
    if (!user) throw ERR.userFromJwtMissing();
    const sid = typeof claims.session_id === "string" && claims.session_id !== NIL_UUID ? claims.session_id : null;
    if (sid) {
      if (!UUID.test(sid)) throw ERR.badJwt("invalid claim: session_id claim must be a UUID");
      const found = await client.query("select 1 from auth.sessions where id = $1", [sid]);
      if (found.rowCount === 0) throw ERR.sessionFromJwtMissing();
    }
    return { claims, user, sessionId: sid };
  } finally {
    client.release();
  }
}

export async function requireAdmin(ctx: AuthContext, req: IncomingMessage): Promise<JWTPayload> {
  const claims = await verifyAccessToken(ctx.config, bearerOf(req));
  if (typeof claims.role !== "string" || !ctx.config.adminRoles.includes(claims.role)) throw ERR.notAdmin();
  return claims;
}
