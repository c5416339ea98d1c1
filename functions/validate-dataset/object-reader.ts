/**
 * Reading a dataset file from Storage a byte range at a time, so memory
 * stays bounded whatever the file size. Uses the Storage REST API directly
 * (`GET /storage/v1/object/authenticated/<bucket>/<path>` with `Range`), as
 * supabase-js's `download()` has no range option, with the service-role key.
 *
 * Storage answers errors with HTTP 400 and the real status in the body's
 * `statusCode`; both are read. Missing objects and unavailable Storage are
 * told apart so the worker can fail the dataset or retry.
 */
import { AppError, NotFoundError, UpstreamError } from "../_shared/errors.ts";

/** A byte range of the object, and the object's size. */
export type ObjectRange = { bytes: Uint8Array; total: number };

/** What the worker needs from Storage. */
export type ObjectReader = {
  /** Size of the object in bytes. */
  size(path: string): Promise<number>;
  /** Up to `length` bytes from `offset` (which must be before the end). */
  read(path: string, offset: number, length: number): Promise<ObjectRange>;
};

/** The object is gone (deleted after upload). */
export class ObjectMissingError extends NotFoundError {}
/** Storage failed, timed out or answered something unusable; a later attempt may work. */
export class StorageReadError extends UpstreamError {}

export type StorageReaderOptions = {
  /** The project URL (`SUPABASE_URL`). */
  url: string;
  serviceRoleKey: string;
  bucket?: string;
  /** Per request (default 15 s). */
  timeoutMs?: number;
  fetch?: typeof fetch;
};

/** Percent-encode each segment of an object name (names may hold spaces, "+", "(", ...). */
export function encodeObjectPath(path: string): string {
  return path.split("/").map(encodeURIComponent).join("/");
}

/** An {@link ObjectReader} over the Storage REST API. */
export function createStorageReader(opts: StorageReaderOptions): ObjectReader {
  const bucket = opts.bucket ?? "lora-datasets";
  const doFetch = opts.fetch ?? fetch;
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const base = `${opts.url.replace(/\/+$/, "")}/storage/v1/object`;
  const headers = { authorization: `Bearer ${opts.serviceRoleKey}`, apikey: opts.serviceRoleKey };

  const request = async (what: string, url: string, extra: Record<string, string> = {}): Promise<Response> => {
    let res: Response;
    try {
      res = await doFetch(url, { headers: { ...headers, ...extra }, signal: AbortSignal.timeout(timeoutMs) });
    } catch (cause) {
      throw new StorageReadError(`Storage could not be reached to read ${what}`, { cause });
    }
    if (res.ok) return res;
    const text = await res.text().catch(() => "");
    let status = res.status;
    let message = text.slice(0, 200);
    try {
      const body = JSON.parse(text) as { statusCode?: unknown; message?: unknown };
      if (Number.isFinite(Number(body.statusCode))) status = Number(body.statusCode);
      if (typeof body.message === "string") message = body.message;
    } catch {
      // not JSON: keep the HTTP status
    }
    if (status === 404) throw new ObjectMissingError(`Object ${what} does not exist`);
    throw new StorageReadError(`Storage answered ${status} reading ${what}: ${message}`, {
      details: { status },
    });
  };

  return {
    async size(path) {
      const what = `"${bucket}/${path}"`;
      const res = await request(what, `${base}/info/authenticated/${bucket}/${encodeObjectPath(path)}`);
      const info = (await res.json()) as { size?: unknown };
      const size = Number(info.size);
      if (!Number.isSafeInteger(size) || size < 0) throw new StorageReadError(`Storage gave no size for ${what}`);
      return size;
    },

    async read(path, offset, length) {
      if (!(Number.isSafeInteger(offset) && offset >= 0 && Number.isSafeInteger(length) && length > 0)) {
        throw new AppError(`Invalid range ${offset}+${length}`);
      }
      const what = `"${bucket}/${path}" bytes ${offset}-${offset + length - 1}`;
      const res = await request(what, `${base}/authenticated/${bucket}/${encodeObjectPath(path)}`, {
        range: `bytes=${offset}-${offset + length - 1}`,
      });
      const bytes = new Uint8Array(await res.arrayBuffer());
      if (res.status === 206) {
        const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(res.headers.get("content-range") ?? "");
        if (!m || Number(m[1]) !== offset || bytes.length !== Number(m[2]) - offset + 1) {
          throw new StorageReadError(`Storage sent an unexpected range for ${what}: "${res.headers.get("content-range")}"`);
        }
        return { bytes, total: Number(m[3]) };
      }
      // 200: the whole object (a server that ignores Range). Usable only when it is what we asked for.
      if (offset === 0 && bytes.length <= length) return { bytes, total: bytes.length };
      throw new StorageReadError(`Storage ignored the Range header reading ${what}`);
    },
  };
}
