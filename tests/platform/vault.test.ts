/**
 * Supabase Vault behaviour the project relies on, through Vault's public API
 * only, so the same tests pass against supabase_vault and our stand-in
 * (sql/standins/vault.sql). Secret names are random: files share a database.
 */
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../stack/config.ts";
import { asRole, connect, newUser, sqlState } from "../helpers/db.ts";

const uniqueName = () => `test_${randomUUID()}`;
const plaintext = () => `s3cr3t-${randomUUID()}`;

describe("vault", () => {
  let db: pg.Client;
  beforeAll(async () => {
    db = await connect();
  });
  afterAll(async () => {
    await db.end();
  });

  async function create(c: pg.ClientBase, secret: string, name: string | null, description = ""): Promise<string> {
    const r = await c.query(
      "select vault.create_secret(new_secret => $1, new_name => $2, new_description => $3) as id",
      [secret, name, description],
    );
    return r.rows[0].id as string;
  }
  async function stored(c: pg.ClientBase, id: string) {
    return (await c.query("select name, description, secret from vault.secrets where id = $1", [id])).rows[0];
  }
  async function decrypted(c: pg.ClientBase, id: string) {
    const r = await c.query("select name, description, decrypted_secret from vault.decrypted_secrets where id = $1", [id]);
    return r.rows[0];
  }

  it("create_secret() stores ciphertext and decrypted_secrets returns the plaintext", async () => {
    const [secret, name] = [plaintext(), uniqueName()];
    const id = await create(db, secret, name, "a test secret");
    const row = await stored(db, id);
    expect(row.secret).not.toBe(secret);
    expect(row.secret).not.toContain(secret);
    expect(Buffer.from(row.secret, "base64").toString("utf8")).not.toContain(secret);
    expect(await decrypted(db, id)).toEqual({ name, description: "a test secret", decrypted_secret: secret });
  });

  it("update_secret() changes the secret, name and description; null arguments keep old values", async () => {
    const [secret, name] = [plaintext(), uniqueName()];
    const id = await create(db, secret, name, "before");
    const before = await stored(db, id);
    await db.query("select vault.update_secret(secret_id => $1, new_description => 'after')", [id]);
    expect((await stored(db, id)).secret).toBe(before.secret);
    expect(await decrypted(db, id)).toEqual({ name, description: "after", decrypted_secret: secret });

    const [secret2, name2] = [plaintext(), uniqueName()];
    await db.query("select vault.update_secret(secret_id => $1, new_secret => $2, new_name => $3)", [id, secret2, name2]);
    expect((await stored(db, id)).secret).not.toBe(before.secret);
    expect(await decrypted(db, id)).toEqual({ name: name2, description: "after", decrypted_secret: secret2 });
  });

  it("equal plaintexts are stored as different ciphertexts", async () => {
    const secret = plaintext();
    const [a, b] = [await create(db, secret, null), await create(db, secret, null)];
    expect((await stored(db, a)).secret).not.toBe((await stored(db, b)).secret);
    expect((await decrypted(db, b)).decrypted_secret).toBe(secret);
  });

  it("a ciphertext copied onto another secret does not decrypt", async () => {
    const [a, b] = [await create(db, plaintext(), null), await create(db, plaintext(), null)];
    await db.query("begin");
    try {
      await db.query("update vault.secrets set secret = (select secret from vault.secrets where id = $1) where id = $2", [a, b]);
      await expect(decrypted(db, b)).rejects.toThrow();
    } finally {
      await db.query("rollback");
    }
  });

  it("secret names are unique", async () => {
    const name = uniqueName();
    await create(db, plaintext(), name);
    expect(await sqlState(create(db, plaintext(), name))).toBe("23505");
  });

  it("service_role can create, update and read secrets", async () => {
    const [secret, secret2, name] = [plaintext(), plaintext(), uniqueName()];
    await asRole(db, { role: "service_role" }, async (c) => {
      const id = await create(c, secret, name);
      expect((await decrypted(c, id)).decrypted_secret).toBe(secret);
      await c.query("select vault.update_secret(secret_id => $1, new_secret => $2)", [id, secret2]);
      expect((await decrypted(c, id)).decrypted_secret).toBe(secret2);
    });
  });

  it("anon and authenticated can neither read nor create secrets", async () => {
    const id = await create(db, plaintext(), uniqueName());
    const user = await newUser(db);
    const attempts = [
      "select decrypted_secret from vault.decrypted_secrets where id = $1",
      "select secret from vault.secrets where id = $1",
      "select vault.create_secret(new_secret => $1::text)",
      "select vault.update_secret(secret_id => $1, new_secret => 'x')",
    ];
    for (const who of [{ role: "anon" as const }, { role: "authenticated" as const, user }]) {
      for (const sql of attempts) {
        expect(await sqlState(asRole(db, who, (c) => c.query(sql, [id]))), `${who.role}: ${sql}`).toBe("42501");
      }
    }
  });

  it("re-applying the stand-in keeps secrets decryptable", async (ctx) => {
    const real = await db.query("select 1 from pg_extension where extname = 'supabase_vault'");
    if (real.rowCount) ctx.skip();
    const secret = plaintext();
    const id = await create(db, secret, uniqueName());
    await db.query(readFileSync(resolve(PROJECT_ROOT, "sql/standins/vault.sql"), "utf8"));
    expect((await decrypted(db, id)).decrypted_secret).toBe(secret);
  });
});
