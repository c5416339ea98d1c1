/**
 * `POST /functions/v1/validate-dataset`: validates uploaded datasets from
 * the `dataset_validation` queue, a budgeted slice at a time (./worker.ts).
 * Woken by pg_net after an upload and after each slice that leaves work, and
 * by pg_cron every minute; callable with the database's wake-up secret or the service-role key. The body
 * is ignored: the queue says what to do. Pure: no Deno globals, so vitest
 * calls it with real Postgres and an injected Storage reader.
 */
import { requireWorkerCaller } from "../_shared/auth.ts";
import { MethodNotAllowedError, toErrorResponse } from "../_shared/errors.ts";
import { corsHeaders, preflight, success } from "../_shared/http.ts";
import { runWorker, type WorkerDeps, type WorkerReport } from "./worker.ts";

export type HandlerDeps = WorkerDeps & { serviceRoleKey: string; wakeupSecrets?: readonly string[] };

export type { WorkerReport };

/** Build the request handler. */
export function createHandler(deps: HandlerDeps): (req: Request) => Promise<Response> {
  return async (req) => {
    const early = preflight(req);
    if (early) return early;
    try {
      if (req.method !== "POST") throw new MethodNotAllowedError(`Method "${req.method}" is not allowed; use POST`);
      await requireWorkerCaller(req, { serviceRoleKey: deps.serviceRoleKey, wakeupSecrets: deps.wakeupSecrets });
      await req.body?.cancel();
      const report = await runWorker(deps);
      for (const r of report.runs) {
        if (r.error && r.outcome !== "lost") console.error("validate-dataset: run failed", r);
      }
      return success(report);
    } catch (err) {
      const status = (err as { status?: number }).status;
      if (status === undefined || status >= 500) console.error("validate-dataset: failed", err);
      return toErrorResponse(err, { headers: corsHeaders });
    }
  };
}
