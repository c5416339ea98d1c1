/**
 * One poll worker run: claim due work in batches, carry it out with bounded
 * concurrency, and (in a slot) keep going until the budget is spent,
 * sleeping until the next job is due. The database decides what is due and
 * who holds it (private.poll_claim: SKIP LOCKED plus a lease), so overlapping
 * runs share the work and never poll one job twice at once.
 */
import type { Queryable } from "../_shared/db.ts";
import { mapWithConcurrency } from "../_shared/concurrency.ts";
import { type ActionDeps, type ClaimedRow, runAction } from "./actions.ts";

/** Settings the cycle reads from private.job_settings. */
export type PollSettings = { batchSize: number; concurrency: number; budgetSeconds: number };

export type CycleDeps = ActionDeps & {
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  log?: (message: string, data?: unknown) => void;
};

export type CycleOptions = {
  /** Loop in this worker slot (1..poll_max_workers) for the budget; without one, a single pass. */
  slot?: number;
  /** Only these jobs (a cancel's wake-up). */
  jobIds?: string[];
  /** Override poll_worker_budget_seconds (ms). */
  budgetMs?: number;
};

/** What a run did. */
export type CycleReport = {
  slot: number | null;
  skipped?: "slot_busy";
  rounds: number;
  claimed: number;
  results: Record<string, number>;
  errors: number;
  elapsed_ms: number;
  chained: boolean;
};

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The poll settings of private.job_settings. */
export async function loadPollSettings(db: Queryable): Promise<PollSettings> {
  const { rows } = await db.query<{ name: string; value: string }>(
    "select name, value::text from private.job_settings where name in ('poll_batch_size', 'poll_concurrency', 'poll_worker_budget_seconds')",
  );
  const get = (name: string, dflt: number) => Number(rows.find((r) => r.name === name)?.value ?? dflt);
  return {
    batchSize: get("poll_batch_size", 50),
    concurrency: get("poll_concurrency", 8),
    budgetSeconds: get("poll_worker_budget_seconds", 50),
  };
}

/** Run the poller once (or, in a slot, for its budget). */
export async function runPollCycle(deps: CycleDeps, opts: CycleOptions = {}): Promise<CycleReport> {
  const now = deps.now ?? Date.now;
  const sleep = deps.sleep ?? defaultSleep;
  const started = now();
  const settings = await loadPollSettings(deps.db);
  const budgetMs = opts.budgetMs ?? settings.budgetSeconds * 1000;
  const report: CycleReport = { slot: opts.slot ?? null, rounds: 0, claimed: 0, results: {}, errors: 0, elapsed_ms: 0, chained: false };
  if (opts.slot !== undefined) {
    const { rows } = await deps.db.query<{ ok: boolean | null }>("select private.poll_acquire_slot($1, $2) as ok", [
      opts.slot, Math.ceil(budgetMs / 1000) + 30,
    ]);
    if (!rows[0]?.ok) return { ...report, skipped: "slot_busy", elapsed_ms: now() - started };
  }
  let exhausted = false;
  try {
    for (;;) {
      const { rows } = await deps.db.query<ClaimedRow>(
        "select * from private.poll_claim($1, $2::uuid[])",
        [settings.batchSize, opts.jobIds ?? null],
      );
      report.rounds++;
      report.claimed += rows.length;
      const results = await mapWithConcurrency(rows, settings.concurrency, (row) => runAction(deps, row));
      for (const r of results) {
        if ("error" in r) {
          report.errors++;
          deps.log?.("poll-training-jobs: action failed", r.error);
        } else {
          const key = `${r.value.action}:${r.value.result.split(":")[0]}`;
          report.results[key] = (report.results[key] ?? 0) + 1;
        }
      }
      const elapsed = now() - started;
      if (elapsed >= budgetMs) {
        exhausted = true;
        break;
      }
      if (rows.length > 0) continue;
      if (opts.slot === undefined) break;
      const next = await deps.db.query<{ at: Date | null }>("select private.poll_next_due() as at");
      const at = next.rows[0]?.at;
      if (!at) break;
      const wait = Math.max(0, new Date(at).getTime() - now());
      if (elapsed + wait >= budgetMs) {
        exhausted = true;
        break;
      }
      // Sleep in short steps of at most a second so a job made due early (a cancel) is seen soon.
      await sleep(Math.min(wait + 20, 1000));
    }
  } finally {
    if (opts.slot !== undefined) {
      const { rows } = await deps.db.query<{ chained: boolean }>("select private.poll_release_slot($1, $2) as chained", [
        opts.slot, exhausted,
      ]);
      report.chained = rows[0]?.chained ?? false;
    }
  }
  report.elapsed_ms = now() - started;
  return report;
}

