/**
 * The stack `npm start` runs: the embedded stack on the default `.stack/`
 * folder and ports (or STACK_DIR / STACK_*_PORT), started clean every time,
 * with the GPU cluster simulator paced so one demo job takes about a minute,
 * and the cluster's callbacks (signed webhooks, artifact upload URLs) pointed
 * at this stack's own gpu-webhook and gpu-upload-urls functions. Plus the
 * demo user, signed up (or in) through supabase.auth as a frontend would.
 */
import { createClient } from "@supabase/supabase-js";
import WebSocket from "ws";
import { loadStackConfig } from "../stack/config.ts";
import { startStack, type StackHandle } from "../stack/index.ts";
import type { LocalUser } from "../stack/jwt.ts";

export type DemoStackOptions = {
  /** Simulated seconds per real second of the GPU cluster simulator. */
  timeScale: number;
  log: (message: string) => void;
};

export const DEMO_EMAIL = "demo@helio.example";
/** A local-only demo credential, well known like the local JWT secret; never used outside the embedded stack. */
export const DEMO_PASSWORD = "helio-demo-password";

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

/** The demo user, signed up through `/auth/v1` (or signed in when it exists): its id, email and session access token. */
export async function createDemoUser(handle: StackHandle): Promise<LocalUser> {
  const auth = createClient(handle.status.API_URL, handle.status.ANON_KEY, {
    auth: { persistSession: false, autoRefreshToken: false },
    realtime: { transport: WebSocket as never },
  }).auth;
  const credentials = { email: DEMO_EMAIL, password: DEMO_PASSWORD };
  let { data, error } = await auth.signUp(credentials);
  if (error?.code === "user_already_exists") ({ data, error } = await auth.signInWithPassword(credentials));
  if (error || !data.session || !data.user) {
    throw new Error(`Signing the demo user "${DEMO_EMAIL}" up or in failed: ${error?.message ?? "no session"}`);
  }
  return { id: data.user.id, email: DEMO_EMAIL, token: data.session.access_token };
}
