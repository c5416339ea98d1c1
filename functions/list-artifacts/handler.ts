/**
 * `POST /functions/v1/list-artifacts` `{ job_id }` (or `GET ?job_id=`), with
 * the user's access token: the job's delivered files with signed download
 * URLs valid for an hour (artifact_download_ttl_seconds).
 *
 * Signing is Storage's job, so this cannot be a SQL RPC. The function acts as
 * the caller throughout: the rows are read the way PostgREST reads them
 * (role authenticated, the token's claims, so RLS shows only the caller's
 * artifacts), and the URLs are created with the caller's token, so
 * Storage's RLS applies too. URLs are returned, never stored. Frontends can
 * do the same themselves with supabase-js:
 * `supabase.storage.from('lora-models').createSignedUrls(paths, 3600)`.
 * `verify_jwt = true`: the gateway has checked the token's signature.
 * Pure: no Deno globals, so vitest calls it with real services.
 */
import { z } from "zod";
import { bearerToken } from "../_shared/auth.ts";
import type { Queryable } from "../_shared/db.ts";
import { AppError, MethodNotAllowedError, toAppError, toErrorResponse, UnauthorizedError, UpstreamError, ValidationError } from "../_shared/errors.ts";
import { corsHeaders, preflight, success } from "../_shared/http.ts";

/** A transaction-capable connection source (pg.Pool). */
export type Transactional = { connect(): Promise<Queryable & { release(): void }> };

/** supabase-js `storage` of a client acting with the caller's token. */
export type UserStorage = {
  from(bucket: string): {
    createSignedUrls(paths: string[], expiresIn: number): Promise<{
      data: Array<{ path: string | null; signedUrl: string | null; error: string | null }> | null;
      error: unknown;
    }>;
  };
};

export type ListArtifactsDeps = {
  db: Transactional;
  storageFor: (accessToken: string) => UserStorage;
  /** Override artifact_download_ttl_seconds (private.job_settings, default 3600). */
  ttlSeconds?: number;
  now?: () => number;
};

type ArtifactRow = { id: string; kind: string; storage_path: string; size_bytes: string | null; sha256: string | null; created_at: string };

const Body = z.object({ job_id: z.uuid() });
const UserClaims = z.object({ sub: z.uuid(), role: z.literal("authenticated") });

function claimsOf(token: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    const payload = token.split(".")[1] ?? "";
    const text = atob(payload.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(payload.length / 4) * 4, "="));
    parsed = JSON.parse(text);
  } catch {
    throw new UnauthorizedError("The bearer token is not a JWT");
  }
  return claimsObject(parsed);
}

function claimsObject(value: unknown): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new UnauthorizedError("The bearer token's payload is not a JSON object");
  return value as Record<string, unknown>;
}

/** Build the request handler. */
export function createHandler(deps: ListArtifactsDeps): (req: Request) => Promise<Response> {
  const now = deps.now ?? Date.now;
  return async (req) => {
    const early = preflight(req);
    if (early) return early;
    try {
      if (req.method !== "POST" && req.method !== "GET") throw new MethodNotAllowedError(`Method "${req.method}" is not allowed; use POST`);
      const token = bearerToken(req);
      if (!token) throw new UnauthorizedError("Missing bearer token; call with the user's access token");
      const claims = claimsOf(token);
      if (claims.role !== "authenticated") {
        throw new AppError("Sign in: artifacts are listed for the signed-in user", { code: "forbidden", status: 403 });
      }
      // A signed token can still carry claims auth.uid() cannot read; refuse it here instead of failing in SQL.
      if (!UserClaims.safeParse(claims).success) {
        throw new AppError("The access token's claims are invalid: \"sub\" must be a user id (UUID)", { code: "LT080", status: 401 });
      }
      const input = req.method === "GET"
        ? { job_id: new URL(req.url).searchParams.get("job_id") }
        : await req.json().catch(() => { throw new ValidationError("Request body is not valid JSON"); });
      const { job_id: jobId } = Body.parse(input);

      const c = await deps.db.connect();
      let job: { id: string } | undefined;
      let rows: ArtifactRow[];
      let ttl = 3600;
      try {
        await c.query("begin read only");
        const setting = await c.query<{ ttl: string | null }>(
          "select value::text as ttl from private.job_settings where name = 'artifact_download_ttl_seconds'",
        );
        ttl = deps.ttlSeconds ?? Number(setting.rows[0]?.ttl ?? 3600);
        await c.query("select set_config('role', 'authenticated', true), set_config('request.jwt.claims', $1, true)", [JSON.stringify(claims)]);
        job = (await c.query<{ id: string }>("select id from public.training_jobs where id = $1", [jobId])).rows[0];
        rows = (await c.query<ArtifactRow>(
          // Only files whose stored bytes were checked are delivered (migration 20261203160100).
          "select id, kind, storage_path, size_bytes, sha256, created_at from public.model_artifacts where job_id = $1 and verification = 'verified' order by storage_path",
          [jobId],
        )).rows;
        await c.query("commit");
      } catch (err) {
        await c.query("rollback").catch(() => {});
        throw err;
      } finally {
        c.release();
      }
      if (!job) throw new AppError(`Job "${jobId}" does not exist`, { code: "LT420", status: 404 });

      const expiresAt = new Date(now() + ttl * 1000).toISOString();
      let signed: Map<string, string> = new Map();
      if (rows.length > 0) {
        const { data, error } = await deps.storageFor(token).from("lora-models").createSignedUrls(rows.map((r) => r.storage_path), ttl);
        if (error || !data) throw new UpstreamError("Storage could not sign the download URLs", { cause: error });
        signed = new Map(data.filter((d) => d.path && d.signedUrl && !d.error).map((d) => [d.path!, d.signedUrl!]));
      }
      return success({
        job_id: jobId,
        expires_at: expiresAt,
        artifacts: rows.map((r) => ({
          id: r.id, kind: r.kind, path: r.storage_path, size_bytes: r.size_bytes === null ? null : Number(r.size_bytes),
          sha256: r.sha256, created_at: r.created_at, signed_url: signed.get(r.storage_path) ?? null,
        })),
      });
    } catch (err) {
      if (toAppError(err).status >= 500) console.error("list-artifacts: failed", err);
      return toErrorResponse(err, { headers: corsHeaders });
    }
  };
}
