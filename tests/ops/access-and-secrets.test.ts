/**
 * Who can reach ops (only its owner: not the API roles, not through the Data
 * API), that everything in it is documented and checked by the project's
 * conventions, and the webhook secret rotation runbook: the secret it puts
 * in Vault is one the webhook receivers accept next to the old one.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import type pg from "pg";
import { parse } from "smol-toml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { webhookSecrets } from "../../functions/_shared/env.ts";
import { generateWebhookSecret, verifyWebhook, webhookHeaders, webhookSecretBytes } from "../../functions/_shared/webhooks.ts";
import { PROJECT_ROOT } from "../../stack/config.ts";
import { sqlState } from "../helpers/db.ts";
import { dbaPool } from "./support.ts";

describe("ops access and secrets", () => {
  let db: pg.Pool;
  beforeAll(() => {
    db = dbaPool();
  });
  afterAll(async () => {
    await db.end();
  });

  const list = async (sql: string): Promise<string[]> => (await db.query<{ x: string }>(sql)).rows.map((r) => r.x);

  it("the Data API does not expose ops", () => {
    const config = parse(readFileSync(resolve(PROJECT_ROOT, "supabase/config.toml"), "utf8")) as { api: { schemas: string[]; extra_search_path: string[] } };
    expect(config.api.schemas).not.toContain("ops");
    expect(config.api.extra_search_path).not.toContain("ops");
  });

  it("anon, authenticated and service_role can use nothing in ops", async () => {
    for (const role of ["anon", "authenticated", "service_role"]) {
      expect((await db.query("select has_schema_privilege($1, 'ops', 'usage') as ok", [role])).rows[0].ok, role).toBe(false);
      const granted = (await db.query<{ x: string }>(
        `select c.oid::regclass::text as x from pg_class c where c.relnamespace = 'ops'::regnamespace and c.relkind in ('r', 'v')
            and has_table_privilege($1, c.oid, 'select, insert, update, delete')
         union all
         select p.oid::regprocedure::text from pg_proc p where p.pronamespace = 'ops'::regnamespace and has_function_privilege($1, p.oid, 'execute')`,
        [role])).rows;
      expect(granted, role).toEqual([]);
    }
    const c = await db.connect();
    try {
      await c.query("begin");
      await c.query("set local role service_role");
      expect(await sqlState(c.query("select * from ops.queue_health"))).toBe("42501");
    } finally {
      await c.query("rollback");
      c.release();
    }
  });

  it("every ops view, table and function has a comment, invoker rights and a pinned search_path", async () => {
    expect(await list(
      `select c.oid::regclass::text as x from pg_class c
        where c.relnamespace = 'ops'::regnamespace and c.relkind in ('r', 'v') and obj_description(c.oid, 'pg_class') is null
       union all
       select p.oid::regprocedure::text from pg_proc p where p.pronamespace = 'ops'::regnamespace and obj_description(p.oid, 'pg_proc') is null`,
    )).toEqual([]);
    expect(await list(
      `select p.oid::regprocedure::text as x from pg_proc p where p.pronamespace = 'ops'::regnamespace
          and (p.prosecdef or not coalesce(p.proconfig, '{}') @> array['search_path=""'])`,
    )).toEqual([]);
    expect(await list(
      `select c.oid::regclass::text as x from pg_class c where c.relnamespace = 'ops'::regnamespace and c.relkind = 'v'
          and not coalesce(c.reloptions, '{}') @> array['security_invoker=true']`,
    )).toEqual([]);
    expect((await list("select c.relname::text as x from pg_class c where c.relnamespace = 'ops'::regnamespace and c.relkind = 'v'")).sort()).toEqual([
      "archived_messages", "client_access_to_internals", "cron_job_health", "failed_http_requests", "failures_by_code", "queue_health", "stuck_jobs", "usage_by_user_month",
    ]);
  });

  it("a webhook secret rotation puts a new secret in Vault that the receivers accept beside the old one, then makes it current", async () => {
    const vault = async (name: string) =>
      (await db.query<{ s: string }>("select decrypted_secret as s from vault.decrypted_secrets where name = $1", [name])).rows[0]?.s;
    const since = (await db.query("select coalesce(max(id), 0) as r, (select coalesce(max(id), 0) from ops.runbook_log) as l from ops.webhook_secret_rotations")).rows[0];
    const steps = (await db.query<{ step: number; action: string }>("select * from ops.begin_webhook_secret_rotation('ticket OPS-7')")).rows;
    expect(steps.map((s) => s.step)).toEqual([1, 2, 3, 4, 5]);
    expect(steps.map((s) => s.action).join("\n")).not.toMatch(/whsec_[A-Za-z0-9+/]{8}/); // the secret is never printed
    const next = (await vault("gpu_webhook_secret_next"))!;
    expect(next).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(webhookSecretBytes(next)).toHaveLength(32);

    // Step 2: GPU_WEBHOOK_SECRET lists the old and the new secret; a callback signed with either verifies.
    const old = generateWebhookSecret();
    const accepted = webhookSecrets(`${old} ${next}`);
    const body = JSON.stringify({ type: "job.progress" });
    for (const signer of [old, next]) {
      const headers = await webhookHeaders(signer, { id: `msg_${signer.slice(6, 12)}`, body });
      await expect(verifyWebhook(accepted, body, headers)).resolves.toMatchObject({ id: headers["webhook-id"] });
    }
    await expect(verifyWebhook(webhookSecrets(old), body, await webhookHeaders(next, { id: "msg_x", body }))).rejects.toThrow();

    expect(await sqlState(db.query("select * from ops.begin_webhook_secret_rotation()"))).toBe("LT512");
    await db.query("select * from ops.finish_webhook_secret_rotation()");
    expect(await vault("gpu_webhook_secret")).toBe(next);
    expect(await vault("gpu_webhook_secret_next")).toBeUndefined();
    expect(await sqlState(db.query("select * from ops.finish_webhook_secret_rotation()"))).toBe("LT512");

    // A second rotation, abandoned: the current secret stays, the candidate is gone.
    await db.query("select * from ops.begin_webhook_secret_rotation()");
    expect(await sqlState(db.query("select ops.cancel_webhook_secret_rotation(null)"))).toBe("22023");
    await db.query("select ops.cancel_webhook_secret_rotation('cluster vendor postponed')");
    expect(await vault("gpu_webhook_secret")).toBe(next);
    expect(await vault("gpu_webhook_secret_next")).toBeUndefined();
    const rotations = (await db.query("select outcome, note from ops.webhook_secret_rotations where id > $1 order by id", [since.r])).rows;
    expect(rotations).toEqual([{ outcome: "finished", note: "ticket OPS-7" }, { outcome: "cancelled", note: null }]);
    const actions = (await db.query("select action from ops.runbook_log where target = 'GPU_WEBHOOK_SECRET' and id > $1 order by id", [since.l])).rows.map((r) => r.action);
    expect(actions).toEqual(["begin_webhook_secret_rotation", "finish_webhook_secret_rotation", "begin_webhook_secret_rotation", "cancel_webhook_secret_rotation"]);
  });
});
