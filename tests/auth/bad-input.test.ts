import { SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { testStack } from "../helpers/stack.ts";
import { mintUserToken } from "../helpers/tokens.ts";
import { anonAuth, gotrue, newEmail, newPassword, sql } from "./support.ts";

const usersNamed = (email: string) => sql("select id from auth.users where lower(email) = lower($1)", [email]);

describe("bad input gets GoTrue's error and writes nothing", () => {
  it("malformed JSON is 400 bad_json, and the error does not quote the body (or the password in it)", async () => {
    const email = newEmail("malformed");
    const password = newPassword();
    for (const rawBody of [`{"email":"${email}","password":"${password}"`, `{"email":"${email}","password":"${password}"}x`]) {
      const res = await gotrue("POST", "/signup", { rawBody, headers: { "content-type": "application/json" } });
      expect(res).toMatchObject({ status: 400, body: { code: "bad_json" } });
      expect(JSON.stringify(res.body)).not.toContain(password);
    }
    expect(await usersNamed(email)).toEqual([]);
  });

  it("a form-encoded body (wrong content type) is not JSON: 400 bad_json", async () => {
    const email = newEmail("form");
    const res = await gotrue("POST", "/token?grant_type=password", {
      rawBody: new URLSearchParams({ email, password: "secret123" }).toString(),
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
    expect(res).toMatchObject({ status: 400, body: { code: "bad_json" } });
  });

  it("a body over 1 MiB is refused with 413 by the gateway's /auth/v1 limit before anything is written", async () => {
    const email = newEmail("huge");
    const res = await gotrue("POST", "/signup", {
      json: { email, password: "secret123", data: { blob: "x".repeat(1024 * 1024 + 1) } },
    });
    expect(res).toMatchObject({ status: 413, body: { error: { code: "LT520" } } });
    expect(await usersNamed(email)).toEqual([]);
  });

  it("fields of the wrong type are 400 bad_json; a malformed email is 400 validation_failed", async () => {
    expect(await gotrue("POST", "/signup", { json: { email: 42, password: "secret123" } })).toMatchObject({
      status: 400, body: { code: "bad_json" },
    });
    expect(await gotrue("POST", "/signup", { json: { email: "not an email", password: "secret123" } })).toMatchObject({
      status: 400, body: { code: "validation_failed" },
    });
  });

  it("SQL in fields is data: stored verbatim or refused as an invalid email, never executed", async () => {
    const injection = "x'); delete from auth.users; --";
    const refused = await gotrue("POST", "/signup", { json: { email: `${injection}@example.test`, password: "secret123" } });
    expect(refused).toMatchObject({ status: 400, body: { code: "validation_failed" } });
    const quoted = `o'neil-${newEmail("sql")}`;
    const { data, error } = await anonAuth().signUp({
      email: quoted, password: newPassword(), options: { data: { bio: injection } },
    });
    expect(error).toBeNull();
    expect(data.user).toMatchObject({ email: quoted, user_metadata: { bio: injection } });
    const login = await anonAuth().signInWithPassword({ email: "' or '1'='1", password: "' or '1'='1" });
    expect(login.error?.code).toBe("invalid_credentials");
    expect((await sql<{ n: string }>("select count(*) as n from auth.users"))[0]!.n).not.toBe("0");
  });

  it("expired, foreign-signed and unsigned tokens are 403 bad_jwt; a token for a missing session is 403 session_not_found", async () => {
    const email = newEmail("tokens");
    const password = newPassword();
    const { user } = (await anonAuth().signUp({ email, password })).data;
    const expired = await mintUserToken(testStack().JWT_SECRET, user!.id, { expiresIn: -60 });
    const foreign = await mintUserToken("another-secret-that-is-at-least-32-characters", user!.id);
    const unsigned = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString("base64url")}.${
      Buffer.from(JSON.stringify({ sub: user!.id, role: "service_role" })).toString("base64url")}.`;
    for (const token of [expired, foreign, unsigned, "not-a-jwt"]) {
      const res = await gotrue("GET", "/user", { token });
      expect(res, token).toMatchObject({ status: 403, body: { code: "bad_jwt" } });
    }
    const sessionless = await mintUserToken(testStack().JWT_SECRET, user!.id);
    expect((await anonAuth().getUser(sessionless)).error?.name).toBe("AuthSessionMissingError");
    const forgedAdmin = await new SignJWT({ role: "service_role" })
      .setProtectedHeader({ alg: "HS256" }).setExpirationTime("1h")
      .sign(new TextEncoder().encode("another-secret-that-is-at-least-32-characters"));
    expect(await gotrue("GET", "/admin/users", { token: forgedAdmin })).toMatchObject({ status: 403, body: { code: "bad_jwt" } });
  });

  it("clients without the API version header get GoTrue's legacy body { code: <status>, error_code, msg }", async () => {
    const res = await gotrue("POST", "/token?grant_type=password", {
      json: { email: newEmail("legacy"), password: "whatever1" }, headers: { "x-supabase-api-version": "" },
    });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ code: 400, error_code: "invalid_credentials", msg: "Invalid login credentials" });
    expect(res.headers.get("x-supabase-api-version")).toBeNull();
    const current = await gotrue("POST", "/token?grant_type=password", { json: { email: newEmail("v2"), password: "whatever1" } });
    expect(current.body).toEqual({ code: "invalid_credentials", message: "Invalid login credentials" });
    expect(current.headers.get("x-supabase-api-version")).toBe("2024-01-01");
  });

  it("a refresh grant without a token is OAuth's invalid_request; an unknown grant type is refused", async () => {
    expect(await gotrue("POST", "/token?grant_type=refresh_token", { json: {} })).toMatchObject({
      status: 400, body: { error: "invalid_request", error_description: "refresh_token required" },
    });
    expect(await gotrue("POST", "/token?grant_type=magic", { json: {} })).toMatchObject({ status: 400 });
  });
});

describe("settings and health", () => {
  it("GET /settings reports the local defaults: email sign-up on, autoconfirm on, phone off", async () => {
    const res = await gotrue("GET", "/settings");
    expect(res).toMatchObject({
      status: 200,
      body: { disable_signup: false, mailer_autoconfirm: true, phone_autoconfirm: false, external: { email: true, phone: false, github: false } },
    });
  });

  it("GET /health names GoTrue", async () => {
    expect(await gotrue("GET", "/health")).toMatchObject({ status: 200, body: { name: "GoTrue" } });
  });
});
