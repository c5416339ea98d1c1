/**
 * A Realtime feed for the demo: one channel with postgres_changes bindings,
 * whose changes the demo awaits instead of polling rows. Resolves once the
 * subscription is confirmed ("Subscribed to PostgreSQL"), so nothing
 * committed afterwards is missed.
 */
import type { RealtimePostgresChangesPayload } from "@supabase/supabase-js";
import type { DemoSupabase } from "./client.ts";

export type Row = Record<string, unknown>;
export type Change = RealtimePostgresChangesPayload<Row>;
export type Binding = { event: "INSERT" | "UPDATE" | "*"; table: string; filter: string };

export type Feed = {
  /** The changes received since the last call; waits for at least one, failing after `timeoutMs`. */
  next: (timeoutMs: number) => Promise<Change[]>;
  close: () => Promise<void>;
};

/** Subscribe to `bindings` on one channel and wait until Realtime confirms it. */
export async function subscribeFeed(supabase: DemoSupabase, topic: string, bindings: Binding[], timeoutMs = 30_000): Promise<Feed> {
  const queued: Change[] = [];
  let wake: (() => void) | undefined;
  let failure: Error | undefined;
  let channel = supabase.channel(topic);
  for (const b of bindings) {
    channel = channel.on("postgres_changes", { event: b.event, schema: "public", table: b.table, filter: b.filter } as never,
      (p: Change) => {
        queued.push(p);
        wake?.();
      });
  }
  const subscribed = new Promise<void>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`Realtime did not confirm "${topic}" in ${timeoutMs / 1000} s`)), timeoutMs);
    const broken = (err: Error) => {
      failure = err;
      clearTimeout(timer);
      fail(err);
      wake?.();
    };
    channel
      .on("system", {}, (s: { extension?: string; status?: string; message?: string }) => {
        if (s.extension === "postgres_changes" && s.status === "ok") {
          clearTimeout(timer);
          ok();
        } else if (s.status === "error") broken(new Error(`Realtime: ${s.message}`));
      })
      .subscribe((status, err) => {
        if (status === "CHANNEL_ERROR" || status === "TIMED_OUT" || status === "CLOSED") {
          broken(new Error(`Realtime channel "${topic}": ${status}${err ? ` (${err.message})` : ""}`));
        }
      });
  });
  await subscribed;
  return {
    next: async (ms) => {
      if (queued.length === 0 && !failure) {
        await new Promise<void>((ok) => {
          const timer = setTimeout(ok, ms);
          wake = () => (clearTimeout(timer), ok());
        });
        wake = undefined;
      }
      if (failure) throw failure;
      if (queued.length === 0) throw new Error(`No change on "${topic}" for ${ms / 1000} s`);
      return queued.splice(0);
    },
    close: async () => {
      await supabase.removeChannel(channel);
    },
  };
}
