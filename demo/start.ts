/**
 * `npm start`: the whole product on this machine in a couple of minutes.
 *
 * Boots the embedded stack (clean, on the default ports) with the GPU
 * cluster simulator, signs in a demo user, uploads the sample dataset,
 * validates it, quotes and creates a training job, follows it to the end
 * with progress, events and a live loss chart, then lists, downloads and
 * verifies the trained adapter, and shows the run through the DBA's ops
 * views. Then it keeps serving (URLs and keys printed) until Ctrl-C.
 *
 *   npm start                      the demo, then serve
 *   npm start -- --once            the demo, then stop and exit 0 (CI, tests)
 *   npm start -- --time-scale 6    simulated GPU seconds per real second (default 1.5, env DEMO_TIME_SCALE)
 *
 * docs/DEMO.md shows what it prints.
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { StackHandle } from "../stack/index.ts";
import { userSupabase } from "./client.ts";
import { uploadAndValidate, type DemoCtx } from "./dataset.ts";
import { deliver } from "./delivery.ts";
import { operatorView } from "./operations.ts";
import { createDemoUser, DEMO_PASSWORD, startDemoStack } from "./stack.ts";
import { createJob, quote, watchJob } from "./training.ts";
import { paint, Screen } from "./ui.ts";

const { values: args } = parseArgs({
  options: {
    once: { type: "boolean", default: false },
    "time-scale": { type: "string", default: process.env.DEMO_TIME_SCALE ?? "1.5" },
    timeout: { type: "string", default: "600" },
  },
});
const timeScale = Number(args["time-scale"]);
const timeoutMs = Number(args.timeout) * 1000;
if (!(timeScale > 0 && timeScale <= 10_000) || !(timeoutMs > 0)) {
  console.error("Usage: npm start -- [--once] [--time-scale <simulated seconds per second, > 0>] [--timeout <seconds>]");
  process.exit(2);
}

const screen = new Screen();
const t0 = Date.now();
const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(1)} s`;
let handle: StackHandle | undefined;

async function shutdown(code: number): Promise<never> {
  await handle?.stop().catch((err: unknown) => console.error(`stopping the stack failed: ${(err as Error).message}`));
  process.exit(code);
}

async function demo(): Promise<void> {
  screen.line(paint(screen.term, "bold", "Helio support assistant: LoRA fine-tuning on Supabase, end to end"));
  screen.section("0. Stack");
  handle = await startDemoStack({ timeScale, log: (m) => screen.info(m) });
  const s = handle.status;
  screen.ok(`Stack ready in ${elapsed()} (a fresh database; GPU cluster simulator at ${timeScale}x real time)`);
  const user = await createDemoUser(handle);
  screen.ok(`Signed in as ${user.email} (user ${user.id})`);
  const ctx: DemoCtx = { screen, supabase: userSupabase(s.API_URL, s.ANON_KEY, user.token), timeoutMs };

  const { datasetId } = await uploadAndValidate(ctx);
  await quote(ctx, datasetId);
  const jobId = await createJob(ctx, datasetId);
  const job = await watchJob(ctx, jobId);
  if (job.status !== "succeeded") {
    screen.fail(`Job ${job.status}: ${job.error?.code ?? ""} ${job.error?.message ?? ""}`);
    if (job.error?.hint) screen.detail([job.error.hint]);
    throw new Error(`The training job ended ${job.status}`);
  }
  screen.ok(`Job succeeded: ${job.total_steps} steps on cluster job ${job.external_job_id}, ` +
    `${Number(job.actual_gpu_seconds ?? 0).toFixed(1)} GPU seconds, ${Number(job.actual_cost ?? 0).toFixed(4)} ${job.currency}`);
  await deliver(ctx, jobId, join(handle.config.stackDir, "downloads", jobId));
  await operatorView(screen, s.DB_URL);
  screen.line();
  screen.ok(paint(screen.term, "bold", `Demo complete in ${elapsed()}: checksum verified`));

  if (args.once) return;
  screen.section("Serving");
  screen.detail([
    `API           ${s.API_URL}  (PostgREST ${s.REST_URL}, Storage ${s.STORAGE_URL}, Edge Functions ${s.FUNCTIONS_URL})`,
    `Postgres      ${s.DB_URL}`,
    `GPU cluster   ${s.GPU_CLUSTER_URL}  (simulator)`,
    `anon key      ${s.ANON_KEY}`,
    `service key   ${s.SERVICE_ROLE_KEY}`,
    `JWT secret    ${s.JWT_SECRET}`,
    `demo user     ${user.email}, password ${DEMO_PASSWORD} (supabase.auth.signInWithPassword); access token (1 h):`,
    `              ${user.token}`,
    "",
    `As the DBA:   psql '${s.DB_URL}' -c 'select * from ops.queue_health'   (docs/OPERATIONS.md)`,
    `Status JSON:  npm run --silent stack:status`,
  ]);
  screen.line(paint(screen.term, "dim", "Ctrl-C to stop."));
  await new Promise<void>(() => {});
}

for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(signal, () => {
    screen.line();
    screen.info(`${signal}: stopping the stack`);
    void shutdown(0);
  });
}

try {
  await demo();
  await shutdown(0);
} catch (err) {
  screen.live.freeze();
  screen.fail(`npm start failed after ${elapsed()}: ${(err as Error).message}`);
  await shutdown(1);
}
