/**
 * Sends one queued pg_net request the way pg_net's libcurl worker does and
 * turns the outcome into a `net._http_response` row: final response after
 * redirects, header names as the server sent them, curl's error texts.
 * Uses node:http rather than fetch so header case and the request headers
 * stay close to curl's (fetch lowercases names and adds its own headers).
 */
import http from "node:http";
import https from "node:https";
import { isIP } from "node:net";

/** A row claimed from `net.http_request_queue` (bigint id as text, as pg returns it). */
export type QueuedRequest = {
  id: string;
  method: string;
  url: string;
  timeout_milliseconds: number;
  headers: Record<string, unknown> | null;
  body: Buffer | null;
};

/** A row for `net._http_response`, shaped as pg_net writes it. */
export type ResponseRow = {
  id: string;
  status_code: number | null;
  content_type: string | null;
  headers: Record<string, string> | null;
  content: string | null;
  timed_out: boolean;
  error_msg: string | null;
};

const MAX_REDIRECTS = 30; // libcurl's default CURLOPT_MAXREDIRS
const USER_AGENT = "pg_net/0.19 (stand-in)";

type Reply = { status: number; rawHeaders: string[]; contentType: string | undefined; body: Buffer };
type Timings = { t0: number; lookup?: number; connect?: number; secure?: number };

class TimeoutError extends Error {}

/** Send `req`; never rejects. Returns null when `stop` aborted it (the worker is shutting down). */
export async function sendRequest(req: QueuedRequest, stop: AbortSignal): Promise<ResponseRow | null> {
  const timings: Timings = { t0: performance.now() };
  const ac = new AbortController();
  const onStop = () => ac.abort(stop.reason);
  stop.addEventListener("abort", onStop, { once: true });
  // curl treats a timeout of 0 as "no timeout"
  const timer = req.timeout_milliseconds > 0
    ? setTimeout(() => ac.abort(new TimeoutError()), req.timeout_milliseconds)
    : undefined;
  try {
    const reply = await followRedirects(req, ac.signal, timings);
    return {
      id: req.id,
      status_code: reply.status,
      content_type: reply.contentType ?? null,
      headers: headerObject(reply.rawHeaders),
      content: bodyText(reply.body),
      timed_out: false,
      error_msg: null,
    };
  } catch (err) {
    if (stop.aborted) return null;
    const timedOut = ac.signal.reason instanceof TimeoutError;
    return {
      id: req.id, status_code: null, content_type: null, headers: null, content: null,
      timed_out: timedOut,
      error_msg: timedOut ? timeoutMessage(req.timeout_milliseconds, timings) : curlErrorText(err),
    };
  } finally {
    clearTimeout(timer);
    stop.removeEventListener("abort", onStop);
  }
}

async function followRedirects(req: QueuedRequest, signal: AbortSignal, timings: Timings): Promise<Reply> {
  let url = new URL(req.url);
  let method = req.method.toUpperCase();
  let body = req.body;
  const headers = requestHeaders(req.headers);
  for (let hop = 0; ; hop++) {
    const reply = await exchange(url, method, headers, body, signal, timings);
    const location = headerValue(reply.rawHeaders, "location");
    if (![301, 302, 303, 307, 308].includes(reply.status) || location === undefined) return reply;
    if (hop >= MAX_REDIRECTS) throw Object.assign(new Error("redirects"), { code: "TOO_MANY_REDIRECTS" });
    url = new URL(location, url);
    // libcurl turns a redirected POST into a GET on 301/302/303; custom methods (DELETE) are kept.
    if (method === "POST" && [301, 302, 303].includes(reply.status)) {
      method = "GET";
      body = null;
      for (const k of Object.keys(headers)) if (/^content-(type|length)$/i.test(k)) delete headers[k];
    }
  }
}

function exchange(
  url: URL, method: string, headers: Record<string, string>, body: Buffer | null, signal: AbortSignal, timings: Timings,
): Promise<Reply> {
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return Promise.reject(Object.assign(new Error("protocol"), { code: "UNSUPPORTED_PROTOCOL" }));
  }
  const hdrs = { ...headers };
  if (body) {
    if (!hasHeader(hdrs, "content-type")) hdrs["Content-Type"] = "application/x-www-form-urlencoded"; // as curl does
    hdrs["Content-Length"] = String(body.length);
  } else if (method === "POST") {
    hdrs["Content-Length"] = "0";
  }
  const mod = url.protocol === "https:" ? https : http;
  return new Promise<Reply>((resolve, reject) => {
    const r = mod.request(url, { method, headers: hdrs, signal, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", reject);
      res.on("close", () => {
        if (!res.complete) reject(Object.assign(new Error("aborted"), { code: "ECONNRESET" }));
      });
      res.on("end", () => resolve({
        status: res.statusCode ?? 0,
        rawHeaders: res.rawHeaders,
        contentType: res.headers["content-type"],
        body: Buffer.concat(chunks),
      }));
    });
    r.on("socket", (s) => {
      if (isIP(url.hostname.replace(/^\[|\]$/g, ""))) timings.lookup ??= timings.t0;
      s.once("lookup", () => (timings.lookup = performance.now()));
      s.once("connect", () => (timings.connect = performance.now()));
      s.once("secureConnect", () => (timings.secure = performance.now()));
    });
    r.on("error", reject);
    r.end(body ?? undefined);
  });
}

/** pg_net sends `key: value` for each jsonb entry (null values dropped), then its User-Agent. */
function requestHeaders(json: Record<string, unknown> | null): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(json ?? {})) {
    if (v === null || v === undefined) continue;
    out[k] = typeof v === "string" ? v : JSON.stringify(v);
  }
  if (!hasHeader(out, "user-agent")) out["User-Agent"] = USER_AGENT;
  if (!hasHeader(out, "accept")) out["Accept"] = "*/*";
  return out;
}

function hasHeader(h: Record<string, string>, name: string): boolean {
  return Object.keys(h).some((k) => k.toLowerCase() === name);
}

function headerValue(raw: string[], name: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === name) return raw[i + 1];
  return undefined;
}

/** Response headers as a jsonb object, names as received; a repeated name keeps its last value. */
function headerObject(raw: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < raw.length; i += 2) out[raw[i]!] = raw[i + 1]!;
  return out;
}

/** pg_net stores the body as a C string: empty means null, and it ends at the first NUL byte. */
function bodyText(body: Buffer): string | null {
  const nul = body.indexOf(0);
  const text = (nul >= 0 ? body.subarray(0, nul) : body).toString("utf8");
  return text === "" ? null : text;
}

const ms = (from: number | undefined, to: number | undefined) =>
  from === undefined || to === undefined ? 0 : Math.max(0, to - from);

/** pg_net's detailed_timeout_strerror() text, with the phases measured from socket events. */
function timeoutMessage(timeout: number, t: Timings): string {
  const now = performance.now();
  const total = now - t.t0;
  const connected = t.secure ?? t.connect;
  const dns = t.lookup === undefined ? total : ms(t.t0, t.lookup);
  const handshake = t.lookup === undefined ? 0 : connected === undefined ? ms(t.lookup, now) : ms(t.lookup, connected);
  const httpTime = connected === undefined ? 0 : ms(connected, now);
  return `Timeout of ${timeout} ms reached. Total time: ${total.toFixed(6)} ms (DNS time: ${dns.toFixed(6)} ms, ` +
    `TCP/SSL handshake time: ${handshake.toFixed(6)} ms, HTTP Request/Response time: ${httpTime.toFixed(6)} ms)`;
}

/** curl_easy_strerror() texts for the failures Node reports. */
function curlErrorText(err: unknown): string {
  const e = err as { code?: string; message?: string };
  if (e.message === "socket hang up") return "Server returned nothing (no headers, no data)";
  switch (e.code) {
    case "ECONNREFUSED": case "EHOSTUNREACH": case "ENETUNREACH": case "EADDRNOTAVAIL":
      return "Couldn't connect to server";
    case "ENOTFOUND": case "EAI_AGAIN": case "EAI_FAIL":
      return "Couldn't resolve host name";
    case "ECONNRESET": case "EPIPE":
      return "Failure when receiving data from the peer";
    case "UNSUPPORTED_PROTOCOL":
      return "Unsupported protocol";
    case "TOO_MANY_REDIRECTS":
      return "Number of redirects hit maximum amount";
    case "ERR_INVALID_URL":
      return "URL using bad/illegal format or missing URL";
    case "DEPTH_ZERO_SELF_SIGNED_CERT": case "SELF_SIGNED_CERT_IN_CHAIN": case "UNABLE_TO_VERIFY_LEAF_SIGNATURE":
    case "CERT_HAS_EXPIRED": case "ERR_TLS_CERT_ALTNAME_INVALID":
      return "SSL peer certificate or SSH remote key was not OK";
    default:
      return e.message ?? String(err);
  }
}
