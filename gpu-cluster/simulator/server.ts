/**
 * The simulator's HTTP API: the routes of `gpu-cluster/openapi.yaml`, bearer
 * authentication, idempotency keys, and request-level fault injection
 * (latency, hangs, 429, 5xx, capacity refusals, dropped responses).
 *
 * Plus an admin API that is not part of the contract (`/_sim/*`, same API
 * key), so tests in other processes can steer a shared simulator:
 * `POST /_sim/faults` `{ faults, idempotency_key? }` sets the faults of
 * every request, or only of requests about that idempotency key (submit
 * with it, lookup by it, get/cancel of its job), so concurrent tests do not
 * disturb each other; `GET /_sim/jobs[?idempotency_key=k][&metadata.<name>=v]`
 * lists jobs, however many a key or metadata value has; `POST /_sim/restart`
 * forgets every job, as a cluster restarted without its state would.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { SubmitJobRequestSchema } from "../../functions/_shared/gpu/types.ts";
import { FaultInjector, type GpuSimulatorFaults, type RequestFault, type SimOperation } from "./faults.ts";
import type { TrainingEngine } from "./engine.ts";
import { canonicalJson, type JobStore, toJobView } from "./store.ts";
import { SUPPORTED_GPUS } from "./training.ts";

export type ServerDeps = {
  apiKey: string;
  store: JobStore;
  engine: TrainingEngine;
  faults: FaultInjector;
  /** Faults for requests about one idempotency key, instead of `faults`. */
  scopedFaults: Map<string, FaultInjector>;
  log: (message: string) => void;
};

const MAX_BODY_BYTES = 1024 * 1024;

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryable = false,
    readonly details?: unknown,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify(body));
}

function sendError(res: ServerResponse, err: HttpError): void {
  const error = { code: err.code, message: err.message, retryable: err.retryable };
  send(res, err.status, { error: err.details === undefined ? error : { ...error, details: err.details } }, err.headers);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, "payload_too_large", "Request body exceeds 1 MiB");
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

type Route = { op: SimOperation; jobId?: string } | { op: "admin_faults" | "admin_jobs" | "admin_restart" };

function route(method: string, path: string): Route | HttpError {
  if (path === "/_sim/faults" && method === "POST") return { op: "admin_faults" };
  if (path === "/_sim/jobs" && method === "GET") return { op: "admin_jobs" };
  if (path === "/_sim/restart" && method === "POST") return { op: "admin_restart" };
  if (path === "/v1/jobs") {
    if (method === "POST") return { op: "submit" };
    if (method === "GET") return { op: "find" };
  } else {
    const m = /^\/v1\/jobs\/([^/]+)(\/cancel)?$/.exec(path);
    if (!m) return new HttpError(404, "not_found", `No route for "${path}"`);
    const jobId = decodeURIComponent(m[1]!);
    if (m[2] && method === "POST") return { op: "cancel", jobId };
    if (!m[2] && method === "GET") return { op: "get", jobId };
  }
  return new HttpError(405, "method_not_allowed", `${method} is not allowed on "${path}"`);
}

function faultError(fault: RequestFault): HttpError {
  const retryAfter = { "retry-after": String(fault.retryAfterSeconds) };
  if (fault.kind === "rate_limit") return new HttpError(429, "rate_limited", "Too many requests", true, undefined, retryAfter);
  if (fault.kind === "capacity") {
    return new HttpError(503, "capacity_unavailable", "No GPU capacity available; try again later", true, undefined, retryAfter);
  }
  if (fault.status === 503) {
    return new HttpError(503, "service_unavailable", "Service unavailable (injected)", true, undefined, retryAfter);
  }
  return new HttpError(fault.status, "internal_error", "Injected server error", true);
}

/** Build the simulator's HTTP server (not yet listening). */
export function createSimulatorServer(deps: ServerDeps): Server {
  const { store, engine } = deps;

  /** The idempotency key a request is about, if any. */
  function keyOf(r: Route, req: IncomingMessage, url: URL): string | undefined {
    if (r.op === "submit") {
      const k = req.headers["idempotency-key"];
      return typeof k === "string" ? k : undefined;
    }
    if (r.op === "find") return url.searchParams.get("idempotency_key") ?? undefined;
    if ((r.op === "get" || r.op === "cancel") && r.jobId !== undefined) return store.get(r.jobId)?.idempotencyKey ?? undefined;
    return undefined;
  }

  async function setFaults(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let body: { faults?: GpuSimulatorFaults; idempotency_key?: string };
    try {
      body = JSON.parse(await readBody(req)) as typeof body;
    } catch {
      throw new HttpError(400, "invalid_request", "Request body is not valid JSON");
    }
    if (typeof body !== "object" || body === null || typeof body.faults !== "object" || body.faults === null) {
      throw new HttpError(400, "invalid_request", "Body must be { faults: {...}, idempotency_key?: string }");
    }
    if (body.idempotency_key === undefined) deps.faults.set(body.faults);
    else deps.scopedFaults.set(body.idempotency_key, new FaultInjector(body.faults));
    send(res, 200, { ok: true });
  }

  function listJobs(url: URL, res: ServerResponse): void {
    const key = url.searchParams.get("idempotency_key");
    const meta = [...url.searchParams].filter(([k]) => k.startsWith("metadata.")).map(([k, v]) => [k.slice(9), v] as const);
    const found = store.all().filter(
      (j) => (key === null || j.idempotencyKey === key) && meta.every(([k, v]) => j.request.metadata?.[k] === v),
    );
    send(res, 200, { data: found.map((j) => toJobView(j)) });
  }

  async function submit(req: IncomingMessage, res: ServerResponse, faults: FaultInjector): Promise<void> {
    const key = req.headers["idempotency-key"];
    if (Array.isArray(key) || (key !== undefined && !/^[\x21-\x7e]{1,255}$/.test(key))) {
      throw new HttpError(400, "invalid_request", "Idempotency-Key must be 1-255 printable ASCII characters");
    }
    let raw: unknown;
    try {
      raw = JSON.parse(await readBody(req));
    } catch (err) {
      if (err instanceof HttpError) throw err;
      throw new HttpError(400, "invalid_request", "Request body is not valid JSON");
    }
    const parsed = SubmitJobRequestSchema.safeParse(raw);
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i) => ({ path: i.path.map(String).join("."), message: i.message }));
      const configOnly = issues.every((i) => i.path.startsWith("config"));
      throw configOnly
        ? new HttpError(422, "invalid_config", "Training configuration is invalid", false, issues)
        : new HttpError(400, "invalid_request", "Request body failed validation", false, issues);
    }
    const gpu = parsed.data.config.gpu_type;
    if (gpu !== undefined && !(gpu in SUPPORTED_GPUS)) {
      throw new HttpError(422, "invalid_config", `Unsupported gpu_type "${gpu}" (one of ${Object.keys(SUPPORTED_GPUS).join(", ")})`);
    }
    const { early_stopping_patience: patience, validation } = parsed.data.config;
    if (patience !== undefined && patience !== null && validation === undefined) {
      throw new HttpError(422, "invalid_config", "early_stopping_patience needs validation data (config.validation)", false, [
        { path: "config.early_stopping_patience", message: "requires config.validation" },
      ]);
    }
    const resume = parsed.data.resume_from;
    const source = resume ? store.get(resume.job_id) : undefined;
    if (source) {
      // The checkpoint's adapter must have the shape this run trains.
      const shape = (c: typeof source.request.config) =>
        JSON.stringify([c.base_model, c.r, [...c.target_modules].sort(), c.use_dora]);
      if (shape(source.request.config) !== shape(parsed.data.config)) {
        throw new HttpError(422, "invalid_config",
          `Checkpoint "${resume!.checkpoint}" of job "${source.id}" was trained with another base model, r, target_modules or use_dora than this configuration`,
          false, [{ path: "resume_from", message: "the checkpoint's LoRA shape differs from config" }]);
      }
    }
    if (key !== undefined) {
      const existing = store.byKey(key);
      if (existing) {
        if (existing.fingerprint !== canonicalJson(parsed.data)) {
          throw new HttpError(409, "idempotency_key_reused", `Idempotency-Key "${key}" was used with a different request body`);
        }
        return send(res, 200, toJobView(existing), { "idempotent-replayed": "true", location: `/v1/jobs/${existing.id}` });
      }
    }
    const refusal = faults.capacityRefusal();
    if (refusal) throw faultError(refusal);
    const job = store.create(parsed.data, key ?? null);
    deps.log(`${job.id} submitted${key ? ` with key ${key}` : ""}`);
    send(res, 201, toJobView(job), { location: `/v1/jobs/${job.id}` });
  }

  function job(jobId: string | undefined) {
    const found = jobId === undefined ? undefined : store.get(jobId);
    if (!found) throw new HttpError(404, "job_not_found", `Job "${jobId}" does not exist`);
    return found;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://simulator");
    if (url.pathname === "/health" && req.method === "GET") return send(res, 200, { status: "ok" });
    const r = route(req.method ?? "GET", url.pathname);
    if (r instanceof HttpError) return sendError(res, r);
    const admin = r.op === "admin_faults" || r.op === "admin_jobs" || r.op === "admin_restart";
    const scopeKey = admin ? undefined : keyOf(r, req, url);
    const faults = (scopeKey === undefined ? undefined : deps.scopedFaults.get(scopeKey)) ?? deps.faults;
    const latency = admin ? 0 : (faults.current.latencyMs ?? 0);
    if (latency > 0) await new Promise((resolve) => setTimeout(resolve, latency));
    if (req.headers.authorization !== `Bearer ${deps.apiKey}`) {
      return sendError(res, new HttpError(401, "unauthorized", "Missing or invalid API key"));
    }
    if (r.op === "admin_faults") return await setFaults(req, res);
    if (r.op === "admin_jobs") return listJobs(url, res);
    if (r.op === "admin_restart") {
      store.clear();
      deps.log("restart: every job forgotten");
      return send(res, 200, { ok: true });
    }
    // Faults hit authenticated requests only (limits and capacity are per API key).
    const fault = faults.forRequest(r.op);
    if (fault?.kind === "timeout") return; // never answer; close() or the client ends the connection
    if (fault && fault.kind !== "lost_response") return sendError(res, faultError(fault));
    if (fault?.kind === "lost_response") {
      // Process the request, then drop the connection before the answer is out.
      res.write = () => true;
      res.end = (() => {
        req.socket.destroy();
        return res;
      }) as ServerResponse["end"];
    }
    switch (r.op) {
      case "submit":
        return await submit(req, res, faults);
      case "find": {
        const key = url.searchParams.get("idempotency_key");
        if (!key) throw new HttpError(400, "invalid_request", "Query parameter idempotency_key is required");
        const found = store.byKey(key);
        return send(res, 200, { data: found ? [toJobView(found)] : [] });
      }
      case "get": {
        const since = url.searchParams.get("metrics_since_step");
        if (since !== null && !/^\d{1,9}$/.test(since)) {
          throw new HttpError(400, "invalid_request", "metrics_since_step must be a non-negative integer");
        }
        return send(res, 200, toJobView(job(r.jobId), { metricsSinceStep: since === null ? 0 : Number(since) }));
      }
      case "cancel": {
        const found = job(r.jobId);
        if (found.status === "succeeded" || found.status === "failed") {
          throw new HttpError(409, "job_not_cancellable", `Job "${found.id}" already ${found.status}`);
        }
        engine.cancel(found);
        return send(res, 200, toJobView(found));
      }
    }
  }

  return createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent || res.destroyed) return;
      if (err instanceof HttpError) return sendError(res, err);
      deps.log(`unexpected error: ${String(err)}`);
      sendError(res, new HttpError(500, "internal_error", "Internal error", true));
    });
  });
}
