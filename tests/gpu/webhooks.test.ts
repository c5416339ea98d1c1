import { describe, expect, it } from "vitest";
import {
  generateWebhookSecret,
  signWebhook,
  verifyWebhook,
  WebhookVerificationError,
  webhookHeaders,
  webhookSecretBytes,
} from "../../functions/_shared/webhooks.ts";

// Test vector from the Standard Webhooks reference implementation.
const VECTOR = {
  secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
  id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
  timestamp: 1614265330,
  body: '{"test": 2432232314}',
  signature: "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
};
const atVector = () => VECTOR.timestamp * 1000;
const vectorHeaders = () => ({
  "webhook-id": VECTOR.id,
  "webhook-timestamp": String(VECTOR.timestamp),
  "webhook-signature": VECTOR.signature,
});

async function rejection(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(WebhookVerificationError);
    expect((err as WebhookVerificationError).status).toBe(401);
    return (err as WebhookVerificationError).reason;
  }
  throw new Error("expected the webhook to be rejected");
}

describe("signWebhook()", () => {
  it("matches the Standard Webhooks reference signature", async () => {
    await expect(signWebhook(VECTOR.secret, VECTOR)).resolves.toBe(VECTOR.signature);
  });

  it("emits one v1 signature per secret, space-separated, for key rotation", async () => {
    const other = generateWebhookSecret();
    const header = await signWebhook([VECTOR.secret, other], VECTOR);
    const parts = header.split(" ");
    expect(parts).toHaveLength(2);
    expect(parts[0]).toBe(VECTOR.signature);
    expect(parts[1]).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
  });
});

describe("verifyWebhook()", () => {
  it("accepts a correctly signed message and returns its id and timestamp", async () => {
    await expect(verifyWebhook(VECTOR.secret, VECTOR.body, vectorHeaders(), { now: atVector })).resolves.toEqual({
      id: VECTOR.id,
      timestamp: VECTOR.timestamp,
    });
  });

  it("accepts the secret without its whsec_ prefix and headers in any case, or as a Headers object", async () => {
    const raw = VECTOR.secret.slice("whsec_".length);
    const upper = Object.fromEntries(Object.entries(vectorHeaders()).map(([k, v]) => [k.toUpperCase(), v]));
    await expect(verifyWebhook(raw, VECTOR.body, upper, { now: atVector })).resolves.toBeDefined();
    await expect(verifyWebhook(VECTOR.secret, VECTOR.body, new Headers(vectorHeaders()), { now: atVector })).resolves.toBeDefined();
  });

  it("rejects a tampered body", async () => {
    const tampered = VECTOR.body.replace("2432232314", "2432232315");
    expect(await rejection(verifyWebhook(VECTOR.secret, tampered, vectorHeaders(), { now: atVector }))).toBe("no_matching_signature");
  });

  it("rejects a tampered id or timestamp (both are signed)", async () => {
    const otherId = { ...vectorHeaders(), "webhook-id": "msg_other" };
    expect(await rejection(verifyWebhook(VECTOR.secret, VECTOR.body, otherId, { now: atVector }))).toBe("no_matching_signature");
    const otherTs = { ...vectorHeaders(), "webhook-timestamp": String(VECTOR.timestamp + 1) };
    expect(await rejection(verifyWebhook(VECTOR.secret, VECTOR.body, otherTs, { now: atVector }))).toBe("no_matching_signature");
  });

  it("rejects a message signed with another secret", async () => {
    const wrong = generateWebhookSecret();
    expect(await rejection(verifyWebhook(wrong, VECTOR.body, vectorHeaders(), { now: atVector }))).toBe("no_matching_signature");
  });

  it("rejects timestamps more than 5 minutes old or in the future, and accepts them at the limit", async () => {
    const at = (deltaSeconds: number) => () => (VECTOR.timestamp + deltaSeconds) * 1000;
    expect(await rejection(verifyWebhook(VECTOR.secret, VECTOR.body, vectorHeaders(), { now: at(301) }))).toBe("timestamp_too_old");
    expect(await rejection(verifyWebhook(VECTOR.secret, VECTOR.body, vectorHeaders(), { now: at(-301) }))).toBe("timestamp_too_new");
    await expect(verifyWebhook(VECTOR.secret, VECTOR.body, vectorHeaders(), { now: at(300) })).resolves.toBeDefined();
    await expect(verifyWebhook(VECTOR.secret, VECTOR.body, vectorHeaders(), { now: at(-300) })).resolves.toBeDefined();
  });

  it("accepts a header with several signatures when one of them is valid", async () => {
    const headers = {
      ...vectorHeaders(),
      "webhook-signature": `v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,abc ${VECTOR.signature} v1,bm9wZQ==`,
    };
    await expect(verifyWebhook(VECTOR.secret, VECTOR.body, headers, { now: atVector })).resolves.toBeDefined();
  });

  it("accepts a message signed with any of several configured secrets (receiver-side rotation)", async () => {
    const old = generateWebhookSecret();
    await expect(verifyWebhook([old, VECTOR.secret], VECTOR.body, vectorHeaders(), { now: atVector })).resolves.toBeDefined();
  });

  it.each([
    ["missing signature", { "webhook-signature": undefined }, "missing_headers"],
    ["missing id", { "webhook-id": undefined }, "missing_headers"],
    ["missing timestamp", { "webhook-timestamp": undefined }, "missing_headers"],
    ["non-numeric timestamp", { "webhook-timestamp": "hello" }, "invalid_timestamp"],
    ["signature without version", { "webhook-signature": "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=" }, "no_matching_signature"],
    ["signature with an unknown version only", { "webhook-signature": VECTOR.signature.replace("v1,", "v2,") }, "no_matching_signature"],
    ["truncated signature", { "webhook-signature": VECTOR.signature.slice(0, 10) }, "no_matching_signature"],
    ["empty v1 signature", { "webhook-signature": "v1," }, "no_matching_signature"],
    ["signature that is not base64", { "webhook-signature": "v1,***not base64***" }, "no_matching_signature"],
  ])("rejects a malformed header: %s", async (_name, override, reason) => {
    const headers: Record<string, string | undefined> = { ...vectorHeaders(), ...override };
    expect(await rejection(verifyWebhook(VECTOR.secret, VECTOR.body, headers, { now: atVector }))).toBe(reason);
  });

  it("verifies what webhookHeaders() produced for a fresh secret, over bytes as well as strings", async () => {
    const secret = generateWebhookSecret();
    const body = JSON.stringify({ type: "job.started", data: { n: "é" } });
    const headers = await webhookHeaders(secret, { id: "msg_1", body });
    await expect(verifyWebhook(secret, new TextEncoder().encode(body), headers)).resolves.toMatchObject({ id: "msg_1" });
  });
});

describe("webhookSecretBytes()", () => {
  it("rejects empty and malformed secrets", () => {
    expect(() => webhookSecretBytes("whsec_")).toThrow();
    expect(() => webhookSecretBytes("whsec_%%%")).toThrow();
    expect(webhookSecretBytes(VECTOR.secret)).toHaveLength(24);
  });
});
