/**
 * Signed download URLs for objects in Supabase Storage, created with the
 * service role (workers hand them to the GPU cluster, which has no
 * credentials). Storage failures are classified so a caller can tell a
 * missing object (the user's problem) from an unavailable Storage (retry).
 * Runs on Deno and Node: the caller passes a supabase-js client's `storage`.
 */
import { AppError, NotFoundError, UpstreamError } from "./errors.ts";

/** The part of supabase-js `client.storage` this module uses. */
export type StorageLike = {
  from(bucket: string): {
    createSignedUrl(path: string, expiresIn: number): Promise<{ data: { signedUrl: string } | null; error: unknown }>;
  };
};

/** A signed URL and when it stops working. */
export type SignedUrl = { url: string; expiresAt: Date };

/** Signs a download URL for one object. */
export type DownloadUrlSigner = (object: { bucket: string; path: string }, opts: { expiresInSeconds: number }) => Promise<SignedUrl>;

/** The object does not exist (or the service role cannot see it). */
export class StorageObjectMissingError extends NotFoundError {}
/** Storage failed or could not be reached; trying again later may work. */
export class StorageUnavailableError extends UpstreamError {}
/** Storage refused the request for another reason (credentials, configuration). */
export class StorageRequestError extends AppError {}

/** The status Storage reported (its body's `statusCode`, else the HTTP status), if any. */
function statusOf(error: unknown): number | undefined {
  const e = error as { statusCode?: unknown; status?: unknown };
  const s = Number(e.statusCode ?? e.status);
  return Number.isFinite(s) ? s : undefined;
}

/** A {@link DownloadUrlSigner} over a supabase-js storage client created with the service-role key. */
export function createDownloadUrlSigner(storage: StorageLike, now: () => number = Date.now): DownloadUrlSigner {
  return async ({ bucket, path }, { expiresInSeconds }) => {
    const issuedAt = now();
    let result: Awaited<ReturnType<ReturnType<StorageLike["from"]>["createSignedUrl"]>>;
    try {
      result = await storage.from(bucket).createSignedUrl(path, expiresInSeconds);
    } catch (cause) {
      throw new StorageUnavailableError(`Storage could not be reached to sign "${bucket}/${path}"`, { cause });
    }
    if (result.data && !result.error) {
      return { url: result.data.signedUrl, expiresAt: new Date(issuedAt + expiresInSeconds * 1000) };
    }
    const status = statusOf(result.error);
    const message = (result.error as { message?: string } | null)?.message ?? "unknown error";
    if (status === 404) {
      throw new StorageObjectMissingError(`Object "${bucket}/${path}" does not exist`, { cause: result.error });
    }
    if (status === undefined || status >= 500 || status === 429) {
      throw new StorageUnavailableError(`Storage failed to sign "${bucket}/${path}": ${message}`, { cause: result.error });
    }
    throw new StorageRequestError(`Storage refused to sign "${bucket}/${path}" (${status}): ${message}`, {
      code: "storage_refused", status: 502, cause: result.error,
    });
  };
}
