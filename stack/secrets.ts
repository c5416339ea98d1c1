/**
 * Vault secrets the database needs to wake Edge Function workers
 * (private.invoke_worker): the project URL and the worker wake-up secret. On a
 * hosted project an operator creates the same secrets (docs/DEPLOY.md).
 */
import pg from "pg";

/** Create or update each named Vault secret. */
export async function upsertVaultSecrets(dbUrl: string, secrets: Record<string, string>): Promise<void> {
  const client = new pg.Client({ connectionString: dbUrl });
  await client.connect();
  try {
    for (const [name, value] of Object.entries(secrets)) {
      const existing = await client.query<{ id: string }>("select id from vault.secrets where name = $1", [name]);
      if (existing.rows[0]) {
        await client.query("select vault.update_secret($1, $2)", [existing.rows[0].id, value]);
      } else {
        await client.query("select vault.create_secret($1, $2)", [value, name]);
      }
    }
  } finally {
    await client.end();
  }
}
