/**
 * `POST /functions/v1/poll-training-jobs`: polls the GPU cluster about
 * active jobs, stops cluster jobs we no longer want, times out jobs over
 * MAX_TRAINING_DURATION_HOURS and writes model cards (./cycle.ts,
 * ./actions.ts). Woken by pg_cron (private.poll_tick, one request per
 * worker slot), by a cancel (only that job), by its predecessor
 * (poll_chain) or by an operator; callable with the database's wake-up secret or the service-role key.
 *
 * Body (all optional): `{ slot?: n, job_ids?: [uuid], wait?: boolean,
 * budget_seconds?: n, source?: string }`. The caller (pg_net waits 5 s) gets
 * 202 at once and the run continues in the background
 * (`EdgeRuntime.waitUntil`); with `wait: true` the answer is the run's report.
 * Pure: no Deno globals, so vitest calls it with real services.
 */
import { z } from "zod";
import { requireWorkerCaller } from "../_shared/auth.ts";
import { MethodNotAllowedError, toAppError, toErrorResponse, ValidationError } from "../_shared/errors.ts";
import { corsHeaders, preflight, success } from "../_shared/http.ts";
import type { CycleOptions, CycleReport } from "./cycle.ts";

const BodySchema = z.object({
  slot: z.int().min(1).max(64).optional(),
  job_ids: z.array(z.uuid()).min(1).max(1000).optional(),
  wait: z.boolean().optional(),
  budget_seconds: z.number().positive().max(140).optional(),
  source: z.string().max(40).optional(),
});

export type PollHandlerDeps = {
  serviceRoleKey: string;
  /** Accepted `x-worker-wakeup-secret` values (WORKER_WAKEUP_SECRET; several while rotating). */
  wakeupSecrets?: readonly string[];
  runCycle: (opts: CycleOptions) => Promise<CycleReport>;
  /** Keeps background work alive after the response (EdgeRuntime.waitUntil on Supabase). */
  background: (work: Promise<unknown>) => void;
  log?: (message: string, data?: unknown) => void;
};

/** Build the request handler. */
export function createHandler(deps: PollHandlerDeps): (req: Request) => Promise<Response> {
  const log = deps.log ?? ((m: string, d?: unknown) => console.error(m, d));
  return async (req) => {
    const early = preflight(req);
    if (early) return early;
    try {
      if (req.method !== "POST") throw new MethodNotAllowedError(`Method "${req.method}" is not allowed; use POST`);
      await requireWorkerCaller(req, { serviceRoleKey: deps.serviceRoleKey, wakeupSecrets: deps.wakeupSecrets });
      const text = await req.text();
      let raw: unknown = {};
      if (text.trim().length > 0) {
        try {
          raw = JSON.parse(text);
        } catch {
          throw new ValidationError("Request body is not valid JSON");
        }
      }
      const body = BodySchema.parse(raw);
      const opts: CycleOptions = {
        ...(body.slot === undefined ? {} : { slot: body.slot }),
        ...(body.job_ids === undefined ? {} : { jobIds: body.job_ids }),
        ...(body.budget_seconds === undefined ? {} : { budgetMs: body.budget_seconds * 1000 }),
      };
      if (body.wait) return success(await deps.runCycle(opts));
      deps.background(deps.runCycle(opts).catch((err) => log("poll-training-jobs: run failed", err)));
      return success({ accepted: true, ...opts }, { status: 202 });
    } catch (err) {
      if (toAppError(err).status >= 500) log("poll-training-jobs: failed", err);
      return toErrorResponse(err, { headers: corsHeaders });
    }
  };
}
