/**
 * POST /signup and POST /token (grant_type password and refresh_token), as
 * GoTrue's Signup, ResourceOwnerPasswordGrant and RefreshTokenGrant answer
 * them with the local defaults: email sign-up on, confirmations off (so a
 * sign-up returns a session), phone sign-up off.
 */
import type { Handler } from "./context.ts";
import { ERR, OAuthError } from "./errors.ts";
import { queryOf, readJson } from "./http.ts";
import { sendJson } from "../api-server.ts";
import { clientOf, issueSession, refreshGrant } from "./sessions.ts";
import { findUserByEmail, insertEmailUser, passwordMatches, userJson } from "./users.ts";
import { optionalObject, optionalString, validateEmail, validatePassword } from "./validate.ts";

export const signup: Handler = async (ctx, req, res) => {
  const { config } = ctx;
  if (config.disableSignup) throw ERR.signupDisabled();
  const body = await readJson(req);
  const email = optionalString(body, "email") ?? "";
  const phone = optionalString(body, "phone") ?? "";
  const password = optionalString(body, "password") ?? "";
  const data = optionalObject(body, "data") ?? {};
  if (password === "") throw ERR.validation("Signup requires a valid password", 422);
  validatePassword(config, password);
  if (email !== "" && phone !== "") {
    throw ERR.validation("Only an email address or phone number should be provided on signup.", 422);
  }
  if (phone !== "") throw ERR.phoneProviderDisabled("signups");
  if (email === "") throw ERR.validation("To signup, please provide your email");
  if (!config.emailSignup) throw ERR.emailProviderDisabled("signups");
  const address = validateEmail(email);

  const out = await ctx.db.transaction(async (db) => {
    if (await findUserByEmail(db, address)) throw ERR.userAlreadyExists();
    let user;
    try {
      user = await insertEmailUser(db, {
        email: address, password, userMetadata: data, emailConfirmed: config.mailerAutoconfirm,
      });
    } catch (e) {
      // A concurrent sign-up took the address between the check and the insert.
      if ((e as { errorCode?: string }).errorCode === "email_exists") throw ERR.userAlreadyExists();
      throw e;
    }
    if (!config.mailerAutoconfirm) {
      // GoTrue would send the confirmation mail now; the stand-in sends no mail (docs/standins/auth.md).
      await db.query("update auth.users set confirmation_sent_at = now() where id = $1", [user.id]);
      return userJson({ ...user, confirmation_sent_at: new Date() });
    }
    return await issueSession(db, config, { user, method: "password", client: clientOf(req) });
  });
  sendJson(res, 200, out);
};

export const token: Handler = async (ctx, req, res) => {
  const grant = queryOf(req).get("grant_type");
  const body = await readJson(req);
  if (grant === "password") return sendJson(res, 200, await passwordGrant(ctx, req, body));
  if (grant === "refresh_token") {
    const refreshToken = optionalString(body, "refresh_token") ?? "";
    if (refreshToken === "") throw new OAuthError("invalid_request", "refresh_token required");
    return sendJson(res, 200, await refreshGrant(ctx.db, ctx.config, { refreshToken, client: clientOf(req) }));
  }
  throw ERR.unsupportedGrant();
};

async function passwordGrant(ctx: Parameters<Handler>[0], req: Parameters<Handler>[1], body: Record<string, unknown>) {
  const email = optionalString(body, "email") ?? "";
  const phone = optionalString(body, "phone") ?? "";
  const password = optionalString(body, "password") ?? "";
  if (email !== "" && phone !== "") {
    throw ERR.validation("Only an email address or phone number should be provided on login.");
  }
  if (phone !== "") throw ERR.phoneProviderDisabled("logins");
  if (email === "") throw ERR.validation("missing email or phone");
  if (!ctx.config.emailSignup) throw ERR.emailProviderDisabled("logins");
  return await ctx.db.transaction(async (db) => {
    const user = await findUserByEmail(db, email);
    if (!user) throw ERR.invalidCredentials();
    if (user.banned_until && user.banned_until.getTime() > Date.now()) throw ERR.userBanned();
    if (!(await passwordMatches(db, user.id, password))) throw ERR.invalidCredentials();
    if (!user.email_confirmed_at) throw ERR.emailNotConfirmed();
    return await issueSession(db, ctx.config, { user, method: "password", client: clientOf(req) });
  });
}
