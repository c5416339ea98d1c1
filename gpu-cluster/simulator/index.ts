/**
 * A SIMULATOR of the external GPU cluster, for the embedded stack and tests:
 * it implements `gpu-cluster/openapi.yaml` over HTTP with simulated training
 * (see README.md for what it models and what it does not). Node only.
 *
 *   const sim = await startGpuSimulator({ apiKey, webhookSecret, timeScale: 600 });
 *   // GPU_CLUSTER_API_URL = sim.url
 *   await sim.close();
 */
import type { AddressInfo } from "node:net";
import type { Job } from "../../functions/_shared/gpu/types.ts";
import { webhookSecretBytes } from "../../functions/_shared/webhooks.ts";
import { TrainingEngine } from "./engine.ts";
import { FaultInjector, type GpuSimulatorFaults } from "./faults.ts";
import { createSimulatorServer } from "./server.ts";
import { JobStore, toJobView } from "./store.ts";
import { httpUploadUrlRequester, type RequestUploadUrls } from "./uploads.ts";
import { type DeliveryRecord, WebhookSender } from "./webhook-sender.ts";

export type { GpuSimulatorFaults, ScriptedFault, StepFailure } from "./faults.ts";
export type { RequestUploadUrls, UploadTarget } from "./uploads.ts";
export type { DeliveryRecord } from "./webhook-sender.ts";

export type GpuSimulatorOptions = {
  /** 0 (default) picks a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** The bearer token clients must send (`GPU_CLUSTER_API_KEY`). */
  apiKey: string;
  /** `whsec_...`: signs webhook events and upload-URL requests. */
  webhookSecret: string;
  /** Simulated seconds per real second (default 1; 600 = an hour in 6 s). */
  timeScale?: number;
  faults?: GpuSimulatorFaults;
  /** How artifact upload URLs are obtained; default: the contract's signed HTTP callback. */
  requestUploadUrls?: RequestUploadUrls;
  log?: (message: string) => void;
  /** Real ms between training ticks (default 25). */
  tickMs?: number;
  /** Simulated seconds a job is queued before it starts (default 30). */
  queueDelaySeconds?: number;
  /** Simulated seconds between `job.progress` events (default 300). */
  progressIntervalSeconds?: number;
  /** Waits between webhook delivery attempts, real ms (default 100, 500, 2000). */
  webhookRetryDelaysMs?: number[];
  /** Outbound HTTP (dataset download, webhooks, uploads). */
  fetch?: typeof fetch;
};

/** The cluster-side jobs, for assertions. */
export type SimulatorJobs = {
  /** How many jobs the cluster has created (whatever their status). */
  count(): number;
  list(): Job[];
  get(id: string): Job | undefined;
  /** Jobs created under an idempotency key (0 or 1: the cluster dedupes). */
  byIdempotencyKey(key: string): Job[];
};

export type GpuSimulator = {
  /** Base URL, e.g. `http://127.0.0.1:41234` (`GPU_CLUSTER_API_URL`). */
  url: string;
  jobs: SimulatorJobs;
  /**
   * Replace the injected faults (restarts the fault script and PRNG); with
   * `idempotencyKey`, only for requests about that key (its submit, lookup,
   * and its job's get and cancel), leaving every other request alone.
   */
  setFaults(faults: GpuSimulatorFaults, opts?: { idempotencyKey?: string }): void;
  webhooks: {
    /** Every delivery attempt so far, in order. */
    deliveries: readonly DeliveryRecord[];
    /** Resolves when no delivery is in flight. */
    idle(): Promise<void>;
  };
  /** Advance simulated time now instead of waiting for the timer. */
  tick(): void;
  /**
   * Forget every job, as a cluster that restarts without its state does: running jobs vanish
   * (GET answers 404), their checkpoints with them (a resume from one fails with
   * `checkpoint_unavailable`), and idempotency keys are free again. Faults and options stay.
   */
  restart(): void;
  close(): Promise<void>;
};

/** Start the simulator; resolves once it is listening. */
export async function startGpuSimulator(opts: GpuSimulatorOptions): Promise<GpuSimulator> {
  webhookSecretBytes(opts.webhookSecret); // fail fast on a malformed secret
  const log = opts.log ?? (() => {});
  const doFetch = opts.fetch ?? ((...args: Parameters<typeof fetch>) => fetch(...args));
  const store = new JobStore();
  const faults = new FaultInjector(opts.faults);
  const scopedFaults = new Map<string, FaultInjector>();
  const webhooks = new WebhookSender({
    secret: opts.webhookSecret,
    faults,
    fetch: doFetch,
    log,
    ...(opts.webhookRetryDelaysMs ? { retryDelaysMs: opts.webhookRetryDelaysMs } : {}),
  });
  const engine = new TrainingEngine({
    store,
    faults,
    webhooks,
    timeScale: opts.timeScale ?? 1,
    tickMs: opts.tickMs ?? 25,
    queueDelaySeconds: opts.queueDelaySeconds ?? 30,
    progressIntervalSeconds: opts.progressIntervalSeconds ?? 300,
    requestUploadUrls: opts.requestUploadUrls ?? httpUploadUrlRequester({ webhookSecret: opts.webhookSecret, fetch: doFetch }),
    fetch: doFetch,
    log,
  });
  const server = createSimulatorServer({ apiKey: opts.apiKey, store, engine, faults, scopedFaults, log });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, opts.host ?? "127.0.0.1", () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  engine.start();
  log(`GPU cluster simulator listening on http://${host}:${address.port} (time scale ${opts.timeScale ?? 1})`);

  return {
    url: `http://${host}:${address.port}`,
    jobs: {
      count: () => store.all().length,
      list: () => store.all().map((j) => toJobView(j)),
      get: (id) => {
        const j = store.get(id);
        return j ? toJobView(j) : undefined;
      },
      byIdempotencyKey: (key) => store.all().filter((j) => j.idempotencyKey === key).map((j) => toJobView(j)),
    },
    setFaults: (f, o) => {
      if (o?.idempotencyKey === undefined) faults.set(f);
      else scopedFaults.set(o.idempotencyKey, new FaultInjector(f));
    },
    webhooks: { deliveries: webhooks.deliveries, idle: () => webhooks.idle() },
    tick: () => engine.tick(),
    restart: () => {
      log("restart: every job forgotten");
      store.clear();
    },
    close: async () => {
      engine.stop();
      webhooks.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
