/** Realtime test helpers: a frontend-style subscriber that records what it receives. */
import type { RealtimeChannel, RealtimePostgresChangesPayload, SupabaseClient } from "@supabase/supabase-js";
import type pg from "pg";
import type { LocalUser } from "../../stack/jwt.ts";
import { newUser } from "../helpers/db.ts";
import { testStack } from "../helpers/stack.ts";
import { supabaseClient } from "../helpers/supabase.ts";
import { mintUserToken } from "../helpers/tokens.ts";
import { waitFor } from "../helpers/wait.ts";

export type Row = Record<string, unknown>;

export type Watcher = {
  client: SupabaseClient;
  channel: RealtimeChannel;
  changes: Array<RealtimePostgresChangesPayload<Row>>;
  system: Array<Record<string, unknown>>;
  statuses: string[];
  errors: string[];
  close: () => Promise<void>;
};

export type WatchOptions = {
  token: string;
  table?: string;
  event?: "*" | "INSERT" | "UPDATE" | "DELETE";
  filter?: string;
  topic?: string;
  /** Wait until the subscription is confirmed (default true). */
  await?: boolean;
};

/** Subscribe to postgres_changes as a signed-in frontend would, recording everything. */
export async function watch(opts: WatchOptions): Promise<Watcher> {
  const client = supabaseClient(testStack().ANON_KEY, opts.token);
  const w: Omit<Watcher, "channel" | "close"> = { client, changes: [], system: [], statuses: [], errors: [] };
  const channel = client
    .channel(opts.topic ?? `watch-${Math.random().toString(36).slice(2)}`)
    .on("postgres_changes", {
      event: opts.event ?? "*", schema: "public", table: opts.table ?? "datasets",
      ...(opts.filter ? { filter: opts.filter } : {}),
    } as never, (p: RealtimePostgresChangesPayload<Row>) => w.changes.push(p))
    .on("system", {}, (p: Record<string, unknown>) => w.system.push(p))
    .subscribe((status, err) => {
      w.statuses.push(status);
      if (err) w.errors.push(err.message);
    });
  const watcher: Watcher = {
    ...w, channel,
    close: async () => {
      await client.removeAllChannels();
      client.realtime.disconnect();
    },
  };
  if (opts.await !== false) {
    await waitFor(() => w.system.some((s) => s.extension === "postgres_changes" && s.status === "ok"), {
      timeoutMs: 30_000, what: "Subscribed to PostgreSQL",
    });
  }
  return watcher;
}

/** A committed user with a ready dataset row the test may change freely (no upload, so no worker touches it). */
export async function userWithDataset(db: pg.ClientBase, prefix: string): Promise<LocalUser & { dataset: string }> {
  const user = await newUser(db, prefix);
  const { rows } = await db.query(
    "insert into public.datasets (user_id, name, file_name) values ($1, $2, 'train.jsonl') returning id",
    [user.id, `${prefix} dataset`],
  );
  return { ...user, dataset: rows[0].id as string };
}

/** A token for `user` that expires in `seconds`. */
export const shortLivedToken = (user: LocalUser, seconds: number) =>
  mintUserToken(testStack().JWT_SECRET, user.id, { email: user.email, expiresIn: seconds });

/** Ids of the rows a watcher saw, in arrival order. */
export const idsSeen = (w: Watcher) =>
  w.changes.map((c) => ((c.new as Row)?.id ?? (c.old as Row)?.id) as string);
