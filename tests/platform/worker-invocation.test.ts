import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type pg from "pg";
import { connect, sqlState } from "../helpers/db.ts";
import { testStack } from "../helpers/stack.ts";
import { waitFor } from "../helpers/wait.ts";

describe("private.invoke_worker()", () => {
  let db: pg.Client;
  beforeAll(async () => {
    db = await connect();
  });
  afterAll(async () => {
    await db.end();
  });

  it("wakes a worker through pg_net with the wake-up secret from Vault, after commit", async () => {
    const id = (await db.query("select private.invoke_worker('storage-cleanup') as id")).rows[0].id as string;
    expect(id).not.toBeNull();
    const response = await waitFor(
      async () => (await db.query("select status_code, content from net._http_response where id = $1", [id])).rows[0],
      { what: "the worker's response" },
    );
    expect(response.status_code).toBe(200);
    expect(JSON.parse(response.content)).toMatchObject({ success: true, data: { messages: expect.any(Array) } });
    const request = await db.query(
      "select s.decrypted_secret as url from vault.decrypted_secrets s where s.name = 'project_url'",
    );
    expect(request.rows[0].url).toBe(testStack().API_URL);
  });

  it("refuses a worker name that is not a function slug", async () => {
    expect(await sqlState(db.query("select private.invoke_worker('../auth/v1')"))).toBe("LT050");
  });

  it("is not callable by API clients", async () => {
    await db.query("begin");
    await db.query("set local role authenticated");
    const state = await sqlState(db.query("select private.invoke_worker('health')"));
    await db.query("rollback");
    expect(state).toBe("42501");
  });
});
