/**
 * The pg_net stand-in's worker (sql/standins/pg_net.sql): takes committed
 * rows from `net.http_request_queue`, sends them and records the outcome in
 * `net._http_response` under the request's id, as pg_net's background worker
 * does. Woken by NOTIFY (delivered only at commit) and by a periodic poll.
 * Does nothing when the server has the real pg_net, whose own worker runs.
 */
import { setMaxListeners } from "node:events";
import pg from "pg";
import { sendRequest, type QueuedRequest, type ResponseRow } from "./net-http.ts";

export const NET_WORKER_APPLICATION_NAME = "pg_net stand-in worker";
const CHANNEL = "net_http_request";

export type NetWorkerOptions = {
  dbUrl: string;
  /** Requests in flight at once (pg_net's default batch is 200; a local stack needs fewer). */
  concurrency?: number;
  /** Safety-net poll of the queue, in ms. */
  pollMs?: number;
  /** How often expired responses (older than `pg_net.ttl`, default 6 hours) are deleted, in ms. */
  cleanupMs?: number;
  log?: (msg: string) => void;
};

/** Start the stand-in worker when `net` is our stand-in; a no-op handle otherwise. */
export async function startNetWorker(opts: NetWorkerOptions): Promise<{ stop: () => Promise<void> }> {
  if ((await detectNet(opts.dbUrl)) !== "stand-in") return { stop: async () => {} };
  const worker = new StandInWorker(opts);
  await worker.start();
  return { stop: () => worker.stop() };
}

async function detectNet(dbUrl: string): Promise<"real" | "stand-in" | "absent"> {
  const client = new pg.Client({ connectionString: dbUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ real: boolean; comment: string | null; present: boolean }>(`
      select exists (select 1 from pg_catalog.pg_extension where extname = 'pg_net') as real,
             exists (select 1 from pg_catalog.pg_namespace where nspname = 'net') as present,
             (select pg_catalog.obj_description(oid, 'pg_namespace') from pg_catalog.pg_namespace where nspname = 'net') as comment`);
    const r = rows[0]!;
    if (r.real) return "real";
    return r.present && /stand-in/i.test(r.comment ?? "") ? "stand-in" : "absent";
  } finally {
    await client.end();
  }
}

const CLAIM_SQL = `
  with rows as (
    select id from net.http_request_queue order by id limit $1 for update skip locked
  )
  delete from net.http_request_queue q using rows where q.id = rows.id
  returning q.id, q.method, q.url, q.timeout_milliseconds, q.headers, q.body`;

const INSERT_SQL = `
  insert into net._http_response (id, status_code, content, headers, content_type, timed_out, error_msg)
  select id, status_code, content, headers, content_type, timed_out, error_msg
  from jsonb_to_recordset($1::jsonb) as r(id bigint, status_code int, content text, headers jsonb,
                                          content_type text, timed_out bool, error_msg text)`;

// pg_net deletes responses older than pg_net.ttl in batches of pg_net.batch_size.
const CLEANUP_SQL = `
  with rows as (
    select ctid from net._http_response
    where created < now() - coalesce(nullif(current_setting('pg_net.ttl', true), ''), '6 hours')::interval
    order by created limit 200
  )
  delete from net._http_response r using rows where r.ctid = rows.ctid`;

/** Connection errors (class 08, 57 operator intervention, or no SQLSTATE at all) are worth retrying. */
function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code !== "string" || !/^[0-9A-Z]{5}$/.test(code) || code.startsWith("08") || code.startsWith("57");
}

class StandInWorker {
  private client: pg.Client | null = null;
  private stopped = false;
  private readonly stopSignal = new AbortController();
  private readonly inFlight = new Set<Promise<void>>();
  private pending: ResponseRow[] = [];
  private draining: Promise<void> | null = null;
  private drainAgain = false;
  private pollTimer: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private backoffMs = 0;
  private lastCleanup = 0;
  private readonly concurrency: number;
  private readonly log: (msg: string) => void;

  constructor(private readonly opts: NetWorkerOptions) {
    this.concurrency = opts.concurrency ?? 16;
    this.log = opts.log ?? ((m) => console.error(`net-worker: ${m}`));
    setMaxListeners(0, this.stopSignal.signal); // one listener per request in flight
  }

  async start(): Promise<void> {
    await this.connect();
    this.pollTimer = setInterval(() => this.kick(), this.opts.pollMs ?? 1000);
    this.pollTimer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.pollTimer);
    clearTimeout(this.reconnectTimer);
    // Requests in flight are dropped, as when pg_net's worker is terminated mid-request.
    this.stopSignal.abort(new Error("net worker stopped"));
    await Promise.allSettled([...this.inFlight]);
    await this.draining?.catch(() => {});
    await this.flushResponses().catch(() => {});
    const client = this.client;
    this.client = null;
    await client?.end().catch(() => {});
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.opts.dbUrl, application_name: NET_WORKER_APPLICATION_NAME });
    client.on("error", (err) => this.lost(client, err));
    client.on("end", () => this.lost(client));
    client.on("notification", () => this.kick());
    try {
      await client.connect();
      await client.query(`listen ${CHANNEL}`);
    } catch (err) {
      client.removeAllListeners("end");
      await client.end().catch(() => {});
      throw err;
    }
    if (this.stopped) {
      await client.end().catch(() => {});
      return;
    }
    this.client = client;
    this.backoffMs = 0;
    this.kick(); // requests committed while we were away
  }

  private lost(client: pg.Client, err?: Error): void {
    if (this.client !== client) return;
    this.client = null;
    client.end().catch(() => {});
    if (this.stopped) return;
    this.log(`connection lost (${err?.message ?? "ended"}); reconnecting`);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.reconnectTimer) return;
    this.backoffMs = Math.min(Math.max(this.backoffMs * 2, 250), 10_000);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.connect().catch((err: Error) => {
        this.log(`reconnect failed (${err.message}); retrying in ${this.backoffMs * 2} ms`);
        this.scheduleReconnect();
      });
    }, this.backoffMs);
  }

  /** Run a drain now, or once more after the current one. */
  private kick(): void {
    if (this.stopped) return;
    if (this.draining) {
      this.drainAgain = true;
      return;
    }
    this.draining = this.drain()
      .catch((err: Error) => {
        if (!isConnectionError(err)) this.log(`drain failed: ${err.message}`);
      })
      .finally(() => {
        this.draining = null;
        if (this.drainAgain) {
          this.drainAgain = false;
          this.kick();
        }
      });
  }

  private async drain(): Promise<void> {
    await this.flushResponses();
    await this.cleanup();
    while (!this.stopped && this.client && this.inFlight.size < this.concurrency) {
      const want = this.concurrency - this.inFlight.size;
      const { rows } = await this.client.query<QueuedRequest>(CLAIM_SQL, [want]);
      rows.sort((a, b) => (BigInt(a.id) < BigInt(b.id) ? -1 : 1));
      for (const row of rows) this.dispatch(row);
      if (rows.length < want) break;
    }
  }

  private dispatch(row: QueuedRequest): void {
    const p: Promise<void> = sendRequest(row, this.stopSignal.signal).then((res) => {
      this.inFlight.delete(p);
      if (res && !this.stopped) {
        this.pending.push(res);
        this.kick();
      }
    });
    this.inFlight.add(p);
  }

  private async flushResponses(): Promise<void> {
    if (!this.client || this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    try {
      await this.client.query(INSERT_SQL, [JSON.stringify(batch)]);
    } catch (err) {
      if (isConnectionError(err)) {
        this.pending = batch.concat(this.pending); // written after reconnecting
      } else {
        this.log(`dropping ${batch.length} response(s) that could not be stored: ${(err as Error).message}`);
      }
      throw err;
    }
  }

  private async cleanup(): Promise<void> {
    const now = Date.now();
    if (!this.client || now - this.lastCleanup < (this.opts.cleanupMs ?? 60_000)) return;
    this.lastCleanup = now;
    await this.client.query(CLEANUP_SQL);
  }
}
