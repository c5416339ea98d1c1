/**
 * Auth settings as `supabase start` hands them to GoTrue: read from the
 * `[auth]` and `[auth.email]` tables of supabase/config.toml (jwt_expiry,
 * enable_signup, minimum_password_length, refresh-token rotation and reuse
 * interval, enable_confirmations), with the CLI's defaults for anything absent.
 */
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parse } from "smol-toml";
import { z } from "zod";
import { PROJECT_ROOT } from "../config.ts";

export type AuthConfig = {
  /** `iss` of access tokens: the API URL with `/auth/v1`, as the CLI sets GOTRUE_JWT_ISSUER. */
  issuer: string;
  jwtSecret: string;
  jwtExpiry: number;
  disableSignup: boolean;
  emailSignup: boolean;
  /** `enable_confirmations = false` means GoTrue's MAILER_AUTOCONFIRM is on. */
  mailerAutoconfirm: boolean;
  passwordMinLength: number;
  refreshTokenRotation: boolean;
  refreshTokenReuseInterval: number;
  /** Roles whose tokens may call `/admin/*` (GOTRUE_JWT_ADMIN_ROLES). */
  adminRoles: string[];
  siteUrl: string;
};

const AuthToml = z.object({
  site_url: z.string().default("http://127.0.0.1:3000"),
  jwt_expiry: z.number().int().min(1).max(604800).default(3600),
  enable_signup: z.boolean().default(true),
  minimum_password_length: z.number().int().min(6).default(6),
  enable_refresh_token_rotation: z.boolean().default(true),
  refresh_token_reuse_interval: z.number().int().min(0).default(10),
  email: z.object({
    enable_signup: z.boolean().default(true),
    enable_confirmations: z.boolean().default(false),
  }).partial().default({}),
}).partial();

/** The settings for an Auth stand-in serving at `${apiUrl}/auth/v1`. */
export function loadAuthConfig(o: { apiUrl: string; jwtSecret: string; root?: string }): AuthConfig {
  const path = resolve(o.root ?? PROJECT_ROOT, "supabase/config.toml");
  const raw = existsSync(path) ? (parse(readFileSync(path, "utf8")) as { auth?: unknown }).auth ?? {} : {};
  const parsed = AuthToml.safeParse(raw);
  if (!parsed.success) {
    throw new Error(`supabase/config.toml [auth]: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  }
  const a = parsed.data;
  return {
    issuer: `${o.apiUrl}/auth/v1`,
    jwtSecret: o.jwtSecret,
    jwtExpiry: a.jwt_expiry ?? 3600,
    disableSignup: !(a.enable_signup ?? true),
    emailSignup: a.email?.enable_signup ?? true,
    mailerAutoconfirm: !(a.email?.enable_confirmations ?? false),
    passwordMinLength: a.minimum_password_length ?? 6,
    refreshTokenRotation: a.enable_refresh_token_rotation ?? true,
    refreshTokenReuseInterval: a.refresh_token_reuse_interval ?? 10,
    adminRoles: ["service_role", "supabase_admin"],
    siteUrl: a.site_url ?? "http://127.0.0.1:3000",
  };
}
