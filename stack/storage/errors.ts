/**
 * Storage API errors as the real service renders them
 * (supabase/storage src/internal/errors/codes.ts): the body is
 * `{ statusCode: "<status as text>", code, error, message }` and the HTTP
 * status is 400 for every error whose status is not 500 (a legacy choice the
 * real service keeps; supabase-js exposes the body's value as `statusCode`).
 */
import type { DatabaseError } from "pg";

export class StorageError extends Error {
  constructor(
    /** The status the body carries ("404", "403", "413", ...). */
    readonly statusCode: number,
    readonly code: string,
    readonly error: string,
    message: string,
    options: { cause?: unknown; httpStatus?: number } = {},
  ) {
    super(message, { cause: options.cause });
    this.httpStatus = options.httpStatus ?? (statusCode === 500 ? 500 : 400);
  }

  /** The status line actually sent. */
  readonly httpStatus: number;

  render(): { statusCode: string; code: string; error: string; message: string } {
    return { statusCode: String(this.statusCode), code: this.code, error: this.error, message: this.message };
  }
}

const err = (status: number, code: string, error: string, message: string, cause?: unknown) =>
  new StorageError(status, code, error, message, { cause });

/** The subset of the real ERRORS table the stand-in can raise. */
export const ERRORS = {
  noSuchBucket: () => err(404, "NoSuchBucket", "Bucket not found", "Bucket not found"),
  noSuchKey: () => err(404, "NoSuchKey", "not_found", "Object not found"),
  /** The row exists but its bytes do not (the renderer's answer to a backend 404). */
  resourceNotFound: () => err(404, "NoSuchKey", "Not found", "The resource was not found"),
  accessDenied: (message: string, cause?: unknown) =>
    err(403, "AccessDenied", "Unauthorized", message || "Access denied", cause),
  invalidJwt: (message: string, cause?: unknown) => err(400, "InvalidJWT", "InvalidJWT", message || "Invalid JWT", cause),
  invalidSignature: () => err(400, "InvalidSignature", "InvalidSignature", "Invalid signature"),
  expiredSignature: () => err(400, "ExpiredToken", "ExpiredToken", "The provided token has expired."),
  invalidKey: (key: string) => err(400, "InvalidKey", "InvalidKey", `Invalid key: ${key}`),
  invalidBucketName: () => err(400, "InvalidBucketName", "Invalid Input", "Bucket name invalid"),
  invalidMimeType: (mime: string) =>
    err(415, "InvalidMimeType", "invalid_mime_type", `mime type ${mime} is not supported`),
  entityTooLarge: () => err(413, "EntityTooLarge", "Payload too large", "The object exceeded the maximum allowed size"),
  invalidRange: () => err(400, "InvalidRange", "invalid_range", "invalid range provided"),
  noContentProvided: (message = "No content provided") => err(400, "InvalidRequest", "InvalidRequest", message),
  invalidRequest: (message: string) => err(400, "InvalidRequest", "Bad Request", message),
  keyAlreadyExists: (cause?: unknown) => err(409, "KeyAlreadyExists", "Duplicate", "The resource already exists", cause),
  resourceAlreadyExists: (cause?: unknown) =>
    err(409, "ResourceAlreadyExists", "Duplicate", "The resource already exists", cause),
  internal: (message = "Internal server error", cause?: unknown) =>
    err(500, "InternalError", "InternalError", message, cause),
};

/**
 * Map a Postgres error as supabase/storage's DBError.fromDBError does.
 * Deviation: for unmapped SQLSTATEs the real message is only
 * `database error, code: <SQLSTATE>`; the stand-in appends the database's
 * message so that trigger errors are readable (match on the code prefix).
 */
export function fromPgError(e: DatabaseError): StorageError {
  const meta = { cause: e };
  switch (e.code) {
    case "42501":
      return ERRORS.accessDenied(
        e.message.includes("row-level security") ? "new row violates row-level security policy" : e.message,
        e,
      );
    case "23505":
      return ERRORS.resourceAlreadyExists(e);
    case "23503":
      return new StorageError(404, "InvalidRequest", "InvalidRequest", "The related resource does not exist", meta);
    case "55P03":
      return new StorageError(423, "ResourceLocked", "ResourceLocked", "The resource is locked", meta);
    case "57014":
      return new StorageError(544, "DatabaseTimeout", "DatabaseTimeout", "The connection to the database timed out", {
        ...meta,
        httpStatus: 544,
      });
    case "22P02":
      return new StorageError(400, "InvalidParameter", "InvalidParameter", e.message, meta);
    case "42P17":
      return new StorageError(503, "DatabaseInvalidObjectDefinition", "DatabaseInvalidObjectDefinition",
        "The database schema is invalid or incompatible.", meta);
    case "42703":
    case "42P01":
      return new StorageError(503, "DatabaseSchemaMismatch", "DatabaseSchemaMismatch",
        "The database schema is out of sync. Please run migrations or contact support.", meta);
    default:
      return new StorageError(500, "DatabaseError", "DatabaseError", `database error, code: ${e.code}: ${e.message}`, meta);
  }
}

/** Any thrown value as a renderable Storage error. */
export function toStorageError(e: unknown): StorageError {
  if (e instanceof StorageError) return e;
  if (isPgError(e)) return fromPgError(e);
  return ERRORS.internal((e as Error)?.message ?? "Internal server error", e);
}

export function isPgError(e: unknown): e is DatabaseError {
  return typeof e === "object" && e !== null && typeof (e as { code?: unknown }).code === "string" &&
    (e as { code: string }).code.length === 5 && "severity" in e;
}
