/**
 * Who may call a worker function: the service role only.
 *
 * Workers are woken by the database (pg_net, pg_cron) with the service-role
 * key from Vault, and by operators with the same key. The gateway's
 * `verify_jwt` already rejects unsigned or expired tokens; a worker must also
 * refuse the anon key and users' tokens, which are valid JWTs too. The key is
 * compared in constant time so response timing does not leak it.
 * Web APIs only (Deno and Node).
 */
import { ForbiddenError, UnauthorizedError } from "./errors.ts";

/** The bearer token of `Authorization: Bearer <token>`, or null. */
export function bearerToken(req: Request): string | null {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.get("authorization") ?? "");
  return match ? match[1]! : null;
}

/**
 * Whether two strings are equal, in time independent of where they differ
 * and of their lengths: both are hashed first, then every byte is compared.
 */
export async function constantTimeEqual(a: string, b: string): Promise<boolean> {
  const enc = new TextEncoder();
  const [x, y] = await Promise.all([
    crypto.subtle.digest("SHA-256", enc.encode(a)),
    crypto.subtle.digest("SHA-256", enc.encode(b)),
  ]);
  const u = new Uint8Array(x);
  const v = new Uint8Array(y);
  let diff = 0;
  for (let i = 0; i < u.length; i++) diff |= u[i]! ^ v[i]!;
  return diff === 0;
}

/**
 * Throws {@link UnauthorizedError} without a bearer token and
 * {@link ForbiddenError} unless it is exactly `serviceRoleKey`.
 */
export async function requireServiceRole(req: Request, serviceRoleKey: string): Promise<void> {
  const token = bearerToken(req);
  if (token === null) throw new UnauthorizedError("Missing bearer token; workers are called with the service-role key");
  if (!(await constantTimeEqual(token, serviceRoleKey))) {
    throw new ForbiddenError("Only the service role may call this worker");
  }
}
