/**
 * Request and response plumbing of the Auth stand-in: JSON bodies (read in
 * full, at most `BODY_LIMIT` bytes, parsed whatever the content type says, as
 * GoTrue's retrieveRequestParams does), the API version a client asked for,
 * and errors rendered in GoTrue's shapes. Bodies are never logged: they carry
 * passwords.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { sendJson } from "../api-server.ts";
import { API_VERSION_2024_01_01, AuthApiError, ERR, OAuthError } from "./errors.ts";

/** GoTrue reads small JSON bodies; the stand-in refuses anything over 1 MiB before parsing it. */
export const BODY_LIMIT = 1024 * 1024;

export type Json = Record<string, unknown>;

/** The body as a JSON object; an empty body is `{}`; anything else is GoTrue's 400 `bad_json`. */
export async function readJson(req: IncomingMessage, limit = BODY_LIMIT): Promise<Json> {
  const declared = Number(req.headers["content-length"] ?? 0);
  if (declared > limit) throw ERR.tooLarge(limit);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw ERR.tooLarge(limit);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  if (!text.trim()) return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    // V8's message quotes the body (and so possibly a password); say what Go's decoder would, without it.
    const truncated = /end of (JSON|data)/i.test((e as Error).message);
    throw ERR.badJson(truncated ? "unexpected end of JSON input" : "invalid character in JSON input");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw ERR.badJson(`cannot unmarshal ${Array.isArray(value) ? "array" : typeof value} into a parameters object`);
  }
  return value as Json;
}

/** The `X-Supabase-Api-Version` the client sent, as a UTC timestamp (0: none or invalid, GoTrue's initial version). */
export function apiVersionOf(req: IncomingMessage): number {
  const raw = req.headers["x-supabase-api-version"];
  const text = Array.isArray(raw) ? raw[0] : raw;
  if (!text || !/^\d{4}-\d{2}-\d{2}$/.test(text)) return 0;
  const t = Date.parse(`${text}T00:00:00Z`);
  return Number.isFinite(t) ? t : 0;
}

/** The bearer token of the Authorization header, or GoTrue's 401 `no_authorization`. */
export function bearerOf(req: IncomingMessage): string {
  const m = /^\s*bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? "");
  if (!m) throw ERR.noAuthorization();
  return m[1]!;
}

export function queryOf(req: IncomingMessage): URLSearchParams {
  return new URL(req.url ?? "/", "http://localhost").searchParams;
}

/** Send any thrown value as GoTrue would; unexpected ones are logged (message and stack, never the body). */
export function sendError(req: IncomingMessage, res: ServerResponse, thrown: unknown): void {
  if (!req.readableEnded) req.resume();
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (thrown instanceof OAuthError) {
    sendJson(res, 400, { error: thrown.error, error_description: thrown.description });
    return;
  }
  const err = thrown instanceof AuthApiError ? thrown : ERR.unexpected(thrown);
  if (err.status >= 500) {
    console.error(`auth stand-in: ${req.method} ${req.url?.split("?")[0]}:`, err.cause ?? err);
  }
  const version = apiVersionOf(req);
  // GoTrue echoes the closest version it knows, and nothing for the initial one.
  const headers: Record<string, string> = version >= API_VERSION_2024_01_01 ? { "x-supabase-api-version": "2024-01-01" } : {};
  sendJson(res, err.status, err.render(version), headers);
}
