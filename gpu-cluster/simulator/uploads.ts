/**
 * How the simulated cluster delivers artifacts: it asks the operator's
 * backend for short-lived signed upload URLs (a Standard Webhooks-signed
 * `POST` to the job's `upload_urls_callback_url`), then `PUT`s each file to
 * its URL. The first step is pluggable (`requestUploadUrls`) so tests and the
 * embedded stack can hand out URLs without the HTTP round trip.
 */
import {
  type Job,
  type UploadFile,
  type UploadUrlsRequest,
  UploadUrlsResponseSchema,
} from "../../functions/_shared/gpu/types.ts";
import { webhookHeaders } from "../../functions/_shared/webhooks.ts";
import { randomId } from "./random.ts";

/** Where to PUT one file. */
export type UploadTarget = { path: string; signedUrl: string };

/** Obtains one signed upload URL per file for a job. */
export type RequestUploadUrls = (job: Job, files: UploadFile[]) => Promise<UploadTarget[]>;

/**
 * The contract's way: `POST {job.upload_urls_callback_url}` with
 * `{ job_id, files }`, signed with the webhook secret; the answer is
 * `{ uploads: [{ path, signed_url }] }`.
 */
export function httpUploadUrlRequester(opts: {
  webhookSecret: string;
  fetch?: typeof fetch;
  timeoutMs?: number;
}): RequestUploadUrls {
  return async (job, files) => {
    const url = job.upload_urls_callback_url;
    if (!url) throw new Error(`Job "${job.id}" has no upload_urls_callback_url`);
    const request: UploadUrlsRequest = { job_id: job.id, files };
    const body = JSON.stringify(request);
    const headers = await webhookHeaders(opts.webhookSecret, { id: randomId("upl"), body });
    const res = await (opts.fetch ?? fetch)(url, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body,
      signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`Upload URL request answered ${res.status}: ${text.slice(0, 200)}`);
    const parsed = UploadUrlsResponseSchema.parse(JSON.parse(text));
    return parsed.uploads.map((u) => ({ path: u.path, signedUrl: u.signed_url }));
  };
}

/** PUT one file's bytes to its signed URL; throws unless the answer is 2xx. */
export async function putArtifact(
  target: UploadTarget,
  file: { bytes: Uint8Array; contentType: string },
  opts: { fetch?: typeof fetch; timeoutMs?: number } = {},
): Promise<void> {
  const res = await (opts.fetch ?? fetch)(target.signedUrl, {
    method: "PUT",
    headers: { "content-type": file.contentType, "x-upsert": "true" },
    body: file.bytes as BodyInit,
    signal: AbortSignal.timeout(opts.timeoutMs ?? 30_000),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`Upload of "${target.path}" answered ${res.status}: ${text.slice(0, 200)}`);
}
