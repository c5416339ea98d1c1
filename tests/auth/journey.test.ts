/**
 * The "done when", as a frontend and a trusted server do it with
 * supabase-js against the stack's API URL: sign up, sign in, refresh (rotation
 * and reuse refusal), read its own rows through /rest/v1 with the session,
 * sign out; the service role creates and lists users, a user token cannot.
 */
import { afterAll, describe, expect, it } from "vitest";
import { testStack } from "../helpers/stack.ts";
import { supabaseClient } from "../helpers/supabase.ts";
import { adminAuth, newEmail, newPassword, sql } from "./support.ts";

describe("a frontend's session end to end", () => {
  const created: string[] = [];
  afterAll(async () => {
    await sql("delete from public.datasets where user_id = any($1)", [created]);
  });

  it("signs up, signs in, refreshes, reads only its own rows through /rest/v1 and signs out", async () => {
    const email = newEmail("journey");
    const password = newPassword();
    const app = supabaseClient(testStack().ANON_KEY);

    const signedUp = await app.auth.signUp({ email, password });
    expect(signedUp.error).toBeNull();
    const userId = signedUp.data.user!.id;
    created.push(userId);
    await app.auth.signOut({ scope: "local" });

    const signedIn = await app.auth.signInWithPassword({ email, password });
    expect(signedIn.error).toBeNull();
    const first = signedIn.data.session!;

    const refreshed = await app.auth.refreshSession();
    expect(refreshed.error).toBeNull();
    const second = refreshed.data.session!;
    expect(second.refresh_token).not.toBe(first.refresh_token);
    await app.auth.refreshSession();
    await sql("update auth.refresh_tokens set updated_at = updated_at - interval '11 seconds' where token = $1", [
      first.refresh_token,
    ]);
    const replay = await supabaseClient(testStack().ANON_KEY).auth.refreshSession({ refresh_token: first.refresh_token });
    expect(replay.error).toMatchObject({ status: 400, code: "refresh_token_already_used" });

    // The replay revoked the family: sign in again, as the app would, and use the data API with that session.
    expect((await app.auth.signInWithPassword({ email, password })).error).toBeNull();
    const inserted = await app.from("datasets").insert({ name: "journey", file_name: "journey.jsonl" }).select("id, user_id").single();
    expect(inserted.error).toBeNull();
    expect(inserted.data!.user_id).toBe(userId);

    const stranger = supabaseClient(testStack().ANON_KEY);
    const strangerEmail = newEmail("stranger");
    const strangerUp = await stranger.auth.signUp({ email: strangerEmail, password });
    created.push(strangerUp.data.user!.id);
    const seenByStranger = await stranger.from("datasets").select("id").eq("id", inserted.data!.id);
    expect(seenByStranger).toMatchObject({ error: null, data: [] });
    const mine = await app.from("datasets").select("id, user_id");
    expect(mine.error).toBeNull();
    expect(mine.data).toEqual([{ id: inserted.data!.id, user_id: userId }]);

    expect((await app.auth.signOut()).error).toBeNull();
    expect((await app.auth.getSession()).data.session).toBeNull();
    const afterwards = await supabaseClient(testStack().ANON_KEY).auth.refreshSession({ refresh_token: second.refresh_token });
    expect(afterwards.error?.status).toBe(400);
    expect(await sql("select id from auth.sessions where user_id = $1", [userId])).toEqual([]);
  });

  it("the service role creates and lists users; a user's token cannot", async () => {
    const email = newEmail("journey-admin");
    const password = newPassword();
    const made = await adminAuth().createUser({ email, password, email_confirm: true });
    expect(made.error).toBeNull();
    const listed = await adminAuth().listUsers({ perPage: 1000 });
    expect(listed.data.users.map((u) => u.email)).toContain(email);

    const app = supabaseClient(testStack().ANON_KEY);
    const session = (await app.auth.signInWithPassword({ email, password })).data.session!;
    const asUser = supabaseClient(testStack().ANON_KEY, session.access_token).auth.admin;
    expect((await asUser.listUsers()).error).toMatchObject({ status: 403, code: "not_admin" });
    expect((await asUser.createUser({ email: newEmail("nope"), password })).error).toMatchObject({ status: 403 });
  });
});
