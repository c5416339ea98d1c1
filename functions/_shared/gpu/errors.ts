/**
 * How a failed call to the GPU cluster (or a failed cluster job) is
 * classified, so callers decide by type, never by parsing messages:
 *
 * - {@link RetryableError}: nothing happened, or it is safe to do again
 *   (429, 503 capacity, 5xx on an idempotent call, connection refused).
 *   Try later, honouring `retryAfterMs` when set.
 * - {@link PermanentUserError}: the request itself is unacceptable (invalid
 *   configuration, idempotency key reused with a different body, unknown
 *   job). Retrying cannot help; tell the user.
 * - {@link PermanentSystemError}: our integration is broken (bad credentials,
 *   a response that violates the contract). Retrying cannot help; alert an
 *   operator.
 * - {@link UnknownOutcomeError}: the request was sent and may or may not
 *   have taken effect (timeout or connection reset on a submit). Look the job
 *   up by its idempotency key before submitting again.
 *
 * All are {@link AppError}s, so the shared error response helpers work.
 * Web APIs only (Deno and Node).
 */
import { AppError } from "../errors.ts";
import type { JobError } from "./types.ts";

/** The four classes, as a discriminant. */
export type GpuErrorKind = "retryable" | "permanent_user" | "permanent_system" | "unknown_outcome";

/** What every GPU cluster error may carry besides its message. */
export type GpuErrorOptions = {
  /** HTTP status the cluster answered with, if it answered. */
  upstreamStatus?: number;
  /** The cluster's `error.code` (or a job error's code), if any. */
  upstreamCode?: string;
  /** How long the cluster asked us to wait (from `Retry-After`), in ms. */
  retryAfterMs?: number;
  /** Attempts made before giving up. */
  attempts?: number;
  details?: unknown;
  cause?: unknown;
};

/** Base class of the four classifications; never thrown itself. */
export abstract class GpuClusterError extends AppError {
  abstract readonly kind: GpuErrorKind;
  readonly upstreamStatus?: number;
  readonly upstreamCode?: string;
  readonly retryAfterMs?: number;
  readonly attempts: number;

  constructor(message: string, code: string, status: number, opts: GpuErrorOptions = {}) {
    super(message, { code, status, details: opts.details, cause: opts.cause });
    if (opts.upstreamStatus !== undefined) this.upstreamStatus = opts.upstreamStatus;
    if (opts.upstreamCode !== undefined) this.upstreamCode = opts.upstreamCode;
    if (opts.retryAfterMs !== undefined) this.retryAfterMs = opts.retryAfterMs;
    this.attempts = opts.attempts ?? 1;
  }

  /** Whether doing the same thing again later may succeed. */
  get retryable(): boolean {
    return this.kind === "retryable";
  }
}

/** Temporary failure; safe to try again (after `retryAfterMs` if set). */
export class RetryableError extends GpuClusterError {
  readonly kind = "retryable" as const;
  constructor(message: string, opts: GpuErrorOptions = {}) {
    super(message, "gpu_cluster_unavailable", 503, opts);
  }
}

/** The request or job is unacceptable as submitted; do not retry. */
export class PermanentUserError extends GpuClusterError {
  readonly kind = "permanent_user" as const;
  constructor(message: string, opts: GpuErrorOptions = {}) {
    super(message, "gpu_cluster_rejected", 422, opts);
  }
}

/** Our side of the integration is broken (credentials, contract); do not retry, alert. */
export class PermanentSystemError extends GpuClusterError {
  readonly kind = "permanent_system" as const;
  constructor(message: string, opts: GpuErrorOptions = {}) {
    super(message, "gpu_cluster_integration_error", 502, opts);
  }
}

/** The request may or may not have taken effect: look up by idempotency key before resubmitting. */
export class UnknownOutcomeError extends GpuClusterError {
  readonly kind = "unknown_outcome" as const;
  constructor(message: string, opts: GpuErrorOptions = {}) {
    super(message, "gpu_cluster_unknown_outcome", 504, opts);
  }
}

/** Type guard for any of the four classifications. */
export function isGpuClusterError(err: unknown): err is GpuClusterError {
  return err instanceof GpuClusterError;
}

/**
 * Classify an HTTP error status from the cluster. 4xx (and, by contract,
 * 429 and 503) mean the request was not applied; other 5xx mean it may have
 * been. `mutating`: the call creates something (submit), so a 500/502/504
 * leaves its outcome unknown; for reads and the idempotent cancel it is
 * simply retryable. A 5xx whose body says `retryable: false` is permanent.
 */
export function classifyHttpStatus(
  status: number,
  opts: { mutating: boolean; bodyRetryable?: boolean },
): GpuErrorKind {
  if (status === 401 || status === 403) return "permanent_system";
  if (status === 408 || status === 425 || status === 429 || status === 503) return "retryable";
  if (status === 400 || status === 404 || status === 409 || status === 410 || status === 422) return "permanent_user";
  if (status >= 400 && status < 500) return "permanent_system";
  if (opts.bodyRetryable === false) return "permanent_system";
  return opts.mutating ? "unknown_outcome" : "retryable";
}

/** Build the error class for a {@link GpuErrorKind}. */
export function gpuError(kind: GpuErrorKind, message: string, opts: GpuErrorOptions = {}): GpuClusterError {
  switch (kind) {
    case "retryable":
      return new RetryableError(message, opts);
    case "permanent_user":
      return new PermanentUserError(message, opts);
    case "permanent_system":
      return new PermanentSystemError(message, opts);
    case "unknown_outcome":
      return new UnknownOutcomeError(message, opts);
  }
}

/**
 * Classify a failed cluster job (its `error`, from `GET /v1/jobs/{id}` or a
 * `job.failed` event): user failures are permanent, system failures are
 * retryable when the cluster says so (e.g. `oom`, `node_failure`) and
 * permanent otherwise.
 */
export function classifyJobError(error: JobError): RetryableError | PermanentUserError | PermanentSystemError {
  const opts: GpuErrorOptions = { upstreamCode: error.code, details: { step: error.step } };
  const message = `GPU job failed with "${error.code}": ${error.message}`;
  if (error.category === "user") return new PermanentUserError(message, opts);
  return error.retryable ? new RetryableError(message, opts) : new PermanentSystemError(message, opts);
}
