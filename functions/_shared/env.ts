/**
 * The environment every Edge Function runs with, parsed once at start-up so a
 * misconfigured function fails at boot instead of on some later request.
 *
 * Supabase injects the `SUPABASE_*` variables (locally: the embedded stack or
 * `supabase functions serve`; hosted: the platform). Project secrets such as
 * the GPU cluster's come from `.env` locally and `supabase secrets set` when
 * hosted. Pure: `index.ts` passes `Deno.env.toObject()` in.
 */
import { z } from "zod";
import { ConfigError } from "./errors.ts";

const postgresUrl = z
  .string()
  .regex(/^postgres(ql)?:\/\//, "must be a postgres:// or postgresql:// URL");

/** Schema of the function environment. */
export const FunctionEnvSchema = z.object({
  SUPABASE_URL: z.url(),
  SUPABASE_ANON_KEY: z.string().min(1),
  SUPABASE_SERVICE_ROLE_KEY: z.string().min(1),
  SUPABASE_DB_URL: postgresUrl,
  GPU_CLUSTER_API_URL: z.url().optional(),
  GPU_CLUSTER_API_KEY: z.string().min(1).optional(),
  /**
   * Standard Webhooks secret(s) the GPU cluster signs its callbacks with
   * (`whsec_...`); several, space- or comma-separated, while rotating keys.
   */
  GPU_WEBHOOK_SECRET: z.string().min(1).optional(),
  /**
   * What the worker functions accept in `x-worker-wakeup-secret` from the
   * database (Vault secret `worker_wakeup_secret`); several, space- or
   * comma-separated, while rotating. Unset: only the service-role key wakes them.
   */
  WORKER_WAKEUP_SECRET: z.string().min(1).optional(),
});

/** The accepted webhook secrets of `GPU_WEBHOOK_SECRET` (several during a key rotation). */
export function webhookSecrets(value: string | undefined): string[] {
  return (value ?? "").split(/[\s,]+/).filter((s) => s.length > 0);
}

/** The accepted wake-up secrets of `WORKER_WAKEUP_SECRET` (several during a rotation). */
export function wakeupSecrets(value: string | undefined): string[] {
  return webhookSecrets(value);
}

/** The parsed, typed function environment. */
export type FunctionEnv = z.infer<typeof FunctionEnvSchema>;

/**
 * Parse the environment; throws a {@link ConfigError} naming every missing or
 * invalid variable (never their values: they are secrets).
 */
export function loadEnv(source: Record<string, string | undefined>): FunctionEnv {
  const parsed = FunctionEnvSchema.safeParse(source);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
  throw new ConfigError(`Invalid function environment: ${problems.join("; ")}`, {
    details: parsed.error.issues.map((i) => ({ variable: i.path.join("."), message: i.message })),
  });
}
