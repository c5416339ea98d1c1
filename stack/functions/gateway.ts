/**
 * The `/functions/v1` relay, behaving like the one `supabase start` runs in
 * front of its edge runtime (supabase/cli internal/functions/serve/templates/main.ts):
 *
 * - `/<slug>/...` picks the function; unknown or disabled: 404 `Function not found`.
 * - `verify_jwt = true`: every method but OPTIONS needs `Authorization: Bearer <JWT>`
 *   signed (HS256) with the project secret and not expired, else 401 with
 *   `{ msg }` as the CLI's relay answers.
 * - The function sees the path from `/<slug>` on (Kong strips `/functions/v1`),
 *   the query string, the headers and the body; the response streams back.
 * - A function that cannot boot: 503 `BOOT_ERROR`; one whose process fails
 *   during a request: 500 `WORKER_ERROR` (the next request boots it anew).
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import { request } from "node:http";
import { sendJson, type RouteHandler } from "../api-server.ts";
import { verifyToken } from "../jwt.ts";
import type { FunctionWorker } from "./worker.ts";

const HOP_BY_HOP = new Set([
  "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer", "host",
]);

export const BOOT_ERROR = { code: "BOOT_ERROR", message: "Worker failed to boot (please check logs)" };
export const WORKER_ERROR = { code: "WORKER_ERROR", message: "Function exited due to an error (please check logs)" };

export type GatewayOptions = {
  workers: ReadonlyMap<string, FunctionWorker>;
  jwtSecret: string;
  log: (line: string) => void;
};

/** The route handler mounted at `/functions/v1`; `path` is what follows the prefix. */
export function createGateway(opts: GatewayOptions): RouteHandler {
  return async (req, res, path) => {
    const slug = path.split("/")[1] ?? "";
    const worker = opts.workers.get(slug);
    if (!worker) {
      res.writeHead(404, { "content-type": "text/plain" }).end("Function not found");
      return;
    }
    if (req.method !== "OPTIONS" && worker.spec.verifyJwt) {
      const denied = await authProblem(req.headers.authorization, opts.jwtSecret);
      if (denied) return sendJson(res, 401, { msg: denied });
    }
    let lease;
    try {
      lease = await worker.acquire();
    } catch (err) {
      opts.log(`[functions/${slug}] boot failed: ${(err as Error).message}`);
      return sendJson(res, 503, BOOT_ERROR);
    }
    const search = new URL(req.url ?? "/", "http://localhost").search;
    const failed = await forward(req, res, { port: lease.port, path: `${path}${search}` });
    if (failed) {
      opts.log(`[functions/${slug}] request failed: ${failed.message}; the next request starts a new process`);
      await worker.discard(lease.pid);
    }
  };
}

/** Why the gateway refuses this Authorization header, or null if it carries a valid JWT. */
async function authProblem(header: string | undefined, secret: string): Promise<string | null> {
  if (!header) return "Error: Missing authorization header";
  const [scheme, token] = header.split(" ");
  if (scheme !== "Bearer") return "Error: Auth header is not 'Bearer {token}'";
  try {
    await verifyToken(secret, token ?? "");
    return null;
  } catch {
    return "Invalid JWT";
  }
}

/**
 * Stream the request to the function process and its response back.
 * Resolves with the error if the connection to the process failed.
 */
function forward(req: IncomingMessage, res: ServerResponse, to: { port: number; path: string }): Promise<Error | null> {
  return new Promise((done) => {
    let callerGone = false;
    const upstream = request({
      host: "127.0.0.1",
      port: to.port,
      method: req.method,
      path: to.path,
      headers: forwardedHeaders(req),
      agent: false,
    });
    upstream.on("response", (fromFn) => {
      res.writeHead(fromFn.statusCode ?? 502, fromFn.statusMessage, withoutHopByHop(fromFn.headers));
      res.flushHeaders();
      fromFn.pipe(res);
      fromFn.on("end", () => done(null));
      fromFn.on("error", (err) => {
        res.destroy(err);
        done(err);
      });
    });
    upstream.on("error", (err) => {
      if (callerGone) return;
      if (res.headersSent) res.destroy(err);
      else sendJson(res, 500, WORKER_ERROR);
      done(err);
    });
    // The caller went away: stop the function's work on this request too.
    res.on("close", () => {
      if (!res.writableFinished) {
        callerGone = true;
        upstream.destroy();
        done(null);
      }
    });
    req.pipe(upstream);
  });
}

function withoutHopByHop(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  return Object.fromEntries(Object.entries(headers).filter(([k]) => !HOP_BY_HOP.has(k)));
}

function forwardedHeaders(req: IncomingMessage): IncomingHttpHeaders {
  const headers = withoutHopByHop(req.headers);
  const prior = req.headers["x-forwarded-for"];
  const client = req.socket.remoteAddress ?? "";
  headers["x-forwarded-for"] = prior ? `${String(prior)}, ${client}` : client;
  headers["x-forwarded-proto"] ??= "http";
  if (req.headers.host) headers["x-forwarded-host"] ??= req.headers.host;
  return headers;
}
