/**
 * Settings other than the local defaults, on an Auth stand-in of this test's
 * own (same database, its own gateway port): confirmations on, sign-up off,
 * a longer minimum password, and reading supabase/config.toml.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@supabase/supabase-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startApiServer, type ApiServer } from "../../stack/api-server.ts";
import { loadAuthConfig, type AuthConfig } from "../../stack/auth/config.ts";
import { startAuthServer } from "../../stack/auth/server.ts";
import { freePort } from "../../stack/throwaway.ts";
import { testStack } from "../helpers/stack.ts";
import { newEmail, newPassword, sql } from "./support.ts";

class NoWebSocket {
  constructor() {
    throw new Error("Realtime is not used here");
  }
}

describe("Auth settings", () => {
  const started: Array<{ api: ApiServer; close: () => Promise<void> }> = [];
  afterAll(async () => {
    for (const s of started) {
      await s.api.close();
      await s.close();
    }
  });

  async function authWith(overrides: Partial<AuthConfig>) {
    const port = await freePort();
    const apiUrl = `http://127.0.0.1:${port}`;
    const auth = startAuthServer({ dbUrl: testStack().DB_URL, jwtSecret: testStack().JWT_SECRET, apiUrl, overrides });
    const api = await startApiServer(port, { "/auth/v1": auth.handler });
    started.push({ api, close: auth.close });
    return createClient(apiUrl, testStack().ANON_KEY, {
      auth: { persistSession: false, autoRefreshToken: false }, realtime: { transport: NoWebSocket as never },
    }).auth;
  }

  let confirming: Awaited<ReturnType<typeof authWith>>;
  beforeAll(async () => {
    confirming = await authWith({ mailerAutoconfirm: false });
  });

  it("with confirmations on, signUp() returns the user without a session and sign-in says email_not_confirmed", async () => {
    const email = newEmail("confirm");
    const password = newPassword();
    const { data, error } = await confirming.signUp({ email, password });
    expect(error).toBeNull();
    expect(data.session).toBeNull();
    expect(data.user).toMatchObject({ email });
    expect(data.user!.email_confirmed_at).toBeUndefined();
    const [row] = await sql<{ sent: boolean; confirmed: boolean }>(
      "select confirmation_sent_at is not null as sent, email_confirmed_at is not null as confirmed from auth.users where id = $1",
      [data.user!.id],
    );
    expect(row).toEqual({ sent: true, confirmed: false });
    expect((await confirming.signInWithPassword({ email, password })).error).toMatchObject({
      status: 400, code: "email_not_confirmed",
    });
  });

  it("with sign-up disabled, signUp() is 422 signup_disabled and creates nobody", async () => {
    const closed = await authWith({ disableSignup: true });
    const email = newEmail("closed");
    expect((await closed.signUp({ email, password: newPassword() })).error).toMatchObject({ status: 422, code: "signup_disabled" });
    expect(await sql("select 1 from auth.users where email = $1", [email])).toEqual([]);
  });

  it("honours a longer minimum password length in its weak_password message", async () => {
    const strict = await authWith({ passwordMinLength: 12 });
    const weak = await strict.signUp({ email: newEmail("strict"), password: "elevenchars" });
    expect(weak.error).toMatchObject({ status: 422, code: "weak_password", message: "Password should be at least 12 characters." });
  });

  it("reads supabase/config.toml's [auth] settings, with the CLI's defaults for what it leaves out", () => {
    const root = mkdtempSync(join(tmpdir(), "auth-config-"));
    try {
      expect(loadAuthConfig({ apiUrl: "http://x", jwtSecret: "s", root })).toMatchObject({
        jwtExpiry: 3600, mailerAutoconfirm: true, passwordMinLength: 6, refreshTokenReuseInterval: 10, issuer: "http://x/auth/v1",
      });
      mkdirSync(join(root, "supabase"));
      writeFileSync(join(root, "supabase/config.toml"), [
        "[auth]", "jwt_expiry = 600", "minimum_password_length = 10", "refresh_token_reuse_interval = 3",
        "[auth.email]", "enable_confirmations = true",
      ].join("\n"));
      expect(loadAuthConfig({ apiUrl: "http://x", jwtSecret: "s", root })).toMatchObject({
        jwtExpiry: 600, mailerAutoconfirm: false, passwordMinLength: 10, refreshTokenReuseInterval: 3, disableSignup: false,
      });
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
    expect(loadAuthConfig({ apiUrl: "http://y", jwtSecret: "s" })).toMatchObject({
      jwtExpiry: 3600, disableSignup: false, emailSignup: true, mailerAutoconfirm: true,
      refreshTokenRotation: true, refreshTokenReuseInterval: 10, passwordMinLength: 6,
    });
  });
});
