/**
 * The dispatch worker's environment: the platform's variables plus the GPU
 * cluster's, which this worker cannot run without. Parsed once at start-up.
 */
import { z } from "zod";
import { FunctionEnvSchema } from "../_shared/env.ts";
import { ConfigError } from "../_shared/errors.ts";

export const DispatchEnvSchema = FunctionEnvSchema.extend({
  GPU_CLUSTER_API_URL: z.url(),
  GPU_CLUSTER_API_KEY: z.string().min(1),
  /** Per-attempt timeout of GPU cluster calls, ms. */
  GPU_CLUSTER_TIMEOUT_MS: z.coerce.number().int().min(100).max(30_000).default(10_000),
  /** Where the cluster POSTs job events, e.g. <SUPABASE_URL>/functions/v1/gpu-webhook (each job adds ?job=<id>). */
  GPU_CLUSTER_CALLBACK_URL: z.url().optional(),
  /** Where the cluster asks for artifact upload URLs, e.g. <SUPABASE_URL>/functions/v1/gpu-upload-urls. */
  GPU_CLUSTER_UPLOAD_URLS_CALLBACK_URL: z.url().optional(),
});

export type DispatchEnv = z.infer<typeof DispatchEnvSchema>;

/** Parse the environment; a {@link ConfigError} names every missing or invalid variable, never a value. */
export function loadDispatchEnv(source: Record<string, string | undefined>): DispatchEnv {
  const parsed = DispatchEnvSchema.safeParse(source);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
  throw new ConfigError(`Invalid function environment: ${problems.join("; ")}`);
}
