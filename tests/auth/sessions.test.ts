import { describe, expect, it } from "vitest";
import { verifyToken } from "../../stack/jwt.ts";
import { testStack } from "../helpers/stack.ts";
import { anonAuth, claimsOf, newEmail, newPassword, sql } from "./support.ts";

/** Pretend `seconds` have passed since these refresh tokens were last touched (instead of sleeping). */
async function age(tokens: string[], seconds: number): Promise<void> {
  await sql("update auth.refresh_tokens set updated_at = updated_at - make_interval(secs => $2) where token = any($1)", [
    tokens, seconds,
  ]);
}

async function signedIn(prefix: string) {
  const email = newEmail(prefix);
  const password = newPassword();
  const auth = anonAuth();
  const { data, error } = await auth.signUp({ email, password, options: { data: { display_name: "Ada" } } });
  expect(error).toBeNull();
  return { auth, email, password, session: data.session!, user: data.user! };
}

describe("sign-up and sign-in through supabase.auth", () => {
  it("signUp() returns a session whose access token carries GoTrue's claims, signed with the stack secret", async () => {
    const { session, user, email } = await signedIn("signup");
    expect(session).toMatchObject({ token_type: "bearer", expires_in: 3600 });
    expect(session.refresh_token).toMatch(/^[a-z0-9]{12}$/);
    expect(user).toMatchObject({
      email, aud: "authenticated", role: "authenticated", is_anonymous: false,
      app_metadata: { provider: "email", providers: ["email"] }, user_metadata: { display_name: "Ada" },
    });
    expect(user.email_confirmed_at).toBeTruthy();
    expect(user.identities?.[0]).toMatchObject({ provider: "email", user_id: user.id, id: user.id });

    const claims = await verifyToken(testStack().JWT_SECRET, session.access_token);
    expect(claims).toMatchObject({
      iss: `${testStack().API_URL}/auth/v1`, aud: "authenticated", sub: user.id, email, phone: "",
      role: "authenticated", aal: "aal1", is_anonymous: false,
      app_metadata: { provider: "email", providers: ["email"] }, user_metadata: { display_name: "Ada" },
    });
    expect(claims.exp! - claims.iat!).toBe(3600);
    expect(claims.amr).toEqual([{ method: "password", timestamp: expect.any(Number) }]);
    const [row] = await sql<{ user_id: string }>("select user_id from auth.sessions where id = $1", [claims.session_id]);
    expect(row?.user_id).toBe(user.id);
  });

  it("stores users as GoTrue does: a $2a$ bcrypt hash, an email identity, the session's first refresh token", async () => {
    const { user, session, password } = await signedIn("rows");
    const [u] = await sql<{ encrypted_password: string; instance_id: string; aud: string }>(
      "select encrypted_password, instance_id::text, aud from auth.users where id = $1", [user.id],
    );
    expect(u!.encrypted_password).toMatch(/^\$2a\$10\$/);
    expect(u!.encrypted_password).not.toContain(password);
    expect(u!.instance_id).toBe("00000000-0000-0000-0000-000000000000");
    const ids = await sql("select provider, provider_id, email from auth.identities where user_id = $1", [user.id]);
    expect(ids).toEqual([{ provider: "email", provider_id: user.id, email: user.email }]);
    const tokens = await sql("select user_id, revoked, parent from auth.refresh_tokens where token = $1", [session.refresh_token]);
    expect(tokens).toEqual([{ user_id: user.id, revoked: false, parent: null }]);
  });

  it("refuses a second sign-up with the same email (422 user_already_exists) and a short password (422 weak_password)", async () => {
    const { email } = await signedIn("dup");
    const again = await anonAuth().signUp({ email: email.toUpperCase(), password: newPassword() });
    expect(again.error).toMatchObject({ status: 422, code: "user_already_exists" });
    const weakEmail = newEmail("weak");
    const weak = await anonAuth().signUp({ email: weakEmail, password: "12345" });
    expect(weak.error).toMatchObject({ status: 422, code: "weak_password", reasons: ["length"] });
    expect(await sql("select 1 from auth.users where email = $1", [weakEmail])).toEqual([]);
  });

  it("signInWithPassword() opens a new session; a wrong password or unknown email is 400 invalid_credentials", async () => {
    const { email, password, session } = await signedIn("signin");
    const ok = await anonAuth().signInWithPassword({ email, password });
    expect(ok.error).toBeNull();
    expect(claimsOf(ok.data.session!.access_token).session_id).not.toBe(claimsOf(session.access_token).session_id);
    for (const attempt of [{ email, password: `${password}x` }, { email: newEmail("nobody"), password }]) {
      const bad = await anonAuth().signInWithPassword(attempt);
      expect(bad.error).toMatchObject({ status: 400, code: "invalid_credentials", message: "Invalid login credentials" });
    }
  });
});

describe("refresh tokens", () => {
  it("refreshSession() rotates: the old token is revoked and becomes the new one's parent", async () => {
    const { auth, session } = await signedIn("rotate");
    const { data, error } = await auth.refreshSession({ refresh_token: session.refresh_token });
    expect(error).toBeNull();
    const next = data.session!;
    expect(next.refresh_token).not.toBe(session.refresh_token);
    expect(claimsOf(next.access_token).session_id).toBe(claimsOf(session.access_token).session_id);
    const rows = await sql<{ token: string; revoked: boolean; parent: string | null }>(
      "select token, revoked, parent from auth.refresh_tokens where token = any($1) order by id",
      [[session.refresh_token, next.refresh_token]],
    );
    expect(rows).toEqual([
      { token: session.refresh_token, revoked: true, parent: null },
      { token: next.refresh_token, revoked: false, parent: session.refresh_token },
    ]);
  });

  it("hands back the active token when its parent is presented again (a client that lost the answer)", async () => {
    const { auth, session } = await signedIn("lost");
    const first = await auth.refreshSession({ refresh_token: session.refresh_token });
    const again = await anonAuth().refreshSession({ refresh_token: session.refresh_token });
    expect(again.error).toBeNull();
    expect(again.data.session!.refresh_token).toBe(first.data.session!.refresh_token);
  });

  it("refuses a token reused after the 10 s interval (refresh_token_already_used) and revokes the session's family", async () => {
    const { auth, session } = await signedIn("reuse");
    const b = (await auth.refreshSession({ refresh_token: session.refresh_token })).data.session!;
    const c = (await anonAuth().refreshSession({ refresh_token: b.refresh_token })).data.session!;
    await age([session.refresh_token], 11);
    const reused = await anonAuth().refreshSession({ refresh_token: session.refresh_token });
    expect(reused.error).toMatchObject({ status: 400, code: "refresh_token_already_used" });
    const sessionId = claimsOf(c.access_token).session_id;
    const live = await sql("select token from auth.refresh_tokens where session_id = $1 and not revoked", [sessionId]);
    expect(live).toEqual([]);
    await age([c.refresh_token], 11);
    const stolen = await anonAuth().refreshSession({ refresh_token: c.refresh_token });
    expect(stolen.error).toMatchObject({ status: 400, code: "refresh_token_already_used" });
  });

  it("lets a revoked token be reused within the interval, as GoTrue does (a new child, not the family's end)", async () => {
    const { auth, session } = await signedIn("grace");
    const b = (await auth.refreshSession({ refresh_token: session.refresh_token })).data.session!;
    await anonAuth().refreshSession({ refresh_token: b.refresh_token });
    const within = await anonAuth().refreshSession({ refresh_token: session.refresh_token });
    expect(within.error).toBeNull();
    const [row] = await sql("select parent, revoked from auth.refresh_tokens where token = $1", [within.data.session!.refresh_token]);
    expect(row).toEqual({ parent: session.refresh_token, revoked: false });
  });

  it("answers an unknown refresh token with 400 refresh_token_not_found", async () => {
    const res = await anonAuth().refreshSession({ refresh_token: "notarealtokn" });
    expect(res.error).toMatchObject({ status: 400, code: "refresh_token_not_found" });
  });
});

describe("the signed-in user", () => {
  it("getUser() returns the caller and updateUser() merges metadata (null removes a key)", async () => {
    const { auth, session, user } = await signedIn("meta");
    const got = await auth.getUser(session.access_token);
    expect(got.data.user).toMatchObject({ id: user.id, email: user.email });
    const { data, error } = await auth.updateUser({ data: { display_name: null, plan: "pro" } });
    expect(error).toBeNull();
    expect(data.user!.user_metadata).toEqual({ plan: "pro" });
    const [row] = await sql("select raw_user_meta_data from auth.users where id = $1", [user.id]);
    expect(row).toEqual({ raw_user_meta_data: { plan: "pro" } });
  });

  it("updateUser({ password }) signs in with the new password only, keeps this session and ends the others", async () => {
    const { auth, email, password, session } = await signedIn("password");
    const other = (await anonAuth().signInWithPassword({ email, password })).data.session!;
    const same = await auth.updateUser({ password });
    expect(same.error).toMatchObject({ status: 422, code: "same_password" });
    const next = newPassword();
    expect((await auth.updateUser({ password: next })).error).toBeNull();
    expect((await anonAuth().signInWithPassword({ email, password })).error?.code).toBe("invalid_credentials");
    expect((await anonAuth().signInWithPassword({ email, password: next })).error).toBeNull();
    expect((await anonAuth().getUser(session.access_token)).error).toBeNull();
    expect((await anonAuth().getUser(other.access_token)).error?.name).toBe("AuthSessionMissingError");
  });

  it("signOut({ scope: 'local' }) ends only this session; the default global scope ends all of them", async () => {
    const { auth, email, password, session } = await signedIn("logout");
    const second = anonAuth();
    const s2 = (await second.signInWithPassword({ email, password })).data.session!;
    const third = anonAuth();
    const s3 = (await third.signInWithPassword({ email, password })).data.session!;
    expect((await auth.signOut({ scope: "local" })).error).toBeNull();
    expect((await anonAuth().getUser(session.access_token)).error?.name).toBe("AuthSessionMissingError");
    expect((await anonAuth().getUser(s2.access_token)).error).toBeNull();
    const refreshAfter = await anonAuth().refreshSession({ refresh_token: session.refresh_token });
    expect(refreshAfter.error?.code).toBe("refresh_token_not_found");
    expect((await second.signOut()).error).toBeNull();
    expect((await anonAuth().getUser(s3.access_token)).error?.name).toBe("AuthSessionMissingError");
    const uid = claimsOf(s3.access_token).sub;
    expect(await sql("select id from auth.sessions where user_id = $1", [uid])).toEqual([]);
  });
});
