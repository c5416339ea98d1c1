/**
 * The GPU simulator for bench/monitoring.ts, in a process of its own so that
 * the benchmark's CPU time is the poller's alone. Slow, long jobs (time
 * scale 1, no queue wait). Prints `url <base url>` once listening; answers
 * each `queued` line on stdin with `queued <n>` (jobs not yet started);
 * exits when stdin closes.
 *
 *   SIM_API_KEY=... npx tsx bench/monitoring-simulator.ts
 */
import { createInterface } from "node:readline";
import { generateWebhookSecret } from "../functions/_shared/webhooks.ts";
import { startGpuSimulator } from "../gpu-cluster/simulator/index.ts";

const sim = await startGpuSimulator({
  apiKey: process.env.SIM_API_KEY ?? "bench-key",
  webhookSecret: generateWebhookSecret(),
  timeScale: 1,
  queueDelaySeconds: 0.05,
  tickMs: 250,
});
console.log(`url ${sim.url}`);
const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  if (line.trim() === "queued") console.log(`queued ${sim.jobs.list().filter((j) => j.status === "queued").length}`);
});
lines.on("close", () => void sim.close().then(() => process.exit(0)));
