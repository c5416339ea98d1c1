/**
 * `POST /functions/v1/storage-cleanup`: removes the files of soft-deleted
 * jobs and datasets through the Storage API (a direct SQL delete from
 * storage.objects is refused on Supabase and would leave the bytes). Drains
 * the pgmq queue storage_cleanup (migration 20261126141200): per message,
 * lists the objects under its prefix, removes them in batches with the
 * service key, and deletes the message once nothing is left. A failure
 * leaves the message to reappear after its visibility timeout. Woken by
 * pg_net on a soft delete and by pg_cron every five minutes; callable only
 * with the service-role key. Pure: no Deno globals.
 */
import { requireWorkerCaller } from "../_shared/auth.ts";
import type { Queryable } from "../_shared/db.ts";
import { MethodNotAllowedError, toAppError, toErrorResponse, UpstreamError } from "../_shared/errors.ts";
import { corsHeaders, preflight, success } from "../_shared/http.ts";

/** Removes objects of one bucket (supabase-js `storage.from(bucket).remove(names)`). */
export type ObjectRemover = (bucket: string, names: string[]) => Promise<number>;

export type CleanupDeps = {
  serviceRoleKey: string;
  /** Accepted `x-worker-wakeup-secret` values (WORKER_WAKEUP_SECRET; several while rotating). */
  wakeupSecrets?: readonly string[];
  db: Queryable;
  remove: ObjectRemover;
  /** Stop taking new messages after this long (default 20 s). */
  budgetMs?: number;
  batchSize?: number;
  now?: () => number;
};

type Next =
  | { action: "remove"; msg_id: number; bucket: string; prefix: string }
  | { action: "deferred" | "discarded"; msg_id: number };

/** What a run did. */
export type CleanupReport = { messages: Array<{ msg_id: number; action: string; removed: number; bucket?: string; prefix?: string }> };

/** A supabase-js service-role storage client as an {@link ObjectRemover}. */
export function storageRemover(storage: {
  from(bucket: string): { remove(paths: string[]): Promise<{ data: unknown[] | null; error: unknown }> };
}): ObjectRemover {
  return async (bucket, names) => {
    const { data, error } = await storage.from(bucket).remove(names);
    if (error) throw new UpstreamError(`Storage could not remove ${names.length} objects from "${bucket}"`, { cause: error });
    return data?.length ?? 0;
  };
}

/** Process messages until the queue is empty or the budget is spent. */
export async function runCleanup(deps: CleanupDeps): Promise<CleanupReport> {
  const now = deps.now ?? Date.now;
  const started = now();
  const report: CleanupReport = { messages: [] };
  while (now() - started < (deps.budgetMs ?? 20_000)) {
    const { rows } = await deps.db.query<{ r: Next | null }>("select private.storage_cleanup_next() as r");
    const next = rows[0]?.r;
    if (!next) break;
    if (next.action !== "remove") {
      report.messages.push({ msg_id: next.msg_id, action: next.action, removed: 0 });
      continue;
    }
    let removed = 0;
    for (;;) {
      const listed = await deps.db.query<{ names: string[] }>("select private.storage_objects_under($1, $2, $3) as names", [
        next.bucket, next.prefix, deps.batchSize ?? 500,
      ]);
      const names = listed.rows[0]?.names ?? [];
      if (names.length === 0) break;
      const count = await deps.remove(next.bucket, names);
      // Storage skips what it cannot delete; stop instead of spinning on it (the message comes back later).
      if (count === 0) throw new UpstreamError(`Storage removed none of ${names.length} objects under "${next.bucket}/${next.prefix}"`);
      removed += count;
    }
    await deps.db.query("select private.storage_cleanup_done($1)", [next.msg_id]);
    report.messages.push({ msg_id: next.msg_id, action: "removed", removed, bucket: next.bucket, prefix: next.prefix });
  }
  return report;
}

/** Build the request handler. */
export function createHandler(deps: CleanupDeps): (req: Request) => Promise<Response> {
  return async (req) => {
    const early = preflight(req);
    if (early) return early;
    try {
      if (req.method !== "POST") throw new MethodNotAllowedError(`Method "${req.method}" is not allowed; use POST`);
      await requireWorkerCaller(req, { serviceRoleKey: deps.serviceRoleKey, wakeupSecrets: deps.wakeupSecrets });
      return success(await runCleanup(deps));
    } catch (err) {
      if (toAppError(err).status >= 500) console.error("storage-cleanup: failed", err);
      return toErrorResponse(err, { headers: corsHeaders });
    }
  };
}
