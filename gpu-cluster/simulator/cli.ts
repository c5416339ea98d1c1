/**
 * Run the GPU cluster SIMULATOR on its own:
 *
 *   GPU_CLUSTER_API_KEY=dev-key GPU_WEBHOOK_SECRET=whsec_... \
 *     npx tsx gpu-cluster/simulator/cli.ts
 *
 * Optional: GPU_SIMULATOR_PORT (default 54330), GPU_SIMULATOR_TIME_SCALE
 * (default 600: an hour of training in 6 s), GPU_SIMULATOR_FAULTS (JSON of
 * GpuSimulatorFaults). Stops on SIGINT/SIGTERM.
 */
import { z } from "zod";
import { startGpuSimulator } from "./index.ts";

const Env = z.object({
  GPU_CLUSTER_API_KEY: z.string().min(1),
  /** The secret the backend verifies callbacks with (the same name as its own setting). */
  GPU_WEBHOOK_SECRET: z.string().startsWith("whsec_"),
  GPU_SIMULATOR_PORT: z.coerce.number().int().min(0).max(65535).default(54330),
  GPU_SIMULATOR_TIME_SCALE: z.coerce.number().positive().default(600),
  GPU_SIMULATOR_FAULTS: z
    .string()
    .transform((s) => JSON.parse(s) as Record<string, unknown>)
    .optional(),
});

const parsed = Env.safeParse(process.env);
if (!parsed.success) {
  console.error(`Invalid environment: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  process.exit(2);
}
const env = parsed.data;
const sim = await startGpuSimulator({
  port: env.GPU_SIMULATOR_PORT,
  apiKey: env.GPU_CLUSTER_API_KEY,
  webhookSecret: env.GPU_WEBHOOK_SECRET,
  timeScale: env.GPU_SIMULATOR_TIME_SCALE,
  faults: env.GPU_SIMULATOR_FAULTS ?? {},
  log: (m) => console.log(`[gpu-simulator] ${m}`),
});
console.log(`GPU_CLUSTER_API_URL=${sim.url}`);
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => void sim.close().then(() => process.exit(0)));
}
