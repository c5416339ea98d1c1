/**
 * The same reads as bench/rls-queries.ts, end to end: supabase-js calls
 * against the stack's API URL, through the gateway's /rest/v1 to the real
 * PostgREST, timed from the call to the parsed result. bench/rls.ts runs
 * them in the same run as the SQL figures, so the difference between the
 * two is what HTTP, the gateway, PostgREST and JSON parsing add.
 */
import { createClient, type SupabaseClient } from "@supabase/supabase-js";
import type { StackStatus } from "../stack/index.ts";
import { mintUserToken } from "../stack/jwt.ts";
import type { Role } from "./rls-queries.ts";

export type Sample = { user: string; job?: string };

type Result = { data: unknown; error: { message: string; code?: string } | null };
/** A postgrest-js builder: awaiting it sends the request. */
type Call = PromiseLike<Result> & { setHeader: (name: string, value: string) => PromiseLike<Result> };
/** One supabase-js call, named as the SQL variant it repeats. */
export type HttpVariant = { name: string; role: Role; call: (c: SupabaseClient, s: Sample) => Call };

/** The columns the SQL job list selects (bench/rls-queries.ts LIST_COLUMNS). */
const LIST = "id,name,base_model_id,status,progress_pct,current_step,total_steps,estimated_cost,actual_cost,currency,error,created_at,started_at,finished_at";
const CURVE = "step,epoch,train_loss,eval_loss,learning_rate";

export function httpListVariants(suffix: string): HttpVariant[] {
  const list = (c: SupabaseClient) => c.from("training_jobs").select(LIST).is("deleted_at", null);
  return [
    { name: `list_rls_${suffix}`, role: "authenticated", call: (c) => list(c).order("created_at", { ascending: false }).limit(20) },
    {
      name: `list_rls_eq_${suffix}`, role: "authenticated",
      call: (c, s) => list(c).eq("user_id", s.user).order("created_at", { ascending: false }).limit(20),
    },
    {
      name: `list_service_${suffix}`, role: "service_role",
      call: (c, s) => list(c).eq("user_id", s.user).order("created_at", { ascending: false }).limit(20),
    },
  ];
}

export const HTTP_CURVE_VARIANTS: HttpVariant[] = [
  { name: "curve_rls", role: "authenticated", call: (c, s) => c.from("metrics_points").select(CURVE).eq("job_id", s.job!).order("step") },
  { name: "curve_service", role: "service_role", call: (c, s) => c.from("metrics_points").select(CURVE).eq("job_id", s.job!).order("step") },
];

export const HTTP_RPC_VARIANTS: HttpVariant[] = [
  { name: "rpc_rls", role: "authenticated", call: (c, s) => c.rpc("job_loss_curve", { job_id: s.job!, max_points: 500 }) },
  { name: "rpc_service", role: "service_role", call: (c, s) => c.rpc("job_loss_curve", { job_id: s.job!, max_points: 500 }) },
];

/** Node 20 has no global WebSocket; these clients never open Realtime. */
class NoWebSocket {
  constructor() {
    throw new Error("Realtime is not used by the benchmark");
  }
}

export type HttpClients = { token: (userId: string) => Promise<string>; user: SupabaseClient; service: SupabaseClient };

/**
 * One client with the anon key (requests carry the signed-in user's token) and one with the service key.
 * A frontend has one client for its one user; the bench has thousands of users, and a client each would
 * put their garbage collection into the timings (the gateway runs in this process).
 */
export async function httpClients(status: StackStatus): Promise<HttpClients> {
  const make = (key: string) => createClient(status.API_URL, key, {
    auth: { persistSession: false, autoRefreshToken: false },
    realtime: { transport: NoWebSocket as never },
  });
  const [user, service] = [make(status.ANON_KEY), make(status.SERVICE_ROLE_KEY)];
  // A client initialises its auth state on first use (once per page load in a frontend): not per request.
  await user.auth.getSession();
  await service.auth.getSession();
  const tokens = new Map<string, string>();
  return {
    user, service,
    token: async (id) => {
      let t = tokens.get(id);
      if (!t) {
        t = await mintUserToken(status.JWT_SECRET, id, { expiresIn: 24 * 3600 });
        tokens.set(id, t);
      }
      return t;
    },
  };
}

/** One timed call; a PostgREST error is a failed benchmark, not a fast sample. */
export async function httpRequest(clients: HttpClients, v: HttpVariant, s: Sample): Promise<{ ms: number; rows: number; body: unknown }> {
  const token = v.role === "authenticated" ? await clients.token(s.user) : undefined;
  const t0 = performance.now();
  // supabase-js sends the key as Authorization only when the request has none: this is the user's request.
  const r = await (token ? v.call(clients.user, s).setHeader("Authorization", `Bearer ${token}`) : v.call(clients.service, s));
  const ms = performance.now() - t0;
  if (r.error) throw new Error(`${v.name}: ${r.error.code ?? ""} ${r.error.message}`);
  return { ms, rows: Array.isArray(r.data) ? r.data.length : 1, body: r.data };
}
