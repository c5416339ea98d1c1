/**
 * The front door of the GPU cluster's signed callbacks (job events and
 * upload-URL requests): read the raw body with a size cap, then verify its
 * Standard Webhooks signature over exactly those bytes (HMAC-SHA256,
 * constant-time comparison, 5-minute tolerance both ways, any of several
 * signatures and any of several accepted secrets). Nothing is parsed or
 * stored before the signature holds. Replays of a valid request are refused
 * later, by the webhook id stored with its effect (private.webhook_receipts).
 * Web APIs only (Deno and Node).
 */
import { AppError, MethodNotAllowedError } from "./errors.ts";
import { verifyWebhook, WebhookVerificationError } from "./webhooks.ts";

/** Default body cap: a progress event carries at most a few hundred metric points. */
export const DEFAULT_MAX_CALLBACK_BYTES = 512 * 1024;

/** 413: the body is larger than the cap (LT432). */
export class PayloadTooLargeError extends AppError {
  constructor(maxBytes: number) {
    super(`Request body exceeds ${maxBytes} bytes`, { code: "LT432", status: 413, details: { max_bytes: maxBytes } });
  }
}

/** A verified callback: its webhook id, timestamp and raw body. */
export type SignedCallback = { webhookId: string; timestamp: number; body: string };

/** Read at most `maxBytes` of the body; throws {@link PayloadTooLargeError} beyond. */
export async function readCappedBody(req: Request, maxBytes: number): Promise<Uint8Array> {
  const declared = Number(req.headers.get("content-length") ?? "NaN");
  if (Number.isFinite(declared) && declared > maxBytes) throw new PayloadTooLargeError(maxBytes);
  if (!req.body) return new Uint8Array();
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => {});
      throw new PayloadTooLargeError(maxBytes);
    }
    chunks.push(value);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/**
 * Read and verify a signed callback. Throws 405 for a method other than
 * POST, 413 (LT432) for an oversized body, 401 (LT430) for a missing,
 * malformed, stale, future or wrong signature, 500 when no secret is
 * configured.
 */
export async function readSignedCallback(
  req: Request,
  opts: { secrets: readonly string[]; maxBytes?: number; now?: () => number },
): Promise<SignedCallback> {
  if (req.method !== "POST") throw new MethodNotAllowedError(`Method "${req.method}" is not allowed; use POST`);
  if (opts.secrets.length === 0) {
    throw new AppError("No webhook secret is configured (GPU_WEBHOOK_SECRET)", { code: "config_error", status: 500 });
  }
  const bytes = await readCappedBody(req, opts.maxBytes ?? DEFAULT_MAX_CALLBACK_BYTES);
  let verified: { id: string; timestamp: number };
  try {
    verified = await verifyWebhook(opts.secrets, bytes, req.headers, { now: opts.now });
  } catch (err) {
    if (err instanceof WebhookVerificationError) {
      throw new AppError(err.message, { code: "LT430", status: 401, details: { reason: err.reason }, cause: err });
    }
    throw err;
  }
  return { webhookId: verified.id, timestamp: verified.timestamp, body: new TextDecoder().decode(bytes) };
}
