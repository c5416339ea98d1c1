/**
 * `POST /functions/v1/gpu-webhook` (`verify_jwt = false`: the GPU cluster
 * has no Supabase JWT; it signs with Standard Webhooks instead): job events
 * from the cluster.
 *
 * 1. The raw body is read with a cap (413 LT432) and its signature verified
 *    over exactly those bytes (401 LT430): ../_shared/signed-callback.ts.
 * 2. The event is parsed against the contract (400 LT435).
 * 3. It is applied once per webhook-id through the same idempotent path as
 *    polling (private.apply_webhook_event): a redelivery or replay is 200
 *    `duplicate` and changes nothing; an older event than the last applied
 *    changes no status or progress. `?job=<training job id>` in the callback
 *    URL binds the events to that job: an event about another job's cluster
 *    job is 403 LT434. An unknown cluster job is 404 LT433 (changes nothing;
 *    the cluster redelivers, which covers a dispatcher that has not recorded
 *    the cluster job yet).
 * 4. When the event completes a delivery, the model card is written in the
 *    background.
 * Pure: no Deno globals, so vitest calls it with real services.
 */
import { z } from "zod";
import type { Queryable } from "../_shared/db.ts";
import { AppError, toAppError, toErrorResponse } from "../_shared/errors.ts";
import { GpuWebhookEventSchema } from "../_shared/gpu/types.ts";
import { json } from "../_shared/http.ts";
import { applyWebhookEvent } from "../_shared/job-updates.ts";
import type { ModelCardWriter } from "../_shared/model-card-delivery.ts";
import { readSignedCallback } from "../_shared/signed-callback.ts";

export type WebhookDeps = {
  /** Accepted secrets (`GPU_WEBHOOK_SECRET`, several while rotating). */
  secrets: readonly string[];
  db: Queryable;
  writeModelCard: ModelCardWriter;
  background: (work: Promise<unknown>) => void;
  maxBodyBytes?: number;
  now?: () => number;
  log?: (message: string, data?: unknown) => void;
};

const JobParam = z.uuid();

/** Build the request handler. */
export function createHandler(deps: WebhookDeps): (req: Request) => Promise<Response> {
  const log = deps.log ?? ((m: string, d?: unknown) => console.error(m, d));
  return async (req) => {
    try {
      const msg = await readSignedCallback(req, { secrets: deps.secrets, maxBytes: deps.maxBodyBytes, now: deps.now });
      const jobParam = new URL(req.url).searchParams.get("job");
      const expected = jobParam === null ? null : JobParam.safeParse(jobParam);
      if (expected && !expected.success) {
        throw new AppError(`Query parameter job must be a training job id, got "${jobParam}"`, { code: "LT435", status: 400 });
      }
      let raw: unknown;
      try {
        raw = JSON.parse(msg.body);
      } catch {
        throw new AppError("Webhook body is not valid JSON", { code: "LT435", status: 400 });
      }
      const parsed = GpuWebhookEventSchema.safeParse(raw);
      if (!parsed.success) {
        throw new AppError("Webhook body is not a GPU cluster event", {
          code: "LT435",
          status: 400,
          details: parsed.error.issues.slice(0, 10).map((i) => ({ path: i.path.map(String).join("."), message: i.message })),
        });
      }
      const event = parsed.data;
      const outcome = await applyWebhookEvent(deps.db, {
        webhookId: msg.webhookId, event, expectedJobId: expected?.success ? expected.data : null,
      });
      if (outcome.outcome === "unknown_job") {
        throw new AppError(`Unknown GPU cluster job "${event.data.job_id}"`, { code: "LT433", status: 404 });
      }
      if (outcome.outcome === "job_mismatch") {
        throw new AppError(`Cluster job "${event.data.job_id}" does not belong to job "${jobParam}"`, { code: "LT434", status: 403 });
      }
      if (outcome.model_card_pending && outcome.job_id) {
        deps.background(deps.writeModelCard(outcome.job_id).catch((err) => log("gpu-webhook: model card failed", err)));
      }
      return json({ received: true, type: event.type, sequence: event.data.sequence, ...outcome });
    } catch (err) {
      if (toAppError(err).status >= 500) log("gpu-webhook: failed", err);
      return toErrorResponse(err);
    }
  };
}
