/**
 * Request body limits for the gateway, per route prefix, in the spirit of
 * the nginx that fronts Supabase's Kong (client_max_body_size,
 * client_body_timeout, lingering close):
 *
 * - A declared `Content-Length` over the route's cap is answered 413 at
 *   once, before a byte of the body is read.
 * - `buffer` routes (functions, PostgREST, Auth: small JSON bodies) read the
 *   body first, up to the cap, and hand the route a complete in-memory copy:
 *   a chunked or lying body that grows past the cap is 413, one that stalls
 *   (no byte for `idleTimeoutMs`) or trickles past `totalTimeoutMs` is 408.
 *   The route never sees a partial body, so a function process is never
 *   left waiting on a client that is gone.
 * - `stream` routes (Storage uploads, up to the bucket's file_size_limit of
 *   500 MiB) stream as before; Storage enforces its own size limits while
 *   streaming, this layer only refuses an oversized `Content-Length` and a
 *   stalled body (408).
 * - After an early answer the connection is closed, but what the client is
 *   still sending is read and discarded for a short while first (nginx's
 *   lingering close), so it receives the 413 instead of a reset (EPIPE).
 * - A body longer than its `Content-Length` is a malformed request: Node's
 *   HTTP parser answers 400 and closes the connection by itself.
 */
import { IncomingMessage, type ServerResponse } from "node:http";
import type { RouteHandler } from "./api-server.ts";

export type BodyLimit = {
  maxBytes: number;
  mode: "buffer" | "stream";
  /** 408 when no byte arrives for this long while the body is incomplete. */
  idleTimeoutMs: number;
  /** buffer mode: 408 when the whole body takes longer than this. */
  totalTimeoutMs?: number;
  /** How the route renders a gateway error (Storage has its own shape). */
  render?: (status: number, code: string, message: string) => unknown;
};

export const MiB = 1024 * 1024;

/** LT codes of the gateway's body errors (docs/ERRORS.md). */
export const BODY_ERRORS = {
  tooLarge: { status: 413, code: "LT520" },
  timeout: { status: 408, code: "LT521" },
} as const;

/** The project's error body for functions and other JSON routes. */
export const renderAppError = (_status: number, code: string, message: string) => ({ error: { code, message } });

/** Storage API's error shape (statusCode as text), with its own names for these cases. */
export const renderStorageError = (status: number, _code: string, message: string) => ({
  statusCode: String(status),
  code: status === 413 ? "EntityTooLarge" : "RequestTimeout",
  error: status === 413 ? "Payload too large" : "Request Timeout",
  message,
});

const LINGER_MS = 2_000;
const LINGER_MAX_BYTES = 64 * MiB;

/** Wrap `handler` so its requests obey `limit`. */
export function withBodyLimit(handler: RouteHandler, limit: BodyLimit): RouteHandler {
  return async (req, res, path) => {
    const declared = req.headers["content-length"] === undefined ? undefined : Number(req.headers["content-length"]);
    if (declared !== undefined && declared > limit.maxBytes) {
      return refuse(req, res, limit, "tooLarge", `Request body of ${declared} bytes exceeds the ${limit.maxBytes}-byte limit of this route`);
    }
    if (limit.mode === "stream") {
      watchIdle(req, res, limit);
      return await handler(req, res, path);
    }
    const body = await readCapped(req, res, limit);
    if (body === null) return;
    return await handler(replay(req, body), res, path);
  };
}

type Failure = "tooLarge" | "timeout";

/** The whole body, or null after answering 413/408 (or when the client went away). */
function readCapped(req: IncomingMessage, res: ServerResponse, limit: BodyLimit): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (value: Buffer | null, failure?: [Failure, string]) => {
      if (settled) return;
      settled = true;
      clearTimeout(idle);
      clearTimeout(total);
      req.off("data", onData).off("end", onEnd).off("aborted", onGone).off("error", onGone);
      if (failure) refuse(req, res, limit, failure[0], failure[1]);
      resolve(value);
    };
    const stalled = () => finish(null, ["timeout", `No request body received for ${limit.idleTimeoutMs} ms`]);
    let idle = setTimeout(stalled, limit.idleTimeoutMs);
    const total = setTimeout(
      () => finish(null, ["timeout", `Request body not complete within ${limit.totalTimeoutMs} ms`]),
      limit.totalTimeoutMs ?? 2 ** 31 - 1,
    );
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit.maxBytes) return finish(null, ["tooLarge", `Request body exceeds the ${limit.maxBytes}-byte limit of this route`]);
      chunks.push(chunk);
      clearTimeout(idle);
      idle = setTimeout(stalled, limit.idleTimeoutMs);
    };
    const onEnd = () => finish(Buffer.concat(chunks, size));
    const onGone = () => finish(null);
    req.on("data", onData).on("end", onEnd).on("aborted", onGone).on("error", onGone);
  });
}

/** A complete request carrying `body`, on the same socket, for the route to read as usual. */
function replay(req: IncomingMessage, body: Buffer): IncomingMessage {
  const copy = new IncomingMessage(req.socket);
  copy.method = req.method;
  copy.url = req.url;
  copy.headers = req.headers;
  copy.rawHeaders = req.rawHeaders;
  copy.httpVersion = req.httpVersion;
  copy.httpVersionMajor = req.httpVersionMajor;
  copy.httpVersionMinor = req.httpVersionMinor;
  copy.complete = true;
  if (body.length > 0) copy.push(body);
  copy.push(null);
  return copy;
}

/** Stream mode: 408 when the body stalls; the parser's push is where every chunk passes first. */
function watchIdle(req: IncomingMessage, res: ServerResponse, limit: BodyLimit): void {
  if (req.complete) return;
  const stalled = () => {
    if (req.complete) return;
    refuse(req, res, limit, "timeout", `No request body received for ${limit.idleTimeoutMs} ms`, { linger: false });
  };
  let timer = setTimeout(stalled, limit.idleTimeoutMs);
  const push = req.push.bind(req);
  req.push = (chunk: unknown, encoding?: BufferEncoding) => {
    clearTimeout(timer);
    if (chunk !== null) timer = setTimeout(stalled, limit.idleTimeoutMs);
    return push(chunk, encoding);
  };
  req.once("close", () => clearTimeout(timer));
}

/** Answer with a body error and close the connection, lingering to read what the client still sends. */
function refuse(
  req: IncomingMessage, res: ServerResponse, limit: BodyLimit, failure: Failure, message: string,
  opts: { linger?: boolean } = {},
): void {
  const { status, code } = BODY_ERRORS[failure];
  const socket = req.socket;
  if (!res.headersSent) {
    const text = JSON.stringify((limit.render ?? renderAppError)(status, code, message));
    // No "Connection: close" when lingering: Node would destroy the socket as soon as the answer is flushed.
    const close: Record<string, string> = opts.linger === false ? { connection: "close" } : {};
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...close });
    res.end(text);
  }
  if (opts.linger === false) {
    if (res.writableFinished) socket.destroy();
    else res.once("finish", () => socket.destroy());
    return;
  }
  // Lingering close: drain (and drop) the rest for a while so the client reads the answer.
  let drained = 0;
  const stop = () => socket.destroy();
  let quiet = setTimeout(stop, LINGER_MS);
  req.on("data", (chunk: Buffer) => {
    drained += chunk.length;
    clearTimeout(quiet);
    quiet = drained > LINGER_MAX_BYTES ? setTimeout(stop, 0) : setTimeout(stop, LINGER_MS);
  });
  req.once("end", () => {
    clearTimeout(quiet);
    res.once("finish", stop);
    if (res.writableFinished) stop();
  });
  socket.once("close", () => clearTimeout(quiet));
  req.resume();
}

/** Limits per gateway prefix; prefixes not listed get {@link DEFAULT_LIMIT}. */
export function routeLimits(opts: { fileSizeLimit: number }): Record<string, BodyLimit> {
  return {
    // Edge Functions: JSON calls and signed callbacks (the functions cap those at 512 KiB themselves).
    "/functions/v1": { mode: "buffer", maxBytes: 2 * MiB, idleTimeoutMs: 10_000, totalTimeoutMs: 30_000 },
    "/rest/v1": { mode: "buffer", maxBytes: 10 * MiB, idleTimeoutMs: 10_000, totalTimeoutMs: 60_000 },
    "/auth/v1": { mode: "buffer", maxBytes: 1 * MiB, idleTimeoutMs: 10_000, totalTimeoutMs: 30_000 },
    // Uploads up to the global file_size_limit, plus room for a multipart envelope.
    "/storage/v1": { mode: "stream", maxBytes: opts.fileSizeLimit + MiB, idleTimeoutMs: 30_000, render: renderStorageError },
  };
}

export const DEFAULT_LIMIT: BodyLimit = { mode: "buffer", maxBytes: 2 * MiB, idleTimeoutMs: 10_000, totalTimeoutMs: 30_000 };

/** Every route of the gateway wrapped with its prefix's limit. */
export function withRouteLimits(
  routes: Record<string, RouteHandler>, limits: Record<string, BodyLimit>,
): Record<string, RouteHandler> {
  return Object.fromEntries(Object.entries(routes).map(([prefix, h]) => [prefix, withBodyLimit(h, limits[prefix] ?? DEFAULT_LIMIT)]));
}
