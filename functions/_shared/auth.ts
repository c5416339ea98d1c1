/**
 * Who may call a worker function: the database's wake-up or the service role.
 *
 * The database (pg_net, pg_cron through private.invoke_worker) wakes workers
 * with the Vault secret `worker_wakeup_secret` in the
 * `x-worker-wakeup-secret` header, never with the service-role key: request
 * rows in `net.http_request_queue` are readable by more roles than should see
 * that key. Operators call with the service-role key. Everyone else (the anon
 * key, users' tokens: valid JWTs too) is refused. Secrets are compared in
 * constant time so response timing does not leak them.
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

/** Header carrying the database's wake-up secret (private.invoke_worker). */
export const WAKEUP_HEADER = "x-worker-wakeup-secret";

/**
 * Allow a worker run for the database's wake-up (header
 * {@link WAKEUP_HEADER} equal to one of `wakeupSecrets`: several while
 * rotating) or the service-role key. Throws {@link UnauthorizedError}
 * when neither is presented and {@link ForbiddenError} when what is
 * presented is wrong.
 */
export async function requireWorkerCaller(
  req: Request,
  opts: { serviceRoleKey: string; wakeupSecrets?: readonly string[] },
): Promise<"wakeup" | "service_role"> {
  const presented = req.headers.get(WAKEUP_HEADER);
  if (presented !== null) {
    let ok = false;
    for (const secret of opts.wakeupSecrets ?? []) {
      // Every secret is compared, so timing does not reveal which one matched.
      if (await constantTimeEqual(presented, secret)) ok = true;
    }
    if (!ok) throw new ForbiddenError("Wrong worker wake-up secret");
    return "wakeup";
  }
  const token = bearerToken(req);
  if (token === null) {
    throw new UnauthorizedError("Missing wake-up secret or bearer token; workers are woken by the database or called with the service-role key");
  }
  if (!(await constantTimeEqual(token, opts.serviceRoleKey))) throw new ForbiddenError("Only the service role may call this worker");
  return "service_role";
}
