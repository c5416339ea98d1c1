/**
 * The one error type of the Edge Functions and the one place that turns any
 * error into an HTTP response.
 *
 * Response body of every error: `{ error: { code, message, details? } }`.
 * `code` is stable (callers match on it); `message` is for humans.
 * Uses only Web APIs, so vitest (Node) can import it as well as Deno.
 */
import { ZodError } from "zod";

/** What an {@link AppError} may carry besides its message. */
export type AppErrorOptions = {
  /** Stable machine-readable code, snake_case. */
  code?: string;
  /** HTTP status the error maps to. */
  status?: number;
  /** Extra structured information safe to show to the caller. */
  details?: unknown;
  /** The underlying error (kept for logs, never sent to the caller). */
  cause?: unknown;
};

/**
 * Base class of every error a function raises on purpose. Subclasses fix the
 * default `code` and `status`; both can be overridden per instance.
 */
export class AppError extends Error {
  readonly code: string;
  readonly status: number;
  readonly details?: unknown;

  constructor(message: string, opts: AppErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = opts.code ?? "internal_error";
    this.status = opts.status ?? 500;
    if (opts.details !== undefined) this.details = opts.details;
  }
}

/** Builds a subclass with a default code and status. */
function kind(code: string, status: number) {
  return class extends AppError {
    constructor(message: string, opts: AppErrorOptions = {}) {
      super(message, { code, status, ...opts });
    }
  };
}

/** 400: the request is malformed or fails validation. */
export class ValidationError extends kind("invalid_request", 400) {}
/** 401: no valid credentials. */
export class UnauthorizedError extends kind("unauthorized", 401) {}
/** 403: authenticated, but not allowed to do this. */
export class ForbiddenError extends kind("forbidden", 403) {}
/** 404: the addressed resource does not exist (or is not visible to the caller). */
export class NotFoundError extends kind("not_found", 404) {}
/** 405: the route exists but not for this HTTP method. */
export class MethodNotAllowedError extends kind("method_not_allowed", 405) {}
/** 409: the request conflicts with the current state (e.g. a job already finished). */
export class ConflictError extends kind("conflict", 409) {}
/** 502: a service we depend on (GPU cluster, Storage) failed or answered nonsense. */
export class UpstreamError extends kind("upstream_error", 502) {}
/** 500: the function is misconfigured (missing or invalid environment). */
export class ConfigError extends kind("config_error", 500) {}

/** The JSON body every error response carries. */
export type ErrorBody = { error: { code: string; message: string; details?: unknown } };

/**
 * Normalise anything thrown into an {@link AppError}: AppErrors pass through,
 * zod errors become {@link ValidationError} with their issues as details, and
 * anything else becomes an opaque 500 (its message is not leaked).
 */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (err instanceof ZodError) {
    const details = err.issues.map((i) => ({ path: i.path.map(String).join("."), message: i.message }));
    return new ValidationError("Request failed validation", { details, cause: err });
  }
  return new AppError("Internal error", { cause: err });
}

/** The `{ error: { code, message, details? } }` body for any error. */
export function toErrorBody(err: unknown): ErrorBody {
  const e = toAppError(err);
  return { error: { code: e.code, message: e.message, ...(e.details === undefined ? {} : { details: e.details }) } };
}

/**
 * Turn any error into a JSON Response with the error's status.
 * `opts.headers` is merged in (e.g. CORS headers).
 */
export function toErrorResponse(err: unknown, opts: { headers?: HeadersInit } = {}): Response {
  const e = toAppError(err);
  const headers = new Headers(opts.headers);
  headers.set("content-type", "application/json");
  return new Response(JSON.stringify(toErrorBody(e)), { status: e.status, headers });
}
