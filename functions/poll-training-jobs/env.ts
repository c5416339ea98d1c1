/**
 * The poll worker's environment: the platform's variables plus the GPU
 * cluster's, which it cannot run without. Parsed once at start-up.
 */
import { z } from "zod";
import { FunctionEnvSchema } from "../_shared/env.ts";
import { ConfigError } from "../_shared/errors.ts";

export const PollEnvSchema = FunctionEnvSchema.extend({
  GPU_CLUSTER_API_URL: z.url(),
  GPU_CLUSTER_API_KEY: z.string().min(1),
  /** Per-attempt timeout of GPU cluster calls, ms. */
  GPU_CLUSTER_TIMEOUT_MS: z.coerce.number().int().min(100).max(30_000).default(10_000),
});

export type PollEnv = z.infer<typeof PollEnvSchema>;

/** Parse the environment; a {@link ConfigError} names every missing or invalid variable, never a value. */
export function loadPollEnv(source: Record<string, string | undefined>): PollEnv {
  const parsed = PollEnvSchema.safeParse(source);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
  throw new ConfigError(`Invalid function environment: ${problems.join("; ")}`);
}
