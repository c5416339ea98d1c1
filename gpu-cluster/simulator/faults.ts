/**
 * Faults the simulator can inject, by rate (seeded, so a run with the same
 * faults and seed misbehaves the same way) or by script (the next matching
 * requests get exactly these outcomes, for deterministic tests).
 */
import { mulberry32 } from "./random.ts";

/** The API operations a fault can target. */
export type SimOperation = "submit" | "get" | "find" | "cancel";

/** What can happen to one API request instead of a normal answer. */
export type RequestFaultKind =
  /** 5xx error body (status from `status` or `serverErrorStatuses`). */
  | "server_error"
  /** 429 with `Retry-After`. */
  | "rate_limit"
  /** The request hangs: no response until the client gives up. */
  | "timeout"
  /** The request is processed, then the connection is destroyed before the response. */
  | "lost_response"
  /** 503 `capacity_unavailable` with `Retry-After` (submit only). */
  | "capacity";

/**
 * One scripted fault: applies to the next request of operation `on` (any by
 * default); a `capacity` entry applies to the next submit that would create a job.
 */
export type ScriptedFault = { fault: RequestFaultKind; on?: SimOperation; status?: number; retryAfterSeconds?: number };

/** A failure injected into training at a step. */
export type StepFailure = {
  step: number;
  /** Default `oom`. */
  code?: string;
  message?: string;
  /** Default true (a re-run on a fresh node may succeed). */
  retryable?: boolean;
  /** Default `system`. */
  category?: "user" | "system";
};

/** All injectable faults; every field is optional and off by default. */
export type GpuSimulatorFaults = {
  /** Seed of the fault PRNG (default 1). */
  seed?: number;
  /** Fraction of API requests answered with a 5xx. */
  serverErrorRate?: number;
  /** Statuses to pick from for `server_error` (default 500, 502, 503, 504). */
  serverErrorStatuses?: number[];
  /** Fraction of API requests answered 429. */
  rateLimitRate?: number;
  /** `Retry-After` for 429 and 503 answers, in seconds (default 1). */
  retryAfterSeconds?: number;
  /** Added to every API response, in real milliseconds. */
  latencyMs?: number;
  /** Fraction of API requests that never get an answer. */
  timeoutRate?: number;
  /** Fraction of submits whose job is created but whose response is dropped. */
  lostSubmissionRate?: number;
  /** Fraction of submits that would create a job refused with 503 `capacity_unavailable`. */
  capacityRefusalRate?: number;
  /** Fail every running job when it reaches this step (e.g. out of memory). */
  failAtStep?: StepFailure;
  /** The dataset download fails (as if the signed URL had expired). */
  datasetUnreachable?: boolean;
  /** Fraction of webhook events delivered twice (same `webhook-id`). */
  duplicateWebhookRate?: number;
  /** Fraction of webhook events held back and delivered after the job's next event. */
  outOfOrderWebhookRate?: number;
  /** Faults for the next matching requests, consumed in order before the rates apply. */
  script?: ScriptedFault[];
};

/** The fault decided for one request. */
export type RequestFault = { kind: RequestFaultKind; status: number; retryAfterSeconds: number };

/** Holds the current faults and decides, request by request, which one applies. */
export class FaultInjector {
  #faults: GpuSimulatorFaults = {};
  #script: ScriptedFault[] = [];
  #rng: () => number = mulberry32(1);

  constructor(faults: GpuSimulatorFaults = {}) {
    this.set(faults);
  }

  /** Replace all faults (and restart the fault PRNG and the script). */
  set(faults: GpuSimulatorFaults): void {
    this.#faults = { ...faults };
    this.#script = [...(faults.script ?? [])];
    this.#rng = mulberry32(faults.seed ?? 1);
  }

  get current(): Readonly<GpuSimulatorFaults> {
    return this.#faults;
  }

  /** True with probability `rate`. */
  chance(rate: number | undefined): boolean {
    return rate !== undefined && rate > 0 && this.#rng() < rate;
  }

  /** The fault for a request of operation `op`, or null for a normal answer (capacity aside). */
  forRequest(op: SimOperation): RequestFault | null {
    const f = this.#faults;
    const scripted = this.#take((s) => s.fault !== "capacity" && (s.on === undefined || s.on === op));
    if (scripted) return scripted;
    const retryAfter = f.retryAfterSeconds ?? 1;
    if (this.chance(f.timeoutRate)) return { kind: "timeout", status: 0, retryAfterSeconds: retryAfter };
    if (this.chance(f.rateLimitRate)) return { kind: "rate_limit", status: 429, retryAfterSeconds: retryAfter };
    if (this.chance(f.serverErrorRate)) {
      const statuses = f.serverErrorStatuses ?? [500, 502, 503, 504];
      const status = statuses[Math.floor(this.#rng() * statuses.length)] ?? 500;
      return { kind: "server_error", status, retryAfterSeconds: retryAfter };
    }
    if (op === "submit" && this.chance(f.lostSubmissionRate)) {
      return { kind: "lost_response", status: 0, retryAfterSeconds: retryAfter };
    }
    return null;
  }

  /**
   * Whether a valid submit that would create a new job is refused for lack
   * of capacity (replays of existing jobs never are).
   */
  capacityRefusal(): RequestFault | null {
    const scripted = this.#take((s) => s.fault === "capacity");
    if (scripted) return scripted;
    const f = this.#faults;
    return this.chance(f.capacityRefusalRate)
      ? { kind: "capacity", status: 503, retryAfterSeconds: f.retryAfterSeconds ?? 1 }
      : null;
  }

  #take(match: (s: ScriptedFault) => boolean): RequestFault | null {
    const i = this.#script.findIndex(match);
    if (i < 0) return null;
    const s = this.#script.splice(i, 1)[0]!;
    return {
      kind: s.fault,
      status: s.status ?? defaultStatus(s.fault),
      retryAfterSeconds: s.retryAfterSeconds ?? this.#faults.retryAfterSeconds ?? 1,
    };
  }
}

function defaultStatus(kind: RequestFaultKind): number {
  switch (kind) {
    case "server_error":
      return 500;
    case "rate_limit":
      return 429;
    case "capacity":
      return 503;
    default:
      return 0;
  }
}
