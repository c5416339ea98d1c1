/**
 * The gateway's `/rest/v1` route, as Supabase's Kong serves it in front of
 * PostgREST (docker/volumes/api/kong.yml: `key-auth` with the anon and
 * service_role keys as consumers, `hide_credentials: true`, then a plain
 * proxy with the prefix stripped):
 *
 * - `apikey` (header, or `?apikey=` as key-auth also accepts) must be the
 *   stack's anon or service_role key: none is 401 `No API key found in
 *   request`, another value is 401 `Invalid authentication credentials`.
 *   CORS preflights (OPTIONS) pass without one, as Kong's cors plugin
 *   answers them before key-auth; PostgREST answers them here.
 * - The key is removed before forwarding; a request without `Authorization`
 *   is sent with `Authorization: Bearer <apikey>`, so the service_role key
 *   alone acts as service_role, as on a hosted project.
 * - Method, path after `/rest/v1`, query, every other header (Prefer,
 *   Accept, Range, Content-Type, Content-Profile, Accept-Profile...) and
 *   the body go to PostgREST; its status, headers and body come back
 *   unchanged, streamed.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import { request } from "node:http";
import { sendJson, type RouteHandler } from "./api-server.ts";

const HOP_BY_HOP = new Set([
  "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer", "host",
]);

export type RestGatewayOptions = {
  /** Where PostgREST listens, e.g. `http://127.0.0.1:3000`. */
  upstream: string;
  /** The API keys the gateway accepts (the stack's anon and service_role keys). */
  apiKeys: readonly string[];
};

/** The route handler mounted at `/rest/v1`; `path` is what follows the prefix. */
export function createRestGateway(opts: RestGatewayOptions): RouteHandler {
  const upstream = new URL(opts.upstream);
  const keys = new Set(opts.apiKeys);
  return async (req, res, path) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const fromQuery = url.searchParams.get("apikey");
    url.searchParams.delete("apikey");
    const apikey = firstHeader(req.headers.apikey) ?? fromQuery ?? undefined;
    if (req.method !== "OPTIONS") {
      if (!apikey) return sendJson(res, 401, { message: "No API key found in request" });
      if (!keys.has(apikey)) return sendJson(res, 401, { message: "Invalid authentication credentials" });
    }
    const headers = forwardedHeaders(req);
    delete headers.apikey;
    if (apikey && !headers.authorization) headers.authorization = `Bearer ${apikey}`;
    await proxy(req, res, { host: upstream.hostname, port: Number(upstream.port), path: `${path}${url.search}`, headers });
  };
}

function proxy(
  req: IncomingMessage, res: ServerResponse, to: { host: string; port: number; path: string; headers: IncomingHttpHeaders },
): Promise<void> {
  return new Promise((done) => {
    const upstream = request({ ...to, method: req.method, agent: false });
    upstream.on("response", (from) => {
      res.writeHead(from.statusCode ?? 502, from.statusMessage, withoutHopByHop(from.headers));
      from.pipe(res);
      from.on("end", () => done());
      from.on("error", (err) => {
        res.destroy(err);
        done();
      });
    });
    upstream.on("error", (err) => {
      // Kong answers 502 when its upstream is unreachable.
      if (res.headersSent) res.destroy(err);
      else sendJson(res, 502, { message: "An invalid response was received from the upstream server" });
      done();
    });
    res.on("close", () => {
      if (!res.writableFinished) {
        upstream.destroy();
        done();
      }
    });
    req.pipe(upstream);
  });
}

function firstHeader(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
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
