/**
 * `auth.users` and `auth.identities` as GoTrue reads and writes them
 * (internal/models/user.go, identity.go), and the user object its endpoints
 * return. Passwords are bcrypt hashes made by pgcrypto (`$2a$`, cost 10, as
 * Go's bcrypt.DefaultCost writes them); they never leave SQL.
 */
import { randomUUID } from "node:crypto";
import type pg from "pg";
import { ERR } from "./errors.ts";

type Db = pg.ClientBase;

export type UserRow = {
  id: string;
  aud: string | null;
  role: string | null;
  email: string | null;
  phone: string | null;
  email_confirmed_at: Date | null;
  phone_confirmed_at: Date | null;
  confirmed_at: Date | null;
  confirmation_sent_at: Date | null;
  invited_at: Date | null;
  recovery_sent_at: Date | null;
  email_change: string | null;
  email_change_sent_at: Date | null;
  last_sign_in_at: Date | null;
  raw_app_meta_data: Record<string, unknown> | null;
  raw_user_meta_data: Record<string, unknown> | null;
  banned_until: Date | null;
  created_at: Date | null;
  updated_at: Date | null;
  deleted_at: Date | null;
  is_anonymous: boolean;
  has_password: boolean;
  identities: IdentityRow[];
};

type IdentityRow = {
  id: string;
  provider_id: string;
  user_id: string;
  identity_data: Record<string, unknown>;
  provider: string;
  last_sign_in_at: string | null;
  created_at: string | null;
  updated_at: string | null;
  email: string | null;
};

export const INSTANCE_ID = "00000000-0000-0000-0000-000000000000";

const USER_SELECT = `
  select u.id, u.aud, u.role, u.email, u.phone, u.email_confirmed_at, u.phone_confirmed_at, u.confirmed_at,
         u.confirmation_sent_at, u.invited_at, u.recovery_sent_at, u.email_change, u.email_change_sent_at,
         u.last_sign_in_at, u.raw_app_meta_data, u.raw_user_meta_data, u.banned_until, u.created_at,
         u.updated_at, u.deleted_at, u.is_anonymous,
         coalesce(u.encrypted_password, '') <> '' as has_password,
         coalesce((select json_agg(i order by i.created_at) from auth.identities i where i.user_id = u.id), '[]') as identities
    from auth.users u`;

const iso = (d: Date | string | null | undefined) => (d ? new Date(d).toISOString() : undefined);

/** The user object GoTrue's endpoints return (`omitempty` fields left out when empty). */
export function userJson(u: UserRow): Record<string, unknown> {
  const out: Record<string, unknown> = {
    id: u.id,
    aud: u.aud ?? "",
    role: u.role ?? "",
    email: u.email ?? "",
    email_confirmed_at: iso(u.email_confirmed_at),
    invited_at: iso(u.invited_at),
    phone: u.phone ?? "",
    phone_confirmed_at: iso(u.phone_confirmed_at),
    confirmation_sent_at: iso(u.confirmation_sent_at),
    confirmed_at: iso(u.confirmed_at),
    recovery_sent_at: iso(u.recovery_sent_at),
    new_email: u.email_change || undefined,
    email_change_sent_at: iso(u.email_change_sent_at),
    last_sign_in_at: iso(u.last_sign_in_at),
    app_metadata: u.raw_app_meta_data ?? {},
    user_metadata: u.raw_user_meta_data ?? {},
    identities: u.identities.map((i) => ({
      identity_id: i.id,
      id: i.provider_id,
      user_id: i.user_id,
      identity_data: i.identity_data,
      provider: i.provider,
      last_sign_in_at: iso(i.last_sign_in_at),
      created_at: iso(i.created_at),
      updated_at: iso(i.updated_at),
      email: i.email ?? undefined,
    })),
    banned_until: iso(u.banned_until),
    created_at: iso(u.created_at),
    updated_at: iso(u.updated_at),
    deleted_at: iso(u.deleted_at),
    is_anonymous: u.is_anonymous,
  };
  for (const k of Object.keys(out)) if (out[k] === undefined) delete out[k];
  return out;
}

export async function findUserById(db: Db, id: string, opts: { forUpdate?: boolean } = {}): Promise<UserRow | null> {
  const lock = opts.forUpdate ? " for update of u" : "";
  const r = await db.query<UserRow>(`${USER_SELECT} where u.id = $1${lock}`, [id]);
  return r.rows[0] ?? null;
}

/** GoTrue's FindUserByEmailAndAudience: case-insensitive, SSO users excluded. */
export async function findUserByEmail(db: Db, email: string, aud = "authenticated"): Promise<UserRow | null> {
  const r = await db.query<UserRow>(
    `${USER_SELECT} where u.instance_id = $3 and lower(u.email) = lower($1) and u.aud = $2 and u.is_sso_user = false`,
    [email, aud, INSTANCE_ID],
  );
  return r.rows[0] ?? null;
}

/** Whether `password` matches the user's bcrypt hash (false for a user without a password). */
export async function passwordMatches(db: Db, userId: string, password: string): Promise<boolean> {
  const r = await db.query<{ ok: boolean }>(
    `select coalesce(encrypted_password, '') like '$2%' and encrypted_password = extensions.crypt($2, encrypted_password) as ok
       from auth.users where id = $1`,
    [userId, password],
  );
  return r.rows[0]?.ok === true;
}

export type NewUser = {
  email: string;
  password?: string;
  userMetadata?: Record<string, unknown>;
  appMetadata?: Record<string, unknown>;
  role?: string;
  emailConfirmed: boolean;
};

/**
 * Insert a user and its email identity as GoTrue's signup and admin create
 * do: app_metadata `{ provider: "email", providers: ["email"] }` merged with
 * what the admin gave, identity_data `{ sub, email, email_verified, phone_verified }`.
 */
export async function insertEmailUser(db: Db, u: NewUser): Promise<UserRow> {
  const id = randomUUID();
  const app = { ...(u.appMetadata ?? {}), provider: "email", providers: ["email"] };
  try {
    await db.query(
      `insert into auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
         confirmation_token, recovery_token, email_change_token_new, email_change, raw_app_meta_data,
         raw_user_meta_data, is_super_admin, created_at, updated_at, is_sso_user, is_anonymous)
       values ($1, $2, 'authenticated', $3, $4,
         case when $5::text is null then '' else extensions.crypt($5, extensions.gen_salt('bf', 10)) end,
         case when $6 then now() end, '', '', '', '', $7, $8, null, now(), now(), false, false)`,
      [INSTANCE_ID, id, u.role ?? "authenticated", u.email, u.password ?? null, u.emailConfirmed,
        JSON.stringify(app), JSON.stringify(u.userMetadata ?? {})],
    );
  } catch (e) {
    if ((e as { code?: string }).code === "23505") throw ERR.emailExists();
    throw e;
  }
  await db.query(
    `insert into auth.identities (provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at)
     values ($1, $2, $3, 'email', now(), now(), now())`,
    [id, id, JSON.stringify({ sub: id, email: u.email, email_verified: false, phone_verified: false })],
  );
  return (await findUserById(db, id))!;
}

/** GoTrue's UpdateUserMetaData / UpdateAppMetaData: merge, a null value removes its key. */
export function mergeMetadata(
  current: Record<string, unknown> | null,
  patch: Record<string, unknown>,
): Record<string, unknown> {
  const out = { ...(current ?? {}) };
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = v;
  }
  return out;
}

export async function setPassword(db: Db, userId: string, password: string): Promise<void> {
  await db.query(
    `update auth.users set encrypted_password = extensions.crypt($2, extensions.gen_salt('bf', 10)), updated_at = now()
      where id = $1`,
    [userId, password],
  );
}

export async function setEmail(db: Db, userId: string, email: string): Promise<void> {
  try {
    await db.query(
      `update auth.users set email = $2, email_change = '', email_change_token_new = '', updated_at = now() where id = $1`,
      [userId, email],
    );
  } catch (e) {
    if ((e as { code?: string }).code === "23505") throw ERR.emailExists();
    throw e;
  }
  await db.query(
    `update auth.identities set identity_data = identity_data || jsonb_build_object('email', $2::text), updated_at = now()
      where user_id = $1 and provider = 'email'`,
    [userId, email],
  );
}
