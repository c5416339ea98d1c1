/**
 * Writing a succeeded job's model card: read `private.model_card_data()`,
 * render README.md, declare it (size, SHA-256) so the registration trigger
 * stores its checksum, upload it to `lora-models/{user_id}/{job_id}/README.md`
 * with the service role (upsert: writing it twice is harmless), and record
 * it done. A failure is recorded too; the poller tries again later.
 * Deno and Node (the caller passes supabase-js `client.storage`).
 */
import type { Queryable } from "./db.ts";
import { UpstreamError } from "./errors.ts";
import { type ModelCardData, renderModelCard } from "./model-card.ts";

/** The part of supabase-js `client.storage` used here. */
export type ModelCardStorage = {
  from(bucket: string): {
    upload(
      path: string,
      body: Uint8Array,
      opts: { upsert: boolean; contentType: string },
    ): Promise<{ data: unknown; error: unknown }>;
  };
};

/** Writes the model card of one job. */
export type ModelCardWriter = (jobId: string) => Promise<{ storagePath: string; sizeBytes: number }>;

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as BufferSource));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A {@link ModelCardWriter} over a database and a service-role storage client. */
export function createModelCardWriter(deps: { db: Queryable; storage: ModelCardStorage }): ModelCardWriter {
  return async (jobId) => {
    try {
      const { rows } = await deps.db.query<{ data: ModelCardData | null }>("select private.model_card_data($1) as data", [jobId]);
      const data = rows[0]?.data;
      if (!data) throw new Error(`Job "${jobId}" does not exist`);
      const bytes = new TextEncoder().encode(renderModelCard(data));
      const declared = await deps.db.query<{ path: string }>(
        "select private.declare_backend_artifact($1, 'README.md', 'text/markdown', $2, $3) as path",
        [jobId, bytes.byteLength, await sha256Hex(bytes)],
      );
      const storagePath = declared.rows[0]!.path;
      const { error } = await deps.storage.from("lora-models").upload(storagePath, bytes, {
        upsert: true,
        contentType: "text/markdown",
      });
      if (error) {
        throw new UpstreamError(`Storage refused the model card: ${(error as { message?: string }).message ?? String(error)}`, {
          cause: error,
        });
      }
      await deps.db.query("select private.model_card_done($1, $2)", [jobId, storagePath]);
      return { storagePath, sizeBytes: bytes.byteLength };
    } catch (err) {
      await deps.db.query("select private.model_card_failed($1, $2)", [jobId, (err as Error).message]).catch(() => {});
      throw err;
    }
  };
}
