/**
 * `POST /functions/v1/gpu-upload-urls` (`verify_jwt = false`; authenticated
 * by the Standard Webhooks signature of the GPU cluster, like gpu-webhook):
 * the cluster asks for short-lived signed upload URLs for a job's artifacts
 * (`UploadUrlsRequest` of gpu-cluster/openapi.yaml) and gets one per file.
 *
 * Every object path is built here from the job the cluster job belongs to,
 * `lora-models/{user_id}/{job_id}/{file}`, never taken from the request; the
 * file's own path must be a relative path of a known artifact kind
 * (adapter weights and config, checkpoints, metrics). Refused: bad
 * signature (401 LT430), oversized body (413 LT432), malformed body (400
 * LT435), a reused webhook id (409 LT431), an unknown cluster job (404
 * LT433), a job that is not running (409 LT440), unknown files (422 LT441).
 * URLs come from Storage's createSignedUploadUrl with the service key and
 * are never stored. Storage's token lives 2 hours, but the database takes
 * the upload only within `artifact_upload_window_seconds` (900) of this
 * request and while the job is delivering: `expires_at` says when.
 * Pure: no Deno globals, so vitest calls it with real services.
 */
import type { Queryable } from "../_shared/db.ts";
import { AppError, toAppError, toErrorResponse, UpstreamError } from "../_shared/errors.ts";
import { UploadUrlsRequestSchema, type UploadUrlsResponse } from "../_shared/gpu/types.ts";
import { json } from "../_shared/http.ts";
import { readSignedCallback } from "../_shared/signed-callback.ts";

/** Signs an upload URL for one object of `lora-models` (supabase-js `createSignedUploadUrl`). */
export type UploadUrlSigner = (objectPath: string) => Promise<{ signedUrl: string }>;

export type UploadUrlsDeps = {
  secrets: readonly string[];
  db: Queryable;
  signUploadUrl: UploadUrlSigner;
  maxBodyBytes?: number;
  now?: () => number;
  log?: (message: string, data?: unknown) => void;
};

type Prepared =
  | { outcome: "ok"; job_id: string; expires_at: string; uploads: Array<{ path: string; object: string }> }
  | { outcome: "duplicate" | "unknown_job" | "not_accepting" | "unknown_files"; status?: string; paths?: string[] };

/** A supabase-js storage client's createSignedUploadUrl as an {@link UploadUrlSigner}. */
export function storageUploadSigner(storage: {
  from(bucket: string): {
    createSignedUploadUrl(path: string, opts?: { upsert: boolean }): Promise<{ data: { signedUrl: string } | null; error: unknown }>;
  };
}): UploadUrlSigner {
  return async (objectPath) => {
    const { data, error } = await storage.from("lora-models").createSignedUploadUrl(objectPath, { upsert: true });
    if (error || !data) {
      throw new UpstreamError(`Storage could not sign an upload URL for "${objectPath}"`, { cause: error });
    }
    return { signedUrl: data.signedUrl };
  };
}

/** Build the request handler. */
export function createHandler(deps: UploadUrlsDeps): (req: Request) => Promise<Response> {
  const log = deps.log ?? ((m: string, d?: unknown) => console.error(m, d));
  const now = deps.now ?? Date.now;
  return async (req) => {
    try {
      const msg = await readSignedCallback(req, { secrets: deps.secrets, maxBytes: deps.maxBodyBytes ?? 64 * 1024, now });
      let raw: unknown;
      try {
        raw = JSON.parse(msg.body);
      } catch {
        throw new AppError("Body is not valid JSON", { code: "LT435", status: 400 });
      }
      const parsed = UploadUrlsRequestSchema.safeParse(raw);
      if (!parsed.success) {
        throw new AppError("Body is not an upload-URL request", {
          code: "LT435", status: 400,
          details: parsed.error.issues.slice(0, 10).map((i) => ({ path: i.path.map(String).join("."), message: i.message })),
        });
      }
      const request = parsed.data;
      const { rows } = await deps.db.query<{ r: Prepared }>("select private.prepare_artifact_uploads($1, $2, $3::jsonb) as r", [
        msg.webhookId, request.job_id, JSON.stringify(request.files),
      ]);
      const prepared = rows[0]!.r;
      switch (prepared.outcome) {
        case "duplicate":
          throw new AppError(`Webhook id "${msg.webhookId}" was already used`, { code: "LT431", status: 409 });
        case "unknown_job":
          throw new AppError(`Unknown GPU cluster job "${request.job_id}"`, { code: "LT433", status: 404 });
        case "not_accepting":
          throw new AppError(`The job of cluster job "${request.job_id}" is ${prepared.status}, not running: no artifacts accepted`, {
            code: "LT440", status: 409,
          });
        case "unknown_files":
          throw new AppError(`Files of no known artifact kind: ${(prepared.paths ?? []).join(", ")}`, {
            code: "LT441", status: 422, details: { paths: prepared.paths },
          });
      }
      // The database refuses the upload after its window (artifact_upload_window_seconds), whatever Storage's token says.
      const expiresAt = new Date(prepared.expires_at).toISOString();
      const uploads: UploadUrlsResponse["uploads"] = [];
      for (const u of prepared.uploads) {
        const { signedUrl } = await deps.signUploadUrl(u.object);
        uploads.push({ path: u.path, signed_url: signedUrl, expires_at: expiresAt });
      }
      return json({ uploads } satisfies UploadUrlsResponse);
    } catch (err) {
      if (toAppError(err).status >= 500) log("gpu-upload-urls: failed", err);
      return toErrorResponse(err);
    }
  };
}
