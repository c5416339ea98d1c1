import { describe, expect, it } from "vitest";
import { testStack } from "../helpers/stack.ts";
import { supabaseClient } from "../helpers/supabase.ts";
import { adminAuth, anonAuth, gotrue, newEmail, newPassword, sql } from "./support.ts";

describe("the admin API (service role)", () => {
  it("createUser() makes a confirmed user who can sign in; an unconfirmed one gets 400 email_not_confirmed", async () => {
    const email = newEmail("admin");
    const password = newPassword();
    const created = await adminAuth().createUser({
      email, password, email_confirm: true, user_metadata: { team: "ml" }, app_metadata: { plan: "pro" },
    });
    expect(created.error).toBeNull();
    expect(created.data.user).toMatchObject({
      email, user_metadata: { team: "ml" }, app_metadata: { plan: "pro", provider: "email", providers: ["email"] },
    });
    expect((await anonAuth().signInWithPassword({ email, password })).error).toBeNull();

    const pending = newEmail("pending");
    expect((await adminAuth().createUser({ email: pending, password })).error).toBeNull();
    const refused = await anonAuth().signInWithPassword({ email: pending, password });
    expect(refused.error).toMatchObject({ status: 400, code: "email_not_confirmed" });
  });

  it("createUser() refuses a taken email (422 email_exists) and a weak password (422 weak_password)", async () => {
    const email = newEmail("taken");
    await adminAuth().createUser({ email, password: newPassword(), email_confirm: true });
    expect((await adminAuth().createUser({ email, password: newPassword() })).error).toMatchObject({
      status: 422, code: "email_exists",
    });
    const weak = newEmail("weakadmin");
    expect((await adminAuth().createUser({ email: weak, password: "abc" })).error).toMatchObject({
      status: 422, code: "weak_password",
    });
    expect(await sql("select 1 from auth.users where email = $1", [weak])).toEqual([]);
  });

  it("listUsers() pages newest first with X-Total-Count and Link headers that supabase-js reads", async () => {
    for (let i = 0; i < 3; i++) await adminAuth().createUser({ email: newEmail("page"), password: newPassword() });
    const { data, error } = await adminAuth().listUsers({ page: 1, perPage: 2 });
    expect(error).toBeNull();
    expect(data.users).toHaveLength(2);
    expect("total" in data && data.total).toBeGreaterThanOrEqual(3);
    expect("nextPage" in data && data.nextPage).toBe(2);
    expect(new Date(data.users[0]!.created_at) >= new Date(data.users[1]!.created_at)).toBe(true);

    const raw = await gotrue("GET", "/admin/users?page=2&per_page=1", { token: testStack().SERVICE_ROLE_KEY });
    const total = Number(raw.headers.get("x-total-count"));
    expect(raw.body).toMatchObject({ aud: "authenticated", users: [expect.objectContaining({ aud: "authenticated" })] });
    expect(raw.headers.get("link")).toBe(
      `<${testStack().API_URL}/auth/v1/admin/users?page=3&per_page=1>; rel="next", ` +
      `<${testStack().API_URL}/auth/v1/admin/users?page=${total}&per_page=1>; rel="last"`,
    );
  });

  it("getUserById(), updateUserById() and deleteUser() act on one user; an unknown id is 404 user_not_found", async () => {
    const email = newEmail("crud");
    const password = newPassword();
    const { data } = await adminAuth().createUser({ email, password, email_confirm: true });
    const id = data.user!.id;
    expect((await adminAuth().getUserById(id)).data.user?.email).toBe(email);

    const banned = await adminAuth().updateUserById(id, { ban_duration: "24h", app_metadata: { plan: "team" } });
    expect(banned.error).toBeNull();
    expect(banned.data.user!.app_metadata).toMatchObject({ plan: "team", provider: "email" });
    expect((await anonAuth().signInWithPassword({ email, password })).error).toMatchObject({ code: "user_banned" });
    await adminAuth().updateUserById(id, { ban_duration: "none" });
    expect((await anonAuth().signInWithPassword({ email, password })).error).toBeNull();

    expect((await adminAuth().deleteUser(id)).error).toBeNull();
    expect(await sql("select 1 from auth.users where id = $1", [id])).toEqual([]);
    expect(await sql("select 1 from auth.sessions where user_id = $1", [id])).toEqual([]);
    expect((await adminAuth().getUserById(id)).error).toMatchObject({ status: 404, code: "user_not_found" });
  });

  it("soft deletion keeps the row but removes what identifies the user; they cannot sign in", async () => {
    const email = newEmail("soft");
    const password = newPassword();
    const id = (await adminAuth().createUser({ email, password, email_confirm: true })).data.user!.id;
    expect((await adminAuth().deleteUser(id, true)).error).toBeNull();
    const [row] = await sql<{ email: string; deleted: boolean }>(
      "select email, deleted_at is not null as deleted from auth.users where id = $1", [id],
    );
    expect(row).toMatchObject({ deleted: true });
    expect(row!.email).not.toBe(email);
    expect((await anonAuth().signInWithPassword({ email, password })).error?.code).toBe("invalid_credentials");
  });
});

describe("the admin API refuses other callers", () => {
  it("answers a user's session token with 403 not_admin", async () => {
    const email = newEmail("notadmin");
    const password = newPassword();
    const session = (await anonAuth().signUp({ email, password })).data.session!;
    const asUser = supabaseClient(testStack().ANON_KEY, session.access_token).auth.admin;
    const list = await asUser.listUsers();
    expect(list.error).toMatchObject({ status: 403, code: "not_admin" });
    const create = await asUser.createUser({ email: newEmail("sneaky"), password });
    expect(create.error).toMatchObject({ status: 403, code: "not_admin" });
  });

  it("answers the anon key with 403 not_admin and no token with 401 no_authorization", async () => {
    const anonAdmin = supabaseClient(testStack().ANON_KEY).auth.admin;
    expect((await anonAdmin.listUsers()).error).toMatchObject({ status: 403, code: "not_admin" });
    const sneaky = newEmail("anonadmin");
    expect((await anonAdmin.createUser({ email: sneaky, password: newPassword() })).error?.code).toBe("not_admin");
    expect(await sql("select 1 from auth.users where email = $1", [sneaky])).toEqual([]);
    const bare = await gotrue("GET", "/admin/users", { headers: { apikey: testStack().ANON_KEY } });
    expect(bare).toMatchObject({ status: 401, body: { code: "no_authorization" } });
  });
});
