/**
 * Signed URLs. Creating one is a read (download URL) or a checked write
 * (upload URL) made as the caller, so RLS decides who may sign what; using
 * one needs no credentials: the token (HS256 with the JWT secret, payload
 * `{ url: "<bucket>/<name>" }`, plus `owner` and `upsert` for uploads) is the
 * authorisation and the Storage API acts as the service role.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { sendJson } from "../api-server.ts";
import { authenticate, SERVICE_CALLER } from "./auth.ts";
import type { StorageContext } from "./context.ts";
import { ERRORS } from "./errors.ts";
import { headerOf, queryOf, readJson, scopeOf } from "./http.ts";
import { mustBeStorableKeys } from "./keys.ts";
import { findObject, findObjectNames } from "./queries.ts";
import type { ObjectRef } from "./read.ts";
import { renderAsset } from "./render.ts";
import { signUrlToken, verifyJwt, type SignedUrlClaims } from "./tokens.ts";
import { canUpload, mustBeValidKey, uploadFromRequest } from "./upload.ts";

/** Real Storage's UPLOAD_SIGNED_URL_EXPIRATION_TIME default: two hours. */
const UPLOAD_URL_TTL_SECONDS = 2 * 60 * 60;

function expiresInOf(body: Record<string, unknown>): number {
  const v = body.expiresIn;
  if (v === undefined) throw ERRORS.invalidRequest("body must have required property 'expiresIn'");
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1) throw ERRORS.invalidRequest("body/expiresIn must be >= 1");
  return v;
}

/** POST /object/sign/{bucket}/{name} { expiresIn } -> { signedURL } */
export async function signObjectUrl(
  ctx: StorageContext, req: IncomingMessage, res: ServerResponse, path: string, ref: ObjectRef,
): Promise<void> {
  const caller = await authenticate(req, ctx.jwtSecret);
  const expiresIn = expiresInOf(await readJson(req));
  await ctx.db.transaction(caller, scopeOf(req, path, "storage.object.sign"), (c) => findObject(c, ref.bucket, ref.name));
  const url = `${ref.bucket}/${ref.name}`;
  const token = await signUrlToken(ctx.jwtSecret, { url }, expiresIn);
  sendJson(res, 200, { signedURL: `/object/sign/${url}?token=${token}` });
}

/** POST /object/sign/{bucket} { expiresIn, paths } -> [{ error, path, signedURL }] */
export async function signObjectUrls(
  ctx: StorageContext, req: IncomingMessage, res: ServerResponse, path: string, bucket: string,
): Promise<void> {
  const caller = await authenticate(req, ctx.jwtSecret);
  const body = await readJson(req);
  const expiresIn = expiresInOf(body);
  const paths = body.paths;
  if (!Array.isArray(paths) || paths.length === 0 || !paths.every((p) => typeof p === "string")) {
    throw ERRORS.invalidRequest("body/paths must be a non-empty array of strings");
  }
  mustBeStorableKeys(paths as string[]);
  const visible = await ctx.db.transaction(caller, scopeOf(req, path, "storage.object.sign_many"),
    (c) => findObjectNames(c, bucket, paths as string[]));
  const out = await Promise.all((paths as string[]).map(async (p) => {
    if (!visible.has(p)) return { error: "Either the object does not exist or you do not have access to it", path: p, signedURL: null };
    const url = `${bucket}/${p}`;
    return { error: null, path: p, signedURL: `/object/sign/${url}?token=${await signUrlToken(ctx.jwtSecret, { url }, expiresIn)}` };
  }));
  sendJson(res, 200, out);
}

async function verifySignedToken(ctx: StorageContext, req: IncomingMessage, ref: ObjectRef): Promise<SignedUrlClaims> {
  const token = queryOf(req).get("token");
  if (!token) throw ERRORS.invalidRequest("querystring must have required property 'token'");
  let claims: SignedUrlClaims;
  try {
    claims = await verifyJwt(ctx.jwtSecret, token);
  } catch (e) {
    throw ERRORS.invalidJwt((e as Error).message, e);
  }
  if (claims.url !== `${ref.bucket}/${ref.name}`) throw ERRORS.invalidSignature();
  if (typeof claims.exp !== "number" || claims.exp * 1000 < Date.now()) throw ERRORS.expiredSignature();
  return claims;
}

/** GET /object/sign/{bucket}/{name}?token=... : the bytes, no credentials needed. */
export async function getSignedObject(
  ctx: StorageContext, req: IncomingMessage, res: ServerResponse, path: string, ref: ObjectRef,
): Promise<void> {
  const claims = await verifySignedToken(ctx, req, ref);
  const obj = await ctx.db.transaction(SERVICE_CALLER, scopeOf(req, path, "storage.object.get_signed"),
    (c) => findObject(c, ref.bucket, ref.name));
  await renderAsset(ctx, req, res, obj!, {
    download: queryOf(req).get("download"),
    expires: new Date(claims.exp! * 1000).toUTCString(),
  });
}

/** POST /object/upload/sign/{bucket}/{name} -> { url, token }; the caller must be allowed to write there now. */
export async function signUploadUrl(
  ctx: StorageContext, req: IncomingMessage, res: ServerResponse, path: string, ref: ObjectRef,
): Promise<void> {
  const caller = await authenticate(req, ctx.jwtSecret);
  mustBeValidKey(ref.name);
  const upsert = headerOf(req, "x-upsert") === "true";
  await canUpload(ctx, {
    bucket: ref.bucket, name: ref.name, caller, owner: caller.sub, isUpsert: upsert,
    scope: scopeOf(req, path, "storage.object.sign_upload_url"),
  });
  const url = `${ref.bucket}/${ref.name}`;
  const token = await signUrlToken(ctx.jwtSecret, { owner: caller.sub, url, upsert }, UPLOAD_URL_TTL_SECONDS);
  sendJson(res, 200, { url: `/object/upload/sign/${url}?token=${token}`, token });
}

/** PUT /object/upload/sign/{bucket}/{name}?token=... : upload as the signer, exactly to that name. */
export async function uploadToSignedUrl(
  ctx: StorageContext, req: IncomingMessage, res: ServerResponse, path: string, ref: ObjectRef,
): Promise<void> {
  const claims = await verifySignedToken(ctx, req, ref);
  const { id, path: key } = await uploadFromRequest(ctx, req, {
    bucket: ref.bucket,
    name: ref.name,
    caller: SERVICE_CALLER,
    owner: typeof claims.owner === "string" ? claims.owner : undefined,
    isUpsert: claims.upsert === true,
    scope: scopeOf(req, path, "storage.object.upload_signed"),
  });
  sendJson(res, 200, { Id: id, Key: key });
}
