/**
 * Sessions and refresh tokens as GoTrue keeps them (internal/models/
 * sessions.go, refresh_token.go; internal/tokens/service.go): a sign-in
 * creates an `auth.sessions` row, its `mfa_amr_claims` and a first refresh
 * token; each refresh revokes the token presented and issues a child
 * (`parent` = the old token). A revoked token presented again within the
 * reuse interval gets the session's active token back (when it is that
 * token's parent) or a new child; after the interval the whole session's
 * tokens are revoked and the request fails with `refresh_token_already_used`.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type pg from "pg";
import type { AuthConfig } from "./config.ts";
import type { AuthDb } from "./db.ts";
import { AuthApiError, ERR } from "./errors.ts";
import { mintAccessToken, newRefreshToken, type AmrEntry } from "./tokens.ts";
import { findUserById, INSTANCE_ID, userJson, type UserRow } from "./users.ts";

type Db = pg.ClientBase;

/** GoTrue's AccessTokenResponse. */
export type SessionResponse = {
  access_token: string;
  token_type: "bearer";
  expires_in: number;
  expires_at: number;
  refresh_token: string;
  user: Record<string, unknown>;
};

type Client = { userAgent: string | null; ip: string | null };

export function clientOf(req: IncomingMessage): Client {
  const forwarded = req.headers["x-forwarded-for"];
  const first = (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(",")[0]?.trim();
  const ip = first || req.socket.remoteAddress || null;
  return { userAgent: req.headers["user-agent"] ?? null, ip: ip?.replace(/^::ffff:/, "") ?? null };
}

/** Start a session for `user` signed in with `method`: session, AMR claim, first refresh token, last_sign_in_at. */
export async function issueSession(
  db: Db,
  config: AuthConfig,
  o: { user: UserRow; method: string; client: Client },
): Promise<SessionResponse> {
  const sessionId = randomUUID();
  await db.query(
    `insert into auth.sessions (id, user_id, created_at, updated_at, aal, user_agent, ip)
     values ($1, $2, now(), now(), 'aal1', $3, $4::inet)`,
    [sessionId, o.user.id, o.client.userAgent, safeIp(o.client.ip)],
  );
  await db.query(
    `insert into auth.mfa_amr_claims (session_id, created_at, updated_at, authentication_method, id)
     values ($1, now(), now(), $2, $3)`,
    [sessionId, o.method, randomUUID()],
  );
  const token = await insertRefreshToken(db, { userId: o.user.id, sessionId, parent: null });
  await db.query("update auth.users set last_sign_in_at = now(), updated_at = now() where id = $1", [o.user.id]);
  const user = (await findUserById(db, o.user.id))!;
  return await respond(db, config, user, sessionId, token);
}

/** The refresh_token grant, with rotation and reuse detection as GoTrue's RefreshTokenGrant. */
export async function refreshGrant(
  authDb: AuthDb,
  config: AuthConfig,
  o: { refreshToken: string; client: Client },
): Promise<SessionResponse> {
  const reuse = new ReuseRefused();
  try {
    return await authDb.transaction(async (db) => {
      const found = await db.query<TokenRow>(
        `select id, token, user_id, revoked, parent, session_id,
                extract(epoch from (now() - updated_at)) as age_seconds
           from auth.refresh_tokens where token = $1 for update`,
        [o.refreshToken],
      );
      const token = found.rows[0];
      if (!token) throw ERR.refreshTokenNotFound();
      const user = await findUserById(db, token.user_id ?? "");
      if (!user) throw ERR.refreshTokenNotFound();
      if (user.banned_until && user.banned_until.getTime() > Date.now()) throw ERR.userBanned("Invalid Refresh Token: User Banned");
      const session = token.session_id
        ? (await db.query<{ id: string; expired: boolean }>(
          `select id, coalesce(not_after < now(), false) as expired from auth.sessions where id = $1 for update`,
          [token.session_id],
        )).rows[0]
        : undefined;
      if (!session) {
        await db.query("delete from auth.refresh_tokens where id = $1", [token.id]);
        throw new CommitAnyway(ERR.refreshSessionMissing());
      }
      if (session.expired) throw ERR.refreshSessionExpired();

      let issued: string | undefined;
      if (token.revoked) {
        const active = (await db.query<{ token: string; parent: string | null }>(
          `select token, parent from auth.refresh_tokens where session_id = $1 and revoked = false order by id desc limit 1`,
          [session.id],
        )).rows[0];
        if (active && active.parent === token.token) {
          // The client lost the answer to its last refresh: hand back the token it was given.
          issued = active.token;
        } else if (Number(token.age_seconds) > config.refreshTokenReuseInterval) {
          if (config.refreshTokenRotation) {
            await db.query(
              "update auth.refresh_tokens set revoked = true, updated_at = now() where session_id = $1 and revoked = false",
              [session.id],
            );
          }
          throw reuse;
        }
      }
      if (issued === undefined) {
        await db.query("update auth.refresh_tokens set revoked = true, updated_at = now() where id = $1", [token.id]);
        issued = await insertRefreshToken(db, { userId: user.id, sessionId: session.id, parent: token.token });
      }
      await db.query(
        `update auth.sessions set refreshed_at = now() at time zone 'utc', updated_at = now(),
                user_agent = $2, ip = $3::inet where id = $1`,
        [session.id, o.client.userAgent, safeIp(o.client.ip)],
      );
      return await respond(db, config, user, session.id, issued);
    }, (e) => e === reuse || e instanceof CommitAnyway);
  } catch (e) {
    if (e === reuse) throw ERR.refreshTokenAlreadyUsed();
    if (e instanceof CommitAnyway) throw e.error;
    throw e;
  }
}

/** POST /logout: `local` ends this session, `others` every other one, `global` all of the user's. */
export async function logout(db: Db, o: { userId: string; sessionId: string | null; scope: string }): Promise<void> {
  if (!o.sessionId) {
    // A token from before sessions existed: GoTrue's LogoutAllRefreshTokens.
    await db.query("delete from auth.refresh_tokens where user_id = $1", [o.userId]);
  } else if (o.scope === "local") {
    await db.query("delete from auth.sessions where id = $1", [o.sessionId]);
  } else if (o.scope === "others") {
    await db.query("delete from auth.sessions where user_id = $1 and id is distinct from $2", [o.userId, o.sessionId]);
  } else {
    await db.query("delete from auth.sessions where user_id = $1", [o.userId]);
  }
}

/** GoTrue's UpdatePassword: every session but the one changing it (all of them when none) is logged out. */
export async function logoutAllExcept(db: Db, userId: string, keepSessionId: string | null): Promise<void> {
  await db.query("delete from auth.sessions where user_id = $1 and id is distinct from $2", [userId, keepSessionId]);
}

type TokenRow = {
  id: string;
  token: string;
  user_id: string | null;
  revoked: boolean | null;
  parent: string | null;
  session_id: string | null;
  age_seconds: string;
};

class ReuseRefused extends Error {}

class CommitAnyway extends Error {
  constructor(readonly error: AuthApiError) {
    super(error.message);
  }
}

async function insertRefreshToken(db: Db, o: { userId: string; sessionId: string; parent: string | null }): Promise<string> {
  const token = newRefreshToken();
  await db.query(
    `insert into auth.refresh_tokens (instance_id, token, user_id, revoked, created_at, updated_at, parent, session_id)
     values ($1, $2, $3, false, now(), now(), $4, $5)`,
    [INSTANCE_ID, token, o.userId, o.parent, o.sessionId],
  );
  return token;
}

async function respond(db: Db, config: AuthConfig, user: UserRow, sessionId: string, refreshToken: string): Promise<SessionResponse> {
  const amr = (await db.query<AmrEntry>(
    `select authentication_method as method, extract(epoch from updated_at)::bigint::int as timestamp
       from auth.mfa_amr_claims where session_id = $1 order by updated_at desc`,
    [sessionId],
  )).rows;
  const { token, expiresAt } = await mintAccessToken(config, user, { id: sessionId, amr });
  return {
    access_token: token,
    token_type: "bearer",
    expires_in: config.jwtExpiry,
    expires_at: expiresAt,
    refresh_token: refreshToken,
    user: userJson(user),
  };
}

function safeIp(ip: string | null): string | null {
  return ip && /^[0-9a-f:.]+$/i.test(ip) ? ip : null;
}
