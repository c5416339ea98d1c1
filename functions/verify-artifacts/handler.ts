/**
 * `POST /functions/v1/verify-artifacts`: checks the bytes the GPU cluster
 * stored in lora-models against what it declared, before anything is
 * delivered (migration 20261203160100). Per pending artifact, in a
 * transaction that holds the artifact's row lock: claim it
 * (`private.artifact_verification_claim`, `skip locked`, so workers never
 * check one file twice at once), stream its bytes from Storage with the
 * service key, count and hash them (SHA-256, never the whole file in
 * memory), and record the result (`private.record_artifact_verification`:
 * verified, or mismatch with a delivery.artifact_rejected event); when that
 * completed the job's delivery, write its model card, as gpu-webhook would
 * have. A Storage
 * failure rolls back and leaves the artifact pending for the next wake-up.
 * Woken by pg_net when an artifact is registered and by pg_cron every
 * minute; callable with the wake-up secret or the service-role key. Pure: no Deno globals.
 */
import { createHash } from "node:crypto";
import type pg from "pg";
import { requireWorkerCaller } from "../_shared/auth.ts";
import { MethodNotAllowedError, toAppError, toErrorResponse, UpstreamError } from "../_shared/errors.ts";
import { corsHeaders, preflight, success } from "../_shared/http.ts";
import type { ModelCardWriter } from "../_shared/model-card-delivery.ts";

/** Streams one object of lora-models as the service role; null when Storage has no bytes for it. */
export type ObjectReader = (objectName: string) => Promise<ReadableStream<Uint8Array> | null>;

export type VerifyDeps = {
  serviceRoleKey: string;
  /** The database's wake-up secrets (private.invoke_worker; several while rotating). */
  wakeupSecrets?: readonly string[];
  pool: Pick<pg.Pool, "connect">;
  read: ObjectReader;
  /** Writes README.md when a verification completed the delivery (no poller may run: webhooks-only clusters). */
  writeModelCard: ModelCardWriter;
  /** Stop claiming after this long (default 30 s; Edge Functions get 150 s wall clock). */
  budgetMs?: number;
  now?: () => number;
};

export type VerifyReport = { artifacts: Array<{ id: string; storage_path: string; outcome: string; size_bytes: number | null }> };

/** `GET {storageUrl}/object/authenticated/lora-models/{name}` with the service key, as a stream. */
export function storageReader(storageUrl: string, serviceRoleKey: string, fetchImpl: typeof fetch = fetch): ObjectReader {
  return async (objectName) => {
    const path = objectName.split("/").map(encodeURIComponent).join("/");
    const res = await fetchImpl(`${storageUrl.replace(/\/$/, "")}/object/authenticated/lora-models/${path}`, {
      headers: { authorization: `Bearer ${serviceRoleKey}`, apikey: serviceRoleKey },
    });
    if (res.status === 404 || res.status === 400) {
      // Storage's "Object not found" (400 or 404 depending on version): a row without bytes.
      await res.body?.cancel();
      return null;
    }
    if (!res.ok || !res.body) {
      await res.body?.cancel();
      throw new UpstreamError(`Storage answered ${res.status} for lora-models/${objectName}`);
    }
    return res.body;
  };
}

async function digest(stream: ReadableStream<Uint8Array>): Promise<{ size: number; sha256: string }> {
  const hash = createHash("sha256");
  let size = 0;
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    hash.update(value);
  }
  return { size, sha256: hash.digest("hex") };
}

/** Verify pending artifacts until none is left or the budget is spent. */
export async function runVerification(deps: VerifyDeps): Promise<VerifyReport> {
  const now = deps.now ?? Date.now;
  const started = now();
  const report: VerifyReport = { artifacts: [] };
  const delivered: string[] = [];
  while (now() - started < (deps.budgetMs ?? 30_000)) {
    const client = await deps.pool.connect();
    try {
      await client.query("begin");
      const { rows } = await client.query<{ id: string; job_id: string; storage_path: string }>(
        "select id, job_id, storage_path from private.artifact_verification_claim()",
      );
      const art = rows[0];
      if (!art) {
        await client.query("commit");
        break;
      }
      const stream = await deps.read(art.storage_path);
      // No bytes at all is a mismatch too (recorded with a null size and hash), never a stuck queue.
      const { size, sha256 } = stream ? await digest(stream) : { size: null, sha256: null };
      const done = await client.query<{ outcome: string }>(
        "select private.record_artifact_verification($1, $2, $3) as outcome", [art.id, size, sha256],
      );
      await client.query("commit");
      const outcome = done.rows[0]!.outcome;
      report.artifacts.push({ id: art.id, storage_path: art.storage_path, outcome, size_bytes: size });
      if (outcome === "delivered") delivered.push(art.job_id);
    } catch (err) {
      await client.query("rollback").catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }
  // After the commits, as gpu-webhook does; a failure leaves the card to the poller (model_card_status pending).
  for (const jobId of delivered) {
    await deps.writeModelCard(jobId).catch((err) => console.error("verify-artifacts: model card failed", err));
  }
  return report;
}

/** Build the request handler. */
export function createHandler(deps: VerifyDeps): (req: Request) => Promise<Response> {
  return async (req) => {
    const early = preflight(req);
    if (early) return early;
    try {
      if (req.method !== "POST") throw new MethodNotAllowedError(`Method "${req.method}" is not allowed; use POST`);
      await requireWorkerCaller(req, { serviceRoleKey: deps.serviceRoleKey, wakeupSecrets: deps.wakeupSecrets });
      return success(await runVerification(deps));
    } catch (err) {
      if (toAppError(err).status >= 500) console.error("verify-artifacts: failed", err);
      return toErrorResponse(err, { headers: corsHeaders });
    }
  };
}
