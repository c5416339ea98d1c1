/** Retry timing and error classification of the GPU cluster client, without a server. */
import { describe, expect, it } from "vitest";
import { backoffDelay, parseRetryAfter } from "../../functions/_shared/gpu/backoff.ts";
import { GpuClusterClient } from "../../functions/_shared/gpu/client.ts";
import {
  classifyHttpStatus,
  classifyJobError,
  PermanentSystemError,
  PermanentUserError,
  RetryableError,
} from "../../functions/_shared/gpu/errors.ts";
import { toErrorBody } from "../../functions/_shared/errors.ts";

describe("backoffDelay()", () => {
  const opts = { baseDelayMs: 100, maxDelayMs: 1000 };

  it("draws from [0, base * 2^(attempt-1)) capped at maxDelayMs (full jitter)", () => {
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, opts, () => 0.9999))).toEqual([99, 199, 399, 799, 999, 999]);
    expect([1, 2, 3].map((n) => backoffDelay(n, opts, () => 0))).toEqual([0, 0, 0]);
  });

  it("spreads retries over the whole window", () => {
    const seen = new Set(Array.from({ length: 50 }, (_, i) => backoffDelay(4, opts, () => i / 50)));
    expect(Math.min(...seen)).toBe(0);
    expect(Math.max(...seen)).toBeGreaterThan(750);
    expect(seen.size).toBeGreaterThan(40);
  });
});

describe("parseRetryAfter()", () => {
  const now = Date.parse("2026-01-01T00:00:00Z");

  it("reads delta-seconds and HTTP dates relative to now", () => {
    expect(parseRetryAfter("5", now)).toBe(5000);
    expect(parseRetryAfter(" 0 ", now)).toBe(0);
    expect(parseRetryAfter("Thu, 01 Jan 2026 00:00:42 GMT", now)).toBe(42_000);
  });

  it("treats past dates as 0 and garbage or absence as no hint", () => {
    expect(parseRetryAfter("Wed, 31 Dec 2025 23:00:00 GMT", now)).toBe(0);
    expect(parseRetryAfter("soon", now)).toBeUndefined();
    expect(parseRetryAfter("-5", now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
  });

  it("is honoured by the client when the cluster sends an HTTP date (fake clock)", async () => {
    const delays: number[] = [];
    let calls = 0;
    const client = new GpuClusterClient({
      baseUrl: "http://cluster.invalid",
      apiKey: "k",
      now: () => now,
      sleep: async (ms) => void delays.push(ms),
      fetch: async () => {
        calls++;
        if (calls === 1) {
          const body = { error: { code: "rate_limited", message: "Slow down", retryable: true } };
          return new Response(JSON.stringify(body), { status: 429, headers: { "retry-after": "Thu, 01 Jan 2026 00:00:09 GMT" } });
        }
        return new Response(JSON.stringify({ data: [] }), { status: 200 });
      },
    });
    await expect(client.findJobByIdempotencyKey("k1")).resolves.toBeNull();
    expect(delays).toEqual([9000]);
  });
});

describe("classifyHttpStatus()", () => {
  it.each([
    [400, "permanent_user", "permanent_user"],
    [404, "permanent_user", "permanent_user"],
    [409, "permanent_user", "permanent_user"],
    [422, "permanent_user", "permanent_user"],
    [401, "permanent_system", "permanent_system"],
    [403, "permanent_system", "permanent_system"],
    [405, "permanent_system", "permanent_system"],
    [413, "permanent_system", "permanent_system"],
    [408, "retryable", "retryable"],
    [429, "retryable", "retryable"],
    [503, "retryable", "retryable"],
    [500, "retryable", "unknown_outcome"],
    [502, "retryable", "unknown_outcome"],
    [504, "retryable", "unknown_outcome"],
  ])("%i is %s for a read and %s for a submit", (status, read, submit) => {
    expect(classifyHttpStatus(status, { mutating: false })).toBe(read);
    expect(classifyHttpStatus(status, { mutating: true })).toBe(submit);
  });

  it("treats a 5xx whose body says retryable: false as a permanent system error", () => {
    expect(classifyHttpStatus(500, { mutating: false, bodyRetryable: false })).toBe("permanent_system");
  });
});

describe("classifyJobError()", () => {
  const base = { message: "m", step: 3 };

  it("maps user failures to PermanentUserError and system failures by their retryable flag", () => {
    expect(classifyJobError({ ...base, code: "dataset_unreachable", category: "user", retryable: false })).toBeInstanceOf(PermanentUserError);
    expect(classifyJobError({ ...base, code: "oom", category: "system", retryable: true })).toBeInstanceOf(RetryableError);
    expect(classifyJobError({ ...base, code: "driver", category: "system", retryable: false })).toBeInstanceOf(PermanentSystemError);
  });

  it("keeps the cluster's code and turns into the shared error body", () => {
    const err = classifyJobError({ ...base, code: "oom", category: "system", retryable: true });
    expect(err).toMatchObject({ upstreamCode: "oom", retryable: true, kind: "retryable" });
    expect(toErrorBody(err)).toEqual({
      error: { code: "gpu_cluster_unavailable", message: 'GPU job failed with "oom": m', details: { step: 3 } },
    });
  });
});
