/** Request/response plumbing shared by the Storage stand-in's routes. */
import type { IncomingMessage, ServerResponse } from "node:http";
import { sendJson } from "../api-server.ts";
import type { RequestScope } from "./db.ts";
import { ERRORS, toStorageError } from "./errors.ts";

/** The request's body as chunks, without destroying the request when the reader stops early. */
export function bodyChunks(req: IncomingMessage): AsyncIterable<Buffer> {
  return req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>;
}

/** Parse a JSON body (at most `limit` bytes); an empty body is `{}`. */
export async function readJson(req: IncomingMessage, limit = 1024 * 1024): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of bodyChunks(req)) {
    size += chunk.length;
    if (size > limit) throw ERRORS.entityTooLarge();
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString("utf8").trim();
  if (!text) return {};
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error("not an object");
    return value as Record<string, unknown>;
  } catch {
    throw ERRORS.invalidRequest("Body is not valid JSON");
  }
}

/** Query string parameters of the request. */
export function queryOf(req: IncomingMessage): URLSearchParams {
  return new URL(req.url ?? "/", "http://localhost").searchParams;
}

export function headerOf(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** What the transaction exposes as request.method / request.path / request.headers / storage.operation. */
export function scopeOf(req: IncomingMessage, path: string, operation: string): RequestScope {
  const headers: Record<string, unknown> = { ...req.headers };
  return { method: req.method ?? "", path: `/storage/v1${path}`, headers, operation };
}

/**
 * Send an error as real Storage renders it. An unread request body is
 * drained first so the client can finish sending and read the answer.
 */
export function sendError(req: IncomingMessage, res: ServerResponse, e: unknown): void {
  const err = toStorageError(e);
  if (res.headersSent) {
    // Mid-stream failure (typically the client went away): nothing left to tell it.
    res.destroy();
    return;
  }
  if (err.httpStatus >= 500) {
    // Like the real service, log what the client only sees summarised; full stack only for our own bugs.
    const detail = err.code === "InternalError" ? (err.cause ?? err) : `${err.code}: ${err.message}`;
    console.error(`storage stand-in: ${req.method} ${req.url?.split("?")[0]}:`, detail);
  }
  if (!req.readableEnded) req.resume();
  if (req.method === "HEAD") {
    res.writeHead(err.httpStatus, { "content-type": "application/json" });
    res.end();
    return;
  }
  sendJson(res, err.httpStatus, err.render());
}
