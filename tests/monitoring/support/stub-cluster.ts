/**
 * A GPU cluster stand-in for poller tests that must control every answer:
 * snapshots per cluster job, 404s, failures and slowness, and a record of
 * every call with how many were in flight per job at once.
 */
import { gpuError } from "../../../functions/_shared/gpu/errors.ts";
import type { Job } from "../../../functions/_shared/gpu/types.ts";
import type { PollCluster } from "../../../functions/poll-training-jobs/actions.ts";
import { snapshotJob } from "./events.ts";

export type StubCluster = PollCluster & {
  jobs: Map<string, Job>;
  /** Cluster jobs answered with 404. */
  missing: Set<string>;
  /** Cluster jobs whose requests fail with a 503. */
  failing: Set<string>;
  delayMs: number;
  calls: Array<{ op: "get" | "cancel" | "find"; id: string }>;
  /** Highest number of concurrent calls seen for any one cluster job. */
  maxInFlightPerJob: () => number;
};

export function stubCluster(): StubCluster {
  const inFlight = new Map<string, number>();
  let max = 0;
  const stub: StubCluster = {
    jobs: new Map(),
    missing: new Set(),
    failing: new Set(),
    delayMs: 0,
    calls: [],
    maxInFlightPerJob: () => max,
    async getJob(id) {
      return await call("get", id, () => stub.jobs.get(id) ?? snapshotJob(id, { step: 1 }));
    },
    async cancelJob(id) {
      return await call("cancel", id, () => {
        const j = stub.jobs.get(id) ?? snapshotJob(id, { step: 1 });
        const cancelled = { ...j, status: "cancelled" as const, finished_at: new Date().toISOString() };
        stub.jobs.set(id, cancelled);
        return cancelled;
      });
    },
    async findJobByIdempotencyKey(key) {
      return await call("find", key, () => [...stub.jobs.values()].find((j) => j.idempotency_key === key) ?? null);
    },
  };
  async function call<T>(op: "get" | "cancel" | "find", id: string, answer: () => T): Promise<T> {
    stub.calls.push({ op, id });
    const n = (inFlight.get(id) ?? 0) + 1;
    inFlight.set(id, n);
    max = Math.max(max, n);
    try {
      if (stub.delayMs > 0) await new Promise((r) => setTimeout(r, stub.delayMs));
      if (stub.missing.has(id)) throw gpuError("permanent_user", `GPU cluster answered 404 "job_not_found"`, { upstreamStatus: 404, upstreamCode: "job_not_found" });
      if (stub.failing.has(id)) throw gpuError("retryable", "GPU cluster answered 503", { upstreamStatus: 503 });
      return answer();
    } finally {
      inFlight.set(id, (inFlight.get(id) ?? 1) - 1);
    }
  }
  return stub;
}
