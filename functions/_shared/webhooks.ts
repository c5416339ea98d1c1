/**
 * Standard Webhooks (https://www.standardwebhooks.com) signing and
 * verification, used for the GPU cluster's events and its requests for
 * artifact upload URLs.
 *
 * - Secret: `whsec_<base64 key>` (the prefix is optional when verifying).
 * - Signed content: `${webhook-id}.${webhook-timestamp}.${raw body}`,
 *   HMAC-SHA256, base64.
 * - Header `webhook-signature: v1,<sig>`, several space-separated during key
 *   rotation; any one valid `v1` signature is enough.
 * - `webhook-timestamp` is in Unix seconds and must be within 5 minutes of
 *   now in either direction (replay protection).
 *
 * Signatures are checked with `crypto.subtle.verify`, which compares in
 * constant time. Web APIs only, so it runs in Deno and Node alike.
 */
import { AppError } from "./errors.ts";

/** Allowed clock difference between sender and receiver, in seconds. */
export const WEBHOOK_TOLERANCE_SECONDS = 5 * 60;

const SECRET_PREFIX = "whsec_";
const encoder = new TextEncoder();

/** Why a webhook was rejected; stable, safe to log. */
export type WebhookRejection =
  | "missing_headers"
  | "invalid_timestamp"
  | "timestamp_too_old"
  | "timestamp_too_new"
  | "no_matching_signature";

/** 401: the request does not carry a valid, current Standard Webhooks signature. */
export class WebhookVerificationError extends AppError {
  readonly reason: WebhookRejection;
  constructor(reason: WebhookRejection, message: string) {
    super(message, { code: "invalid_webhook_signature", status: 401, details: { reason } });
    this.reason = reason;
  }
}

/** The three headers of a signed message. */
export type WebhookHeaders = {
  "webhook-id": string;
  "webhook-timestamp": string;
  "webhook-signature": string;
};

/** A message to sign: its id (stable across retries), Unix timestamp in seconds, and raw body. */
export type WebhookMessage = { id: string; timestamp: number; body: string | Uint8Array };

function base64Encode(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

function base64Decode(text: string): Uint8Array | null {
  try {
    return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}

/** Decode a `whsec_...` secret into its key bytes; throws on an empty or malformed secret. */
export function webhookSecretBytes(secret: string): Uint8Array {
  const raw = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  const key = raw.length > 0 ? base64Decode(raw) : null;
  if (!key || key.length === 0) throw new Error("Webhook secret must be 'whsec_' followed by non-empty base64");
  return key;
}

/** A fresh random secret in the `whsec_<base64>` format (24 random bytes). */
export function generateWebhookSecret(): string {
  return SECRET_PREFIX + base64Encode(crypto.getRandomValues(new Uint8Array(24)));
}

async function hmacKey(secret: string): Promise<CryptoKey> {
  const key = webhookSecretBytes(secret);
  return await crypto.subtle.importKey("raw", key as BufferSource, { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
    "verify",
  ]);
}

function signedContent(msg: WebhookMessage): Uint8Array {
  const prefix = encoder.encode(`${msg.id}.${msg.timestamp}.`);
  const body = typeof msg.body === "string" ? encoder.encode(msg.body) : msg.body;
  const out = new Uint8Array(prefix.length + body.length);
  out.set(prefix, 0);
  out.set(body, prefix.length);
  return out;
}

/**
 * The `webhook-signature` value for a message: `v1,<base64>`, one per secret,
 * space-separated (pass the old and the new secret while rotating keys).
 */
export async function signWebhook(secrets: string | readonly string[], msg: WebhookMessage): Promise<string> {
  const content = signedContent(msg);
  const list = typeof secrets === "string" ? [secrets] : secrets;
  const sigs = await Promise.all(
    list.map(async (s) => {
      const mac = await crypto.subtle.sign("HMAC", await hmacKey(s), content as BufferSource);
      return `v1,${base64Encode(new Uint8Array(mac))}`;
    }),
  );
  return sigs.join(" ");
}

/**
 * All three headers for a message. `timestamp` defaults to now; `now` is in
 * milliseconds so callers with a fake clock can pass theirs.
 */
export async function webhookHeaders(
  secrets: string | readonly string[],
  msg: { id: string; body: string | Uint8Array; timestamp?: number },
  opts: { now?: () => number } = {},
): Promise<WebhookHeaders> {
  const timestamp = msg.timestamp ?? Math.floor((opts.now ?? Date.now)() / 1000);
  const signature = await signWebhook(secrets, { id: msg.id, timestamp, body: msg.body });
  return { "webhook-id": msg.id, "webhook-timestamp": String(timestamp), "webhook-signature": signature };
}

function header(headers: Headers | Record<string, string | undefined>, name: string): string | undefined {
  if (headers instanceof Headers) return headers.get(name) ?? undefined;
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name) return v;
  return undefined;
}

/**
 * Verify a signed message; resolves to its id and timestamp, throws
 * {@link WebhookVerificationError} otherwise. `body` must be the raw body as
 * received (re-serialised JSON will not match). `secrets` may list several
 * accepted secrets (key rotation on the receiving side).
 */
export async function verifyWebhook(
  secrets: string | readonly string[],
  body: string | Uint8Array,
  headers: Headers | Record<string, string | undefined>,
  opts: { now?: () => number; toleranceSeconds?: number } = {},
): Promise<{ id: string; timestamp: number }> {
  const id = header(headers, "webhook-id");
  const ts = header(headers, "webhook-timestamp");
  const sig = header(headers, "webhook-signature");
  if (!id || !ts || !sig) {
    throw new WebhookVerificationError("missing_headers", "Missing webhook-id, webhook-timestamp or webhook-signature");
  }
  if (!/^\d{1,12}$/.test(ts)) throw new WebhookVerificationError("invalid_timestamp", `Invalid webhook-timestamp "${ts}"`);
  const timestamp = Number(ts);
  const now = Math.floor((opts.now ?? Date.now)() / 1000);
  const tolerance = opts.toleranceSeconds ?? WEBHOOK_TOLERANCE_SECONDS;
  if (now - timestamp > tolerance) throw new WebhookVerificationError("timestamp_too_old", "Webhook timestamp is too old");
  if (timestamp - now > tolerance) throw new WebhookVerificationError("timestamp_too_new", "Webhook timestamp is too new");

  const candidates = sig
    .split(" ")
    .map((part) => {
      const comma = part.indexOf(",");
      return comma < 0 ? null : { version: part.slice(0, comma), bytes: base64Decode(part.slice(comma + 1)) };
    })
    .filter((c): c is { version: string; bytes: Uint8Array } => c !== null && c.version === "v1" && c.bytes !== null);
  const content = signedContent({ id, timestamp, body });
  const keys = await Promise.all((typeof secrets === "string" ? [secrets] : secrets).map(hmacKey));
  for (const key of keys) {
    for (const c of candidates) {
      // crypto.subtle.verify recomputes the MAC and compares in constant time.
      if (await crypto.subtle.verify("HMAC", key, c.bytes as BufferSource, content as BufferSource)) {
        return { id, timestamp };
      }
    }
  }
  throw new WebhookVerificationError("no_matching_signature", "No matching webhook signature");
}
