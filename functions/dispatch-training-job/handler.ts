/**
 * `POST /functions/v1/dispatch-training-job`: drains the `training_dispatch`
 * queue, submitting each queued training job to the GPU cluster exactly once
 * (./dispatch.ts). Woken by pg_net after a job is queued and by pg_cron every
 * minute; callable with the database's wake-up secret or the service-role key. Messages are read one at
 * a time until the queue is empty or the time budget is spent, so a run stays
 * well inside the 150 s wall-clock limit (and inside the messages' visibility
 * timeout). Pure: no Deno globals, so vitest calls it with real services.
 */
import { requireWorkerCaller } from "../_shared/auth.ts";
import { MethodNotAllowedError, toErrorResponse } from "../_shared/errors.ts";
import { corsHeaders, preflight, success } from "../_shared/http.ts";
import { type DispatchDeps, type DispatchResult, dispatchClaim } from "./dispatch.ts";
import { isClaimed, type Settled } from "./store.ts";

export type HandlerDeps = DispatchDeps & {
  serviceRoleKey: string;
  /** Accepted `x-worker-wakeup-secret` values (WORKER_WAKEUP_SECRET; several while rotating). */
  wakeupSecrets?: readonly string[];
  /** Default `training_dispatch`. */
  queue?: string;
  /** Stop claiming new messages after this long (default 20 s). */
  budgetMs?: number;
  /** At most this many messages per request (default 25). */
  maxMessages?: number;
  now?: () => number;
};

/** What one request did, message by message. */
export type DispatchReport = { processed: Array<DispatchResult | Settled> };

/** Build the request handler. */
export function createHandler(deps: HandlerDeps): (req: Request) => Promise<Response> {
  const queue = deps.queue ?? "training_dispatch";
  const now = deps.now ?? Date.now;
  return async (req) => {
    const early = preflight(req);
    if (early) return early;
    try {
      if (req.method !== "POST" && req.method !== "GET") {
        throw new MethodNotAllowedError(`Method "${req.method}" is not allowed; use POST`);
      }
      await requireWorkerCaller(req, { serviceRoleKey: deps.serviceRoleKey, wakeupSecrets: deps.wakeupSecrets });
      const started = now();
      const report: DispatchReport = { processed: [] };
      while (report.processed.length < (deps.maxMessages ?? 25) && now() - started < (deps.budgetMs ?? 20_000)) {
        const claim = await deps.store.next(queue);
        if (claim === null) break;
        if (isClaimed(claim)) {
          report.processed.push(await dispatchClaim(deps, queue, claim));
        } else {
          if (claim.action === "poisoned" || claim.action === "discarded") console.error("dispatch: archived a poison message", claim);
          report.processed.push(claim);
        }
      }
      return success(report);
    } catch (err) {
      const status = (err as { status?: number }).status;
      if (status === undefined || status >= 500) console.error("dispatch-training-job: failed", err);
      return toErrorResponse(err, { headers: corsHeaders });
    }
  };
}
