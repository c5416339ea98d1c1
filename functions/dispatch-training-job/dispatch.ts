/**
 * Dispatching one claimed job to the GPU cluster, exactly once.
 *
 * The database already moved the job to `dispatching` (committed) before
 * this runs. Then: on `recover` (a previous attempt may have reached the
 * cluster) look the job up by its idempotency key and adopt it if found;
 * otherwise sign the dataset URL (and the validation dataset's, sent as
 * `config.validation.dataset_url`), name the checkpoint the run continues
 * from (`resume_from`), say how to read and mask the data and which lines
 * validation rejected (`dataset_spec`), save the exact body, submit with the key,
 * and record the external id and `running` in one transaction. Failures:
 * - transient (429, 503, capacity, 5xx and timeouts on reads, Storage down):
 *   back to `queued` with a delayed message, or LT313 after N attempts;
 * - unknown outcome (timeout or lost answer on submit): look up by key
 *   before anything else; found means adopted, not found means retry later;
 * - the cluster refused the job: failed, kind user (LT311); our integration is
 *   broken: failed, kind system (LT312); a dataset file is gone: kind user (LT310).
 * Anything else (a database error, a crash) is left alone: the message stays
 * invisible until its visibility timeout, and the next attempt recovers.
 */
import {
  type GpuClusterError,
  isGpuClusterError,
  PermanentSystemError,
  PermanentUserError,
  RetryableError,
  UnknownOutcomeError,
} from "../_shared/gpu/errors.ts";
import type { GpuClusterClient } from "../_shared/gpu/client.ts";
import type { DatasetSpec, Job, SubmitJobRequest } from "../_shared/gpu/types.ts";
import {
  type DownloadUrlSigner,
  type SignedUrl,
  StorageObjectMissingError,
  StorageUnavailableError,
} from "../_shared/storage.ts";
import type { Claimed, DispatchEvent, DispatchStore, JobFailure, MessageRef, RecordOutcome } from "./store.ts";

/** The retry callback of the GPU cluster client. */
export type RetryInfo = { operation: string; attempt: number; delayMs: number; error: GpuClusterError };

/** What dispatching needs; everything is injected so tests can run it with real services or fakes. */
export type DispatchDeps = {
  store: DispatchStore;
  /** A GPU cluster client reporting its internal retries to `onRetry`. */
  gpu: (onRetry: (info: RetryInfo) => void) => Pick<GpuClusterClient, "submitJob" | "findJobByIdempotencyKey" | "cancelJob">;
  signDatasetUrl: DownloadUrlSigner;
  /**
   * Callback URLs put in every submit, when configured: webhook events (sent with
   * `?job=<training job id>`, which gpu-webhook binds the events to) and artifact upload URLs.
   */
  callbacks?: { eventsUrl?: string; uploadUrlsUrl?: string };
  /** Test seams: an error thrown here behaves like a crash at that point. */
  hooks?: {
    beforeSubmit?: (claim: Claimed) => void | Promise<void>;
    afterSubmit?: (claim: Claimed, job: Job) => void | Promise<void>;
  };
};

/** What happened to one claimed job. */
export type DispatchResult = { job_id: string; outcome: RecordOutcome; external_job_id?: string };

function errorInfo(err: GpuClusterError): Record<string, unknown> {
  return {
    kind: err.kind,
    code: err.upstreamCode ?? err.code,
    message: err.message,
    ...(err.upstreamStatus === undefined ? {} : { status: err.upstreamStatus }),
    attempts: err.attempts,
  };
}

function retryEvent(info: RetryInfo): DispatchEvent {
  return {
    level: "warning",
    type: "dispatch.retrying",
    message: `GPU cluster call ${info.operation} failed on attempt ${info.attempt} (${info.error.message}); retrying in ${info.delayMs} ms`,
    data: { operation: info.operation, attempt: info.attempt, delay_ms: info.delayMs, error: errorInfo(info.error) },
  };
}

/** An actionable message for a job the cluster refused. */
function refusal(err: PermanentUserError): JobFailure {
  const issues = Array.isArray(err.details)
    ? (err.details as Array<{ path?: string; message?: string }>).map((d) => `${d.path ?? ""}: ${d.message ?? ""}`).join("; ")
    : "";
  return {
    code: "LT311",
    kind: "user",
    message: `The GPU cluster refused the job${err.upstreamCode ? ` (${err.upstreamCode})` : ""}: ${err.message}${issues ? ` [${issues}]` : ""}. Change the configuration and create a new job`,
    details: errorInfo(err),
  };
}

/** `url` with `job=<id>` added to its query. */
function forJob(url: string, jobId: string): string {
  const u = new URL(url);
  u.searchParams.set("job", jobId);
  return u.toString();
}

function buildRequest(
  claim: Claimed, urls: { dataset: string; validation: string | null }, spec: DatasetSpec | null, deps: DispatchDeps,
): SubmitJobRequest {
  return {
    dataset_url: urls.dataset,
    dataset_format: "jsonl",
    config: urls.validation === null ? claim.cluster_config : { ...claim.cluster_config, validation: { dataset_url: urls.validation } },
    ...(deps.callbacks?.eventsUrl ? { callback_url: forJob(deps.callbacks.eventsUrl, claim.job_id) } : {}),
    ...(deps.callbacks?.uploadUrlsUrl ? { upload_urls_callback_url: deps.callbacks.uploadUrlsUrl } : {}),
    metadata: { training_job_id: claim.job_id, run: String(claim.run) },
    ...(claim.resume_from ? { resume_from: claim.resume_from } : {}),
    ...(spec ? { dataset_spec: urls.validation === null ? withoutValidationLines(spec) : spec } : {}),
  };
}

/** A spec for a job without a validation file carries no validation lines. */
function withoutValidationLines(spec: DatasetSpec): DatasetSpec {
  const { validation_skip_lines: _, ...rest } = spec;
  return rest;
}

/** Dispatch one claimed job; see the module comment. */
export async function dispatchClaim(deps: DispatchDeps, queue: string, claim: Claimed): Promise<DispatchResult> {
  const ref: MessageRef = { queue, msgId: claim.msg_id, jobId: claim.job_id };
  const events: DispatchEvent[] = [];
  const gpu = deps.gpu((info) => events.push(retryEvent(info)));
  const key = claim.cluster_idempotency_key;
  /** The Storage object being signed, for the LT310 message. */
  let signing = { what: "dataset", path: claim.dataset_path };
  const sign = async (what: string, path: string): Promise<SignedUrl> => {
    signing = { what, path };
    return await deps.signDatasetUrl({ bucket: claim.dataset_bucket, path }, { expiresInSeconds: claim.dataset_url_ttl_seconds });
  };

  const adopt = async (job: Job, how: { adopted: boolean; replayed: boolean }): Promise<DispatchResult> => {
    const outcome = await deps.store.recordSubmitted(ref, job.id, {
      ...how, cluster_status: job.status, idempotency_key: key, dispatch_attempt: claim.dispatch_attempt,
    }, events);
    if (outcome.action === "orphaned") {
      // Our job ended while this one was being created: do not leave it running (and billing).
      await gpu.cancelJob(job.id).catch((err: unknown) => console.error(`dispatch: cancelling orphan ${job.id} failed`, err));
    }
    return { job_id: claim.job_id, outcome, external_job_id: job.id };
  };
  const retry = async (err: GpuClusterError | StorageUnavailableError): Promise<DispatchResult> => {
    const info = isGpuClusterError(err) ? errorInfo(err) : { kind: "storage_unavailable", code: err.code, message: err.message };
    const retryAfter = isGpuClusterError(err) && err.retryAfterMs !== undefined ? err.retryAfterMs / 1000 : null;
    return { job_id: claim.job_id, outcome: await deps.store.recordRetry(ref, info, retryAfter, events) };
  };
  const fail = async (failure: JobFailure): Promise<DispatchResult> =>
    ({ job_id: claim.job_id, outcome: await deps.store.recordFailure(ref, failure, events) });
  /** After a possibly-applied submit: the cluster's job under our key, if any. */
  const lookUp = async (why: string): Promise<Job | null> => {
    events.push({ level: "info", type: "dispatch.lookup", message: `${why}; looking the job up by idempotency key "${key}"`, data: { idempotency_key: key } });
    return await gpu.findJobByIdempotencyKey(key);
  };

  try {
    if (claim.action === "recover") {
      const found = await lookUp("A previous attempt may have reached the GPU cluster");
      if (found) return await adopt(found, { adopted: true, replayed: false });
    }
    let request: SubmitJobRequest | null = claim.request;
    if (request === null) {
      const signed = await sign("dataset", claim.dataset_path);
      const validation = claim.validation_dataset_path ? await sign("validation dataset", claim.validation_dataset_path) : null;
      const spec = await deps.store.datasetSpec(claim.job_id);
      request = buildRequest(claim, { dataset: signed.url, validation: validation?.url ?? null }, spec, deps);
      // The saved body is reused only while every URL in it stays valid.
      const expiresAt = validation && validation.expiresAt < signed.expiresAt ? validation.expiresAt : signed.expiresAt;
      if (!(await deps.store.saveRequest(claim.job_id, request, expiresAt))) {
        await deps.store.release(ref); // cancelled meanwhile: nothing may be sent
        return { job_id: claim.job_id, outcome: { action: "abandoned" } };
      }
    }
    await deps.hooks?.beforeSubmit?.(claim);
    const { job, replayed } = await gpu.submitJob(request, { idempotencyKey: key });
    await deps.hooks?.afterSubmit?.(claim, job);
    return await adopt(job, { adopted: false, replayed });
  } catch (err) {
    if (err instanceof UnknownOutcomeError || (err instanceof PermanentUserError && err.upstreamCode === "idempotency_key_reused")) {
      // Unknown outcome, or a job under our key with another body (a signed URL renewed after an
      // earlier submit did land): either way, ask the cluster before doing anything else.
      events.push({
        level: "warning", type: "dispatch.unknown_outcome",
        message: `The submission may have reached the GPU cluster (${err.message})`, data: { error: errorInfo(err) },
      });
      let found: Job | null;
      try {
        found = await lookUp("Resolving the unknown outcome");
      } catch (lookupError) {
        if (isGpuClusterError(lookupError)) return await retry(err);
        throw lookupError;
      }
      if (found) return await adopt(found, { adopted: true, replayed: false });
      return await retry(err);
    }
    if (err instanceof RetryableError || err instanceof StorageUnavailableError) return await retry(err);
    if (err instanceof StorageObjectMissingError) {
      return await fail({
        code: "LT310", kind: "user",
        message: `The ${signing.what} file "${signing.path}" is no longer in Storage; upload it again as a new dataset and create a new job`,
      });
    }
    if (err instanceof PermanentUserError && err.upstreamStatus !== undefined) return await fail(refusal(err));
    if (err instanceof PermanentUserError || err instanceof PermanentSystemError) {
      // No status: our request broke the contract before it was sent. Either way our integration is at fault.
      return await fail({
        code: "LT312", kind: "system",
        message: `The job could not be submitted because of an integration error with the GPU cluster: ${err.message}. An operator has to fix it`,
        details: errorInfo(err),
      });
    }
    throw err; // like a crash: the message is redelivered after its visibility timeout
  }
}
