/**
 * Configuration of the embedded local stack, parsed once from the environment.
 *
 * Defaults mirror `supabase start` (API on 54321, Postgres on 54322, the
 * documented local JWT secret) so that docs and examples read the same for
 * users of the real CLI stack.
 */
import { resolve } from "node:path";
import { z } from "zod";

export const PROJECT_ROOT = resolve(import.meta.dirname, "..");

const port = z.coerce.number().int().min(1).max(65535);

const StackEnv = z.object({
  STACK_DIR: z.string().min(1).default(resolve(PROJECT_ROOT, ".stack")),
  STACK_DB_PORT: port.default(54322),
  STACK_API_PORT: port.default(54321),
  STACK_GPU_PORT: port.default(54330),
  // PostgREST's own port (127.0.0.1); clients reach it through the gateway at /rest/v1.
  STACK_REST_PORT: port.default(54331),
  STACK_JWT_SECRET: z
    .string()
    .min(32, "STACK_JWT_SECRET must be at least 32 characters")
    .default("super-secret-jwt-token-with-at-least-32-characters-long"),
  STACK_DB_PASSWORD: z.string().min(1).default("postgres"),
});

export type StackConfig = {
  root: string;
  stackDir: string;
  pgData: string;
  storageDir: string;
  statusFile: string;
  dbPort: number;
  apiPort: number;
  gpuPort: number;
  restPort: number;
  jwtSecret: string;
  dbPassword: string;
  dbUrl: string;
  apiUrl: string;
};

/** Build the stack configuration from environment variables (defaults as `supabase start`). */
export function loadStackConfig(env: NodeJS.ProcessEnv = process.env): StackConfig {
  const parsed = StackEnv.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
    throw new Error(`Invalid stack configuration:\n  ${lines.join("\n  ")}`);
  }
  const e = parsed.data;
  const stackDir = resolve(e.STACK_DIR);
  return {
    root: PROJECT_ROOT,
    stackDir,
    pgData: resolve(stackDir, "pgdata"),
    storageDir: resolve(stackDir, "storage"),
    statusFile: resolve(stackDir, "status.json"),
    dbPort: e.STACK_DB_PORT,
    apiPort: e.STACK_API_PORT,
    gpuPort: e.STACK_GPU_PORT,
    restPort: e.STACK_REST_PORT,
    jwtSecret: e.STACK_JWT_SECRET,
    dbPassword: e.STACK_DB_PASSWORD,
    dbUrl: `postgresql://postgres:${encodeURIComponent(e.STACK_DB_PASSWORD)}@127.0.0.1:${e.STACK_DB_PORT}/postgres`,
    apiUrl: `http://127.0.0.1:${e.STACK_API_PORT}`,
  };
}
