/**
 * Delivers the simulator's webhook events to a job's `callback_url`, signed
 * with Standard Webhooks, as a real provider does: in order per job,
 * retried with backoff on failure (same `webhook-id`, fresh timestamp and
 * signature), at least once. Faults can duplicate events or hold one back
 * until after the job's next event.
 */
import type { GpuWebhookEvent } from "../../functions/_shared/gpu/types.ts";
import { webhookHeaders } from "../../functions/_shared/webhooks.ts";
import type { FaultInjector } from "./faults.ts";
import { randomId } from "./random.ts";

/** One delivery attempt, for inspection in tests. */
export type DeliveryRecord = {
  webhookId: string;
  type: GpuWebhookEvent["type"];
  jobId: string;
  sequence: number;
  attempt: number;
  /** HTTP status, or 0 when the request failed. */
  status: number;
  /** Whether this copy was an injected duplicate. */
  duplicate: boolean;
};

type Message = { url: string; webhookId: string; event: GpuWebhookEvent; body: string; duplicate: boolean };

export type WebhookSenderOptions = {
  secret: string;
  faults: FaultInjector;
  fetch?: typeof fetch;
  log?: (message: string) => void;
  /** Waits between attempts, in real ms (default 100, 500, 2000: four attempts). */
  retryDelaysMs?: number[];
  timeoutMs?: number;
};

/** Queues and delivers webhook events. */
export class WebhookSender {
  readonly deliveries: DeliveryRecord[] = [];
  readonly #opts: WebhookSenderOptions;
  readonly #chains = new Map<string, Promise<void>>();
  readonly #held = new Map<string, Message>();
  #closed = false;

  constructor(opts: WebhookSenderOptions) {
    this.#opts = opts;
  }

  /** Queue an event for `url`. `final`: the job's last event (releases any held-back one after it). */
  send(url: string, event: GpuWebhookEvent, opts: { final?: boolean } = {}): void {
    const jobId = event.data.job_id;
    const msg: Message = { url, webhookId: randomId("msg"), event, body: JSON.stringify(event), duplicate: false };
    const held = this.#held.get(jobId);
    const faults = this.#opts.faults;
    if (!held && !opts.final && faults.chance(faults.current.outOfOrderWebhookRate)) {
      this.#held.set(jobId, msg);
      return;
    }
    this.#enqueue(jobId, msg);
    if (faults.chance(faults.current.duplicateWebhookRate)) this.#enqueue(jobId, { ...msg, duplicate: true });
    if (held) {
      this.#held.delete(jobId);
      this.#enqueue(jobId, held);
    }
  }

  /** Resolves when every queued delivery has finished (delivered or given up). */
  async idle(): Promise<void> {
    while (this.#chains.size > 0) await Promise.all([...this.#chains.values()]);
  }

  /** Stop: no new attempts; queued deliveries are dropped. */
  close(): void {
    this.#closed = true;
  }

  #enqueue(jobId: string, msg: Message): void {
    const prev = this.#chains.get(jobId) ?? Promise.resolve();
    const next = prev.then(() => this.#deliver(jobId, msg));
    this.#chains.set(jobId, next);
    void next.then(() => {
      if (this.#chains.get(jobId) === next) this.#chains.delete(jobId);
    });
  }

  async #deliver(jobId: string, msg: Message): Promise<void> {
    const delays = this.#opts.retryDelaysMs ?? [100, 500, 2000];
    for (let attempt = 1; attempt <= delays.length + 1 && !this.#closed; attempt++) {
      const status = await this.#post(msg);
      this.deliveries.push({
        webhookId: msg.webhookId,
        type: msg.event.type,
        jobId,
        sequence: msg.event.data.sequence,
        attempt,
        status,
        duplicate: msg.duplicate,
      });
      if (status >= 200 && status < 300) return;
      const delay = delays[attempt - 1];
      if (delay === undefined) break;
      await new Promise((r) => setTimeout(r, delay));
    }
    this.#opts.log?.(`webhook ${msg.event.type} ${msg.webhookId} for ${jobId} not delivered`);
  }

  async #post(msg: Message): Promise<number> {
    const doFetch = this.#opts.fetch ?? fetch;
    try {
      const headers = await webhookHeaders(this.#opts.secret, { id: msg.webhookId, body: msg.body });
      const res = await doFetch(msg.url, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: msg.body,
        signal: AbortSignal.timeout(this.#opts.timeoutMs ?? 5000),
      });
      await res.arrayBuffer().catch(() => undefined);
      return res.status;
    } catch {
      return 0;
    }
  }
}
