/**
 * The admin API for service-role callers (GoTrue's adminUsers,
 * adminUserCreate, adminUserGet, adminUserUpdate, adminUserDelete):
 * `GET/POST /admin/users`, `GET/PUT/DELETE /admin/users/{id}`.
 */
import type pg from "pg";
import { sendJson } from "../api-server.ts";
import type { Handler } from "./context.ts";
import { ERR } from "./errors.ts";
import { requireAdmin } from "./guard.ts";
import { queryOf, readJson } from "./http.ts";
import { logoutAllExcept } from "./sessions.ts";
import { findUserById, insertEmailUser, mergeMetadata, setEmail, setPassword, userJson, type UserRow } from "./users.ts";
import { optionalBoolean, optionalObject, optionalString, validateEmail, validatePassword } from "./validate.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const listUsers: Handler = async (ctx, req, res) => {
  await requireAdmin(ctx, req);
  const q = queryOf(req);
  const page = positive(q.get("page"), 1);
  const perPage = positive(q.get("per_page"), 50);
  const filter = q.get("filter") ?? "";
  const where = filter ? "and (u.email ilike $2 or u.raw_user_meta_data ->> 'full_name' ilike $2)" : "";
  const args: unknown[] = ["authenticated", ...(filter ? [`%${filter}%`] : [])];
  const client = await ctx.db.pool.connect();
  try {
    const total = Number((await client.query(`select count(*) as n from auth.users u where u.aud = $1 ${where}`, args)).rows[0].n);
    const ids = (await client.query<{ id: string }>(
      `select u.id from auth.users u where u.aud = $1 ${where}
        order by u.created_at desc, u.id limit ${perPage} offset ${(page - 1) * perPage}`,
      args,
    )).rows;
    const users: UserRow[] = [];
    for (const { id } of ids) {
      const u = await findUserById(client, id);
      if (u) users.push(u);
    }
    const last = Math.max(1, Math.ceil(total / perPage));
    const base = `${ctx.config.issuer}/admin/users`;
    const links = [
      ...(page < last ? [`<${base}?page=${page + 1}&per_page=${perPage}>; rel="next"`] : []),
      `<${base}?page=${last}&per_page=${perPage}>; rel="last"`,
    ];
    sendJson(res, 200, { users: users.map(userJson), aud: "authenticated" }, {
      "x-total-count": String(total), link: links.join(", "),
    });
  } finally {
    client.release();
  }
};

export const createUser: Handler = async (ctx, req, res) => {
  await requireAdmin(ctx, req);
  const body = await readJson(req);
  const email = optionalString(body, "email") ?? "";
  const phone = optionalString(body, "phone") ?? "";
  const password = optionalString(body, "password");
  const role = optionalString(body, "role");
  const userMetadata = optionalObject(body, "user_metadata") ?? {};
  const appMetadata = optionalObject(body, "app_metadata") ?? {};
  const emailConfirm = optionalBoolean(body, "email_confirm") ?? false;
  const banUntil = banDuration(optionalString(body, "ban_duration"));
  if (phone !== "") throw ERR.phoneProviderDisabled("signups");
  if (email === "") throw ERR.validation("Cannot create a user without either an email or phone");
  const address = validateEmail(email);
  if (password !== undefined) validatePassword(ctx.config, password);

  const out = await ctx.db.transaction(async (db) => {
    const user = await insertEmailUser(db, {
      email: address, password, userMetadata, appMetadata, role, emailConfirmed: emailConfirm,
    });
    if (banUntil !== undefined) await db.query("update auth.users set banned_until = $2 where id = $1", [user.id, banUntil]);
    return userJson((await findUserById(db, user.id))!);
  });
  sendJson(res, 200, out);
};

export const getUser: Handler = async (ctx, req, res, [id]) => {
  await requireAdmin(ctx, req);
  const client = await ctx.db.pool.connect();
  try {
    sendJson(res, 200, userJson(await loadUser(client, id!)));
  } finally {
    client.release();
  }
};

export const updateUser: Handler = async (ctx, req, res, [id]) => {
  await requireAdmin(ctx, req);
  const body = await readJson(req);
  const email = optionalString(body, "email");
  const password = optionalString(body, "password");
  const role = optionalString(body, "role");
  const userMetadata = optionalObject(body, "user_metadata");
  const appMetadata = optionalObject(body, "app_metadata");
  const emailConfirm = optionalBoolean(body, "email_confirm");
  const banUntil = banDuration(optionalString(body, "ban_duration"));
  if (optionalString(body, "phone")) throw ERR.phoneProviderDisabled("signups");
  const address = email ? validateEmail(email) : undefined;
  if (password !== undefined) validatePassword(ctx.config, password);

  const out = await ctx.db.transaction(async (db) => {
    const user = await loadUser(db, id!, { forUpdate: true });
    if (role) await db.query("update auth.users set role = $2, updated_at = now() where id = $1", [user.id, role]);
    if (address && address !== user.email) await setEmail(db, user.id, address);
    if (password !== undefined) {
      await setPassword(db, user.id, password);
      await logoutAllExcept(db, user.id, null);
    }
    if (emailConfirm === true) {
      await db.query("update auth.users set email_confirmed_at = coalesce(email_confirmed_at, now()) where id = $1", [user.id]);
    }
    if (userMetadata) {
      await db.query("update auth.users set raw_user_meta_data = $2, updated_at = now() where id = $1", [
        user.id, JSON.stringify(mergeMetadata(user.raw_user_meta_data, userMetadata)),
      ]);
    }
    if (appMetadata) {
      await db.query("update auth.users set raw_app_meta_data = $2, updated_at = now() where id = $1", [
        user.id, JSON.stringify(mergeMetadata(user.raw_app_meta_data, appMetadata)),
      ]);
    }
    if (banUntil !== undefined) {
      await db.query("update auth.users set banned_until = $2, updated_at = now() where id = $1", [user.id, banUntil]);
    }
    return userJson((await findUserById(db, user.id))!);
  });
  sendJson(res, 200, out);
};

export const deleteUser: Handler = async (ctx, req, res, [id]) => {
  await requireAdmin(ctx, req);
  const body = await readJson(req);
  const soft = optionalBoolean(body, "should_soft_delete") ?? false;
  await ctx.db.transaction(async (db) => {
    const user = await loadUser(db, id!, { forUpdate: true });
    if (!soft) {
      await db.query("delete from auth.users where id = $1", [user.id]);
      return;
    }
    // GoTrue's SoftDeleteUser: the row stays (foreign keys keep pointing at it), identifying data goes.
    await db.query("delete from auth.identities where user_id = $1", [user.id]);
    await db.query("delete from auth.sessions where user_id = $1", [user.id]);
    await db.query(
      `update auth.users set email = encode(extensions.digest(coalesce(email, '') || id::text, 'sha256'), 'hex'),
              phone = null, encrypted_password = '', raw_app_meta_data = '{}', raw_user_meta_data = '{}',
              deleted_at = now(), updated_at = now() where id = $1`,
      [user.id],
    );
  });
  sendJson(res, 200, {});
};

async function loadUser(db: pg.ClientBase, id: string, opts: { forUpdate?: boolean } = {}): Promise<UserRow> {
  if (!UUID.test(id)) throw ERR.validation("user_id must be an UUID", 404);
  const user = await findUserById(db, id, opts);
  if (!user) throw ERR.userNotFound();
  return user;
}

function positive(text: string | null, fallback: number): number {
  if (!text) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw ERR.validation(`Bad Pagination Parameters: "${text}" is not a positive integer`);
  return Math.min(n, 1000);
}

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, "µs": 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `ban_duration` as Go's time.ParseDuration reads it ("24h", "1h30m"); "none" lifts a ban (null). */
function banDuration(text: string | undefined): Date | null | undefined {
  if (text === undefined || text === "") return undefined;
  if (text === "none") return null;
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join("") !== text) {
    throw ERR.validation(`invalid format for ban duration: time: invalid duration "${text}"`);
  }
  const ms = parts.reduce((sum, p) => sum + Number(p[1]) * UNIT_MS[p[2]!]!, 0);
  return new Date(Date.now() + ms);
}

