/**
 * The Storage API routes supabase-js's storage-js uses (paths relative to
 * `/storage/v1`), in the precedence real Storage's router gives them: the
 * fixed prefixes (list, sign, upload/sign, info, authenticated, public) win
 * over `/object/{bucket}/{name}`.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { sendJson } from "../api-server.ts";
import type { StorageContext } from "./context.ts";
import { ERRORS } from "./errors.ts";
import { mustBeStorableBucket, mustBeStorableKey } from "./keys.ts";
import { getObject, getObjectInfo, type ObjectRef } from "./read.ts";
import { getSignedObject, signObjectUrl, signObjectUrls, signUploadUrl, uploadToSignedUrl } from "./sign.ts";
import { listObjects, putObject, removeObject, removeObjects } from "./write.ts";

type Handler = (ctx: StorageContext, req: IncomingMessage, res: ServerResponse, path: string, ref: ObjectRef) => Promise<void>;
type Route = { methods: string[]; pattern: RegExp; handler: Handler };

const B = "([^/]+)"; // bucket
const N = "(.+)"; // object name (may contain "/")

const routes: Route[] = [
  { methods: ["POST"], pattern: re(`/object/list/${B}/?`), handler: (c, q, s, p, r) => listObjects(c, q, s, p, r.bucket) },
  { methods: ["POST"], pattern: re(`/object/sign/${B}/?`), handler: (c, q, s, p, r) => signObjectUrls(c, q, s, p, r.bucket) },
  { methods: ["POST"], pattern: re(`/object/sign/${B}/${N}`), handler: signObjectUrl },
  { methods: ["GET", "HEAD"], pattern: re(`/object/sign/${B}/${N}`), handler: getSignedObject },
  { methods: ["POST"], pattern: re(`/object/upload/sign/${B}/${N}`), handler: signUploadUrl },
  { methods: ["PUT"], pattern: re(`/object/upload/sign/${B}/${N}`), handler: uploadToSignedUrl },
  { methods: ["GET"], pattern: re(`/object/info/authenticated/${B}/${N}`), handler: read(getObjectInfo, "authenticated") },
  { methods: ["GET"], pattern: re(`/object/info/public/${B}/${N}`), handler: read(getObjectInfo, "public") },
  { methods: ["GET"], pattern: re(`/object/info/${B}/${N}`), handler: read(getObjectInfo, "default") },
  { methods: ["GET", "HEAD"], pattern: re(`/object/authenticated/${B}/${N}`), handler: read(getObject, "authenticated") },
  { methods: ["GET", "HEAD"], pattern: re(`/object/public/${B}/${N}`), handler: read(getObject, "public") },
  { methods: ["GET", "HEAD"], pattern: re(`/object/${B}/${N}`), handler: read(getObject, "default") },
  { methods: ["POST", "PUT"], pattern: re(`/object/${B}/${N}`), handler: putObject },
  { methods: ["DELETE"], pattern: re(`/object/${B}/?`), handler: (c, q, s, p, r) => removeObjects(c, q, s, p, r.bucket) },
  { methods: ["DELETE"], pattern: re(`/object/${B}/${N}`), handler: removeObject },
];

function re(path: string): RegExp {
  return new RegExp(`^${path}$`);
}

function read(fn: typeof getObject, mode: "authenticated" | "default" | "public"): Handler {
  return (ctx, req, res, path, ref) => fn(ctx, req, res, path, { ...ref, mode });
}

/** Dispatch one request; unknown routes answer like Fastify's 404. */
export async function route(ctx: StorageContext, req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
  const method = req.method ?? "GET";
  if (method === "OPTIONS") {
    res.writeHead(204, {
      "access-control-allow-origin": "*",
      "access-control-allow-methods": "GET, HEAD, POST, PUT, DELETE, OPTIONS",
      "access-control-allow-headers": "authorization, apikey, content-type, x-upsert, x-client-info, cache-control, x-metadata, range",
      "access-control-max-age": "3600",
    });
    res.end();
    return;
  }
  for (const r of routes) {
    if (!r.methods.includes(method)) continue;
    const m = r.pattern.exec(path);
    if (!m) continue;
    const ref = { bucket: decode(m[1]!), name: m[2] === undefined ? "" : decode(m[2]) };
    mustBeStorableBucket(ref.bucket);
    mustBeStorableKey(ref.name);
    res.setHeader("access-control-allow-origin", "*");
    await r.handler(ctx, req, res, path, ref);
    return;
  }
  if (!req.readableEnded) req.resume();
  sendJson(res, 404, { statusCode: 404, code: "not_found", error: "Not Found", message: `Route ${method}:${path} not found` });
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw ERRORS.invalidKey(segment);
  }
}
