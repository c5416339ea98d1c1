import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type pg from "pg";
import { verifyToken } from "../../stack/jwt.ts";
import { asRole, connect, newUser } from "../helpers/db.ts";
import { testStack } from "../helpers/stack.ts";

describe("local auth", () => {
  let db: pg.Client;
  beforeAll(async () => {
    db = await connect();
  });
  afterAll(async () => {
    await db.end();
  });

  it("newUser()'s session token (issued by /auth/v1) carries Supabase's claims and drives auth.uid()", async () => {
    const user = await newUser(db);
    const claims = await verifyToken(testStack().JWT_SECRET, user.token);
    expect(claims).toMatchObject({ sub: user.id, role: "authenticated", aud: "authenticated", email: user.email });
    const row = await asRole(db, { role: "authenticated", user }, async (c) =>
      (await c.query("select auth.uid() as uid, auth.role() as role, auth.email() as email, current_user as cu")).rows[0],
    );
    expect(row).toEqual({ uid: user.id, role: "authenticated", email: user.email, cu: "authenticated" });
  });

  it("anon and service-role keys verify with the stack secret and carry their role", async () => {
    const s = testStack();
    expect((await verifyToken(s.JWT_SECRET, s.ANON_KEY)).role).toBe("anon");
    expect((await verifyToken(s.JWT_SECRET, s.SERVICE_ROLE_KEY)).role).toBe("service_role");
    await expect(verifyToken("x".repeat(40), s.ANON_KEY)).rejects.toThrow();
  });

  it("auth.uid() is null without claims and honours the legacy request.jwt.claim.sub", async () => {
    const none = await db.query("select auth.uid() as uid");
    expect(none.rows[0].uid).toBeNull();
    await db.query("begin");
    await db.query("select set_config('request.jwt.claim.sub', '8d3b2a4e-0000-4000-8000-000000000001', true)");
    const legacy = await db.query("select auth.uid() as uid");
    await db.query("rollback");
    expect(legacy.rows[0].uid).toBe("8d3b2a4e-0000-4000-8000-000000000001");
  });

  it("service_role bypasses RLS and anon cannot read auth.users", async () => {
    const r = await db.query("select rolbypassrls from pg_roles where rolname = 'service_role'");
    expect(r.rows[0].rolbypassrls).toBe(true);
    await expect(asRole(db, { role: "anon" }, (c) => c.query("select * from auth.users"))).rejects.toMatchObject({
      code: "42501",
    });
  });
});
