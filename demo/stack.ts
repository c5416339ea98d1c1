/**
 * The stack `npm start` runs: the embedded stack on the default `.stack/`
 * folder and ports (or STACK_DIR / STACK_*_PORT), started clean every time,
 * with the GPU cluster simulator paced so one demo job takes about a minute,
 * and the cluster's callbacks (signed webhooks, artifact upload URLs) pointed
 * at this stack's own gpu-webhook and gpu-upload-urls functions. Plus the
 * demo user, created as Auth would (a confirmed auth.users row and a signed
 * access token).
 */
import pg from "pg";
import { loadStackConfig } from "../stack/config.ts";
import { startStack, type StackHandle } from "../stack/index.ts";
import { createUser, type LocalUser } from "../stack/jwt.ts";

export type DemoStackOptions = {
  /** Simulated seconds per real second of the GPU cluster simulator. */
  timeScale: number;
  log: (message: string) => void;
};

export const DEMO_EMAIL = "demo@helio.example";

/** Boot a fresh stack wired for the demo. */
export async function startDemoStack(opts: DemoStackOptions): Promise<StackHandle> {
  const config = loadStackConfig();
  return await startStack(config, {
    fresh: true,
    log: opts.log,
    functionEnv: {
      GPU_CLUSTER_CALLBACK_URL: `${config.apiUrl}/functions/v1/gpu-webhook`,
      GPU_CLUSTER_UPLOAD_URLS_CALLBACK_URL: `${config.apiUrl}/functions/v1/gpu-upload-urls`,
    },
    // Progress events every few simulated seconds, so the chart moves while the demo watches.
    gpu: { timeScale: opts.timeScale, queueDelaySeconds: 5, progressIntervalSeconds: 2 * opts.timeScale },
  });
}

/** The demo user, signed in: its id, email and access token (signed with the stack's JWT secret). */
export async function createDemoUser(handle: StackHandle): Promise<LocalUser> {
  const db = new pg.Client({ connectionString: handle.status.DB_URL });
  await db.connect();
  try {
    return await createUser(db, handle.status.JWT_SECRET, DEMO_EMAIL);
  } finally {
    await db.end();
  }
}
