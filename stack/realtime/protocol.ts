/**
 * The Phoenix channel wire format as realtime-js speaks it with `vsn=2.0.0`:
 * JSON arrays `[join_ref, ref, topic, event, payload]`, plus the binary frames
 * realtime-js uses for user broadcasts (kind 3 from the client, kind 4 to it).
 */

export type PhxMessage = {
  join_ref: string | null;
  ref: string | null;
  topic: string;
  event: string;
  payload: Record<string, unknown>;
};

const USER_BROADCAST_PUSH = 3;
const USER_BROADCAST = 4;
const JSON_ENCODING = 1;

/** Decode a client frame; returns undefined for anything realtime-js would not send. */
export function decodeFrame(data: Buffer, isBinary: boolean): PhxMessage | undefined {
  if (!isBinary) {
    const parsed: unknown = JSON.parse(data.toString("utf8"));
    if (!Array.isArray(parsed) || parsed.length !== 5) return undefined;
    const [join_ref, ref, topic, event, payload] = parsed as [string | null, string | null, string, string, unknown];
    if (typeof topic !== "string" || typeof event !== "string") return undefined;
    return { join_ref, ref, topic, event, payload: (payload ?? {}) as Record<string, unknown> };
  }
  if (data.length < 7 || data[0] !== USER_BROADCAST_PUSH) return undefined;
  const [joinRefLen, refLen, topicLen, eventLen, metaLen, encoding] = [data[1]!, data[2]!, data[3]!, data[4]!, data[5]!, data[6]!];
  let at = 7;
  const take = (n: number) => data.toString("utf8", at, (at += n));
  const join_ref = take(joinRefLen) || null;
  const ref = take(refLen) || null;
  const topic = take(topicLen);
  const userEvent = take(eventLen);
  const meta = metaLen ? (JSON.parse(take(metaLen)) as Record<string, unknown>) : {};
  const body = data.subarray(at);
  const payload = encoding === JSON_ENCODING ? (JSON.parse(body.toString("utf8")) as unknown) : body;
  return { join_ref, ref, topic, event: "broadcast", payload: { ...meta, type: "broadcast", event: userEvent, payload } };
}

/** Encode a server message as JSON text. */
export function encodeMessage(m: PhxMessage): string {
  return JSON.stringify([m.join_ref, m.ref, m.topic, m.event, m.payload]);
}

/** Encode a user broadcast for a vsn 2 client (kind 4, JSON payload). */
export function encodeUserBroadcast(topic: string, event: string, payload: unknown): Buffer {
  const t = Buffer.from(topic);
  const e = Buffer.from(event);
  const body = Buffer.from(JSON.stringify(payload ?? {}));
  const header = Buffer.from([USER_BROADCAST, t.length, e.length, 0, JSON_ENCODING]);
  return Buffer.concat([header, t, e, body]);
}
