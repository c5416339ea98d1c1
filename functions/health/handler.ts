/**
 * `GET /functions/v1/health` (POST too, so a bare supabase-js
 * `functions.invoke("health")` works): proves the function runtime works end to end:
 * the gateway let an authenticated request through, the function booted with
 * its environment, and it reached Postgres through `SUPABASE_DB_URL`.
 */
import { MethodNotAllowedError, toErrorResponse } from "../_shared/errors.ts";
import { corsHeaders, preflight, success } from "../_shared/http.ts";

export type HealthDeps = {
  /** Runs `select 1` against the database and returns its value. */
  pingDb: () => Promise<number>;
};

export type HealthReport = { ok: true; db: number; function: "health" };

/** Build the request handler; `deps` are injected so tests can call it directly. */
export function createHandler(deps: HealthDeps): (req: Request) => Promise<Response> {
  return async (req) => {
    const early = preflight(req);
    if (early) return early;
    try {
      if (req.method !== "GET" && req.method !== "POST") {
        throw new MethodNotAllowedError(`Method "${req.method}" is not allowed; use GET or POST`);
      }
      const report: HealthReport = { ok: true, db: await deps.pingDb(), function: "health" };
      return success(report);
    } catch (err) {
      if (!(err instanceof MethodNotAllowedError)) console.error("health: check failed", err);
      return toErrorResponse(err, { headers: corsHeaders });
    }
  };
}
