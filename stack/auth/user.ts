/** GET /user, PUT /user and POST /logout for the signed-in caller (GoTrue's UserGet, UserUpdate, Logout). */
import { sendJson } from "../api-server.ts";
import type { Handler } from "./context.ts";
import { ERR } from "./errors.ts";
import { requireUser } from "./guard.ts";
import { queryOf, readJson } from "./http.ts";
import { logout as endSessions, logoutAllExcept } from "./sessions.ts";
import { findUserById, mergeMetadata, passwordMatches, setEmail, setPassword, userJson } from "./users.ts";
import { optionalObject, optionalString, validateEmail, validatePassword } from "./validate.ts";

export const getUser: Handler = async (ctx, req, res) => {
  const { user } = await requireUser(ctx, req);
  sendJson(res, 200, userJson(user));
};

export const updateUser: Handler = async (ctx, req, res) => {
  const who = await requireUser(ctx, req);
  const body = await readJson(req);
  const password = optionalString(body, "password");
  const email = optionalString(body, "email");
  const phone = optionalString(body, "phone");
  const data = optionalObject(body, "data");
  if (password !== undefined) validatePassword(ctx.config, password);
  const address = email ? validateEmail(email) : undefined;
  if (phone) throw ERR.phoneProviderDisabled("signups");

  const out = await ctx.db.transaction(async (db) => {
    const current = (await findUserById(db, who.user.id, { forUpdate: true }))!;
    if (password !== undefined) {
      if (await passwordMatches(db, current.id, password)) throw ERR.samePassword();
      await setPassword(db, current.id, password);
      await logoutAllExcept(db, current.id, who.sessionId);
    }
    if (data) {
      await db.query("update auth.users set raw_user_meta_data = $2, updated_at = now() where id = $1", [
        current.id, JSON.stringify(mergeMetadata(current.raw_user_meta_data, data)),
      ]);
    }
    if (address && address !== (current.email ?? "").toLowerCase()) {
      if (ctx.config.mailerAutoconfirm) {
        await setEmail(db, current.id, address);
      } else {
        // GoTrue mails a confirmation link; the stand-in only records the pending change.
        await db.query(
          "update auth.users set email_change = $2, email_change_sent_at = now(), updated_at = now() where id = $1",
          [current.id, address],
        );
      }
    }
    return userJson((await findUserById(db, current.id))!);
  });
  sendJson(res, 200, out);
};

const SCOPES = new Set(["global", "local", "others"]);

export const logout: Handler = async (ctx, req, res) => {
  const scope = queryOf(req).get("scope") || "global";
  if (!SCOPES.has(scope)) throw ERR.validation(`Unsupported logout scope "${scope}"`);
  const who = await requireUser(ctx, req);
  await ctx.db.transaction((db) => endSessions(db, { userId: who.user.id, sessionId: who.sessionId, scope }));
  if (!req.readableEnded) req.resume();
  res.writeHead(204).end();
};
