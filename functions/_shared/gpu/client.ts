/**
 * Typed client for the GPU cluster API (`gpu-cluster/openapi.yaml`).
 *
 * Every call has a per-attempt timeout (AbortController) and is retried with
 * exponential backoff and full jitter, honouring `Retry-After`, when that is
 * safe:
 * - reads and cancel are idempotent: retried on 429, 5xx, timeouts and
 *   connection failures;
 * - submit is retried on those only with an `Idempotency-Key` (the cluster
 *   dedupes); without one it is retried only when the request provably was
 *   not processed (429, 503, connection refused), and otherwise fails with
 *   {@link UnknownOutcomeError}. Submit also ends in UnknownOutcomeError when
 *   every attempt was lost: look the job up by its key before resubmitting.
 *
 * Failures are thrown as the four classes of `./errors.ts`. Web APIs only;
 * the clock, sleep and randomness are injectable for tests.
 */
import type { z } from "zod";
import { backoffDelay, parseRetryAfter } from "./backoff.ts";
import {
  classifyHttpStatus,
  type GpuClusterError,
  gpuError,
  type GpuErrorKind,
  isGpuClusterError,
  PermanentSystemError,
  PermanentUserError,
} from "./errors.ts";
import {
  ClusterErrorBodySchema,
  type Job,
  JobListSchema,
  JobSchema,
  type SubmitJobRequest,
  SubmitJobRequestSchema,
} from "./types.ts";

/** Construction options; only `baseUrl` and `apiKey` are required. */
export type GpuClusterClientOptions = {
  /** `GPU_CLUSTER_API_URL`, e.g. `https://gpu.example.com` (paths start with `/v1`). */
  baseUrl: string;
  /** `GPU_CLUSTER_API_KEY`, sent as a bearer token. */
  apiKey: string;
  fetch?: typeof fetch;
  /** Per attempt, including reading the body. Default 10 s. */
  timeoutMs?: number;
  /** Attempts per call, including the first. Default 4. */
  maxAttempts?: number;
  /** Backoff base and cap. Defaults 250 ms and 8 s. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** A `Retry-After` longer than this is not waited for: the error is thrown with `retryAfterMs`. Default 30 s. */
  maxRetryAfterMs?: number;
  sleep?: (ms: number) => Promise<void>;
  /** Uniform in [0, 1). */
  random?: () => number;
  /** Milliseconds since the epoch (for `Retry-After` dates). */
  now?: () => number;
  /** Called before each retry (for logs and tests). */
  onRetry?: (info: { operation: string; attempt: number; delayMs: number; error: GpuClusterError }) => void;
};

type Operation<T> = {
  name: "submit_job" | "get_job" | "find_jobs" | "cancel_job";
  method: "GET" | "POST";
  path: string;
  body?: unknown;
  headers?: Record<string, string>;
  /** Repeating it cannot apply it twice. */
  idempotent: boolean;
  /** Creates something, so a lost response leaves the outcome unknown. */
  mutating: boolean;
  schema: z.ZodType<T>;
};

type Answer<T> = { status: number; value: T };

/** Codes of transport errors that prove the request never left this machine. */
const NOT_SENT_CODES = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "ENETUNREACH", "EHOSTUNREACH"]);
const NOT_SENT_TEXT = /connection refused|dns error|failed to lookup|name resolution/i;

function provablyNotSent(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 5; depth++) {
    const rec = e as { code?: unknown; message?: unknown; cause?: unknown; errors?: unknown[] };
    if (typeof rec.code === "string" && NOT_SENT_CODES.has(rec.code)) return true;
    if (typeof rec.message === "string" && NOT_SENT_TEXT.test(rec.message)) return true;
    if (Array.isArray(rec.errors) && rec.errors.some(provablyNotSent)) return true;
    e = rec.cause;
  }
  return false;
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The GPU cluster API, typed, with timeouts, retries and error classification. */
export class GpuClusterClient {
  readonly #opts: Required<Omit<GpuClusterClientOptions, "onRetry">> & Pick<GpuClusterClientOptions, "onRetry">;

  constructor(opts: GpuClusterClientOptions) {
    this.#opts = {
      fetch: (...args) => fetch(...args),
      timeoutMs: 10_000,
      maxAttempts: 4,
      baseDelayMs: 250,
      maxDelayMs: 8_000,
      maxRetryAfterMs: 30_000,
      sleep: defaultSleep,
      random: Math.random,
      now: Date.now,
      ...opts,
      baseUrl: opts.baseUrl.replace(/\/+$/, ""),
    };
  }

  /**
   * Submit a training job. With the same `idempotencyKey` and the same body
   * the cluster returns the job it already has (`replayed: true`); with a
   * different body it answers 409 ({@link PermanentUserError}). A request
   * that fails the contract's schema is a PermanentUserError without a call.
   */
  async submitJob(request: SubmitJobRequest, opts: { idempotencyKey?: string } = {}): Promise<{ job: Job; replayed: boolean }> {
    const parsed = SubmitJobRequestSchema.safeParse(request);
    if (!parsed.success) {
      throw new PermanentUserError("Submit request violates the GPU cluster contract", {
        attempts: 0,
        details: parsed.error.issues.map((i) => ({ path: i.path.map(String).join("."), message: i.message })),
      });
    }
    const body = parsed.data;
    const key = opts.idempotencyKey;
    const answer = await this.#call({
      name: "submit_job",
      method: "POST",
      path: "/v1/jobs",
      body,
      headers: key === undefined ? {} : { "idempotency-key": key },
      idempotent: key !== undefined,
      mutating: true,
      schema: JobSchema,
    });
    return { job: answer.value, replayed: answer.status === 200 };
  }

  /** A job with its progress, checkpoints, artifacts and the metric points after `metricsSinceStep`. */
  async getJob(jobId: string, opts: { metricsSinceStep?: number } = {}): Promise<Job> {
    const query = opts.metricsSinceStep === undefined ? "" : `?metrics_since_step=${opts.metricsSinceStep}`;
    const answer = await this.#call({
      name: "get_job",
      method: "GET",
      path: `/v1/jobs/${encodeURIComponent(jobId)}${query}`,
      idempotent: true,
      mutating: false,
      schema: JobSchema,
    });
    return answer.value;
  }

  /** The job submitted with this idempotency key, or null if the cluster has none. */
  async findJobByIdempotencyKey(idempotencyKey: string): Promise<Job | null> {
    const answer = await this.#call({
      name: "find_jobs",
      method: "GET",
      path: `/v1/jobs?idempotency_key=${encodeURIComponent(idempotencyKey)}`,
      idempotent: true,
      mutating: false,
      schema: JobListSchema,
    });
    return answer.value.data[0] ?? null;
  }

  /** Cancel a job; cancelling a cancelled job is a no-op, a finished one is a 409. */
  async cancelJob(jobId: string): Promise<Job> {
    const answer = await this.#call({
      name: "cancel_job",
      method: "POST",
      path: `/v1/jobs/${encodeURIComponent(jobId)}/cancel`,
      idempotent: true,
      mutating: false,
      schema: JobSchema,
    });
    return answer.value;
  }

  async #call<T>(op: Operation<T>): Promise<Answer<T>> {
    const o = this.#opts;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#attempt(op, attempt);
      } catch (err) {
        if (!isGpuClusterError(err)) throw err;
        const retry = err.kind === "retryable" || (err.kind === "unknown_outcome" && op.idempotent);
        if (!retry || attempt >= o.maxAttempts) throw err;
        if (err.retryAfterMs !== undefined && err.retryAfterMs > o.maxRetryAfterMs) throw err;
        const delayMs = err.retryAfterMs ?? backoffDelay(attempt, o, o.random);
        o.onRetry?.({ operation: op.name, attempt, delayMs, error: err });
        await o.sleep(delayMs);
      }
    }
  }

  async #attempt<T>(op: Operation<T>, attempt: number): Promise<Answer<T>> {
    const o = this.#opts;
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, o.timeoutMs);
    const where = `${op.method} ${op.path}`;
    try {
      let res: Response;
      let text: string;
      try {
        res = await o.fetch(`${o.baseUrl}${op.path}`, {
          method: op.method,
          headers: {
            authorization: `Bearer ${o.apiKey}`,
            accept: "application/json",
            ...(op.body === undefined ? {} : { "content-type": "application/json" }),
            ...op.headers,
          },
          body: op.body === undefined ? undefined : JSON.stringify(op.body),
          signal: controller.signal,
        });
        text = await res.text();
      } catch (err) {
        const notSent = !timedOut && provablyNotSent(err);
        const kind: GpuErrorKind = notSent || !op.mutating ? "retryable" : "unknown_outcome";
        const what = timedOut ? `timed out after ${o.timeoutMs} ms` : notSent ? "could not connect" : "lost the connection";
        throw gpuError(kind, `GPU cluster ${what} (${where})`, { attempts: attempt, cause: err });
      }
      let json: unknown;
      try {
        json = text.length > 0 ? JSON.parse(text) : undefined;
      } catch {
        json = undefined;
      }
      if (res.ok) {
        const parsed = op.schema.safeParse(json);
        if (parsed.success) return { status: res.status, value: parsed.data };
        throw new PermanentSystemError(`GPU cluster answered ${res.status} with a body that violates the contract (${where})`, {
          upstreamStatus: res.status,
          attempts: attempt,
          details: parsed.error.issues.slice(0, 10).map((i) => ({ path: i.path.map(String).join("."), message: i.message })),
        });
      }
      const body = ClusterErrorBodySchema.safeParse(json);
      const info = body.success ? body.data.error : undefined;
      const kind = classifyHttpStatus(res.status, { mutating: op.mutating, bodyRetryable: info?.retryable });
      const retryAfterMs = parseRetryAfter(res.headers.get("retry-after"), o.now());
      const message = info
        ? `GPU cluster answered ${res.status} "${info.code}": ${info.message} (${where})`
        : `GPU cluster answered ${res.status} (${where})`;
      throw gpuError(kind, message, {
        upstreamStatus: res.status,
        ...(info ? { upstreamCode: info.code, details: info.details } : {}),
        ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
        attempts: attempt,
      });
    } finally {
      clearTimeout(timer);
    }
  }
}
