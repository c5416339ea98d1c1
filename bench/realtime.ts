/**
 * Realtime benchmark: delivery latency from commit to client for 100 and
 * 1,000 subscribers (one user each), beside a baseline of the same clients
 * polling their row every second, in the same run; and the cost of the
 * per-subscriber RLS check alone.
 *
 *   npx tsx bench/realtime.ts [--subscribers 100,1000 --rate 5 --seconds 10]
 *
 * Boots its own throwaway stack (with durable commits, as `npm run stack`). For each subscriber count it creates that
 * many users with one dataset each and opens one realtime-js client per user
 * (ws transport, the user's token). A writer then renames a random user's
 * dataset `--rate` times a second for `--seconds`, recording when each commit
 * was acknowledged; latency is the time from that acknowledgement to the
 * owner's client receiving the change. Three ways of watching:
 *
 * - realtime, table-wide: every client subscribes to all of `datasets`
 *   (UPDATE) and RLS decides: each change is checked for every subscriber;
 * - realtime, filtered: every client subscribes to `id=eq.<its dataset>`,
 *   so a change is checked for its one subscriber;
 * - polling: every client GETs its row through PostgREST once a second
 *   (staggered), as supabase-js `.from('datasets').select().eq('id', ...)`
 *   does; latency is commit to the first poll that sees the new name.
 *
 * Then visibleAudiences() (stack/realtime/visibility.ts), the RLS check the
 * stand-in makes per change, is timed alone for 1, 100 and 1,000 distinct
 * subscribers. Prints p50/p95/max and any change delivered to a non-owner.
 */
import os from "node:os";
import pg from "pg";
import { RealtimeClient } from "@supabase/realtime-js";
import WebSocket from "ws";
import { SignJWT } from "jose";
import { visibleAudiences } from "../stack/realtime/visibility.ts";
import type { Change } from "../stack/realtime/wal.ts";
import { startThrowawayStack } from "../stack/throwaway.ts";

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? dflt : process.argv[i + 1]!;
}
const COUNTS = arg("subscribers", "100,1000").split(",").map(Number);
const RATE = Number(arg("rate", "5"));
const SECONDS = Number(arg("seconds", "10"));

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]! : NaN;
};
const fmt = (xs: number[]) => `p50 ${pct(xs, 0.5).toFixed(0)} ms  p95 ${pct(xs, 0.95).toFixed(0)} ms  max ${Math.max(...xs).toFixed(0)} ms  (${xs.length} changes)`;
const loadavg = () => os.loadavg().map((x) => x.toFixed(2)).join(" / ");
const until = async (probe: () => boolean, ms: number, what: string) => {
  const end = Date.now() + ms;
  while (!probe()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

type Subject = { id: string; token: string; dataset: string };

// Durable commits as in `npm run stack`: a throwaway stack's synchronous_commit = off lets WAL reach
// the decoder only when the WAL writer flushes it (up to 3 x wal_writer_delay later), which is not Realtime's latency.
const stack = await startThrowawayStack("bench-realtime", { ephemeral: false });
const s = stack.status;
const writer = new pg.Client({ connectionString: s.DB_URL });
await writer.connect();
const db = new pg.Pool({ connectionString: s.DB_URL, max: 2 });
console.log(`Realtime benchmark: ${RATE} changes/s for ${SECONDS} s per variant; ${os.cpus().length} CPUs; load ${loadavg()}`);

/** `n` users with one dataset each, inserted as the RLS bench does, with access tokens in GoTrue's claim shape. */
async function subjects(n: number): Promise<Subject[]> {
  const { rows } = await writer.query<{ id: string; dataset: string }>(
    `with u as (
       insert into auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
         raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
       select '00000000-0000-0000-0000-000000000000', gen_random_uuid(), 'authenticated', 'authenticated',
              'bench-rt-' || $1::int || '-' || g || '@example.test', '', now(),
              '{"provider":"email","providers":["email"]}', '{}', now(), now()
         from generate_series(1, $1::int) g
       returning id)
     insert into public.datasets (user_id, name, file_name) select id, 'bench', 'b.jsonl' from u returning user_id as id, id as dataset`,
    [n],
  );
  const key = new TextEncoder().encode(s.JWT_SECRET);
  return await Promise.all(rows.map(async (r) => ({
    ...r,
    token: await new SignJWT({ sub: r.id, role: "authenticated", aud: "authenticated", session_id: crypto.randomUUID() })
      .setProtectedHeader({ alg: "HS256", typ: "JWT" }).setIssuedAt().setExpirationTime("2h").sign(key),
  })));
}

/** Rename random subjects' datasets at RATE per second; returns name -> [owner dataset, commit-ack time]. */
async function write(users: Subject[], tag: string): Promise<Map<string, { dataset: string; at: number }>> {
  const sent = new Map<string, { dataset: string; at: number }>();
  const total = RATE * SECONDS;
  const start = Date.now();
  for (let i = 0; i < total; i++) {
    const wait = start + (i * 1000) / RATE - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const u = users[Math.floor(Math.random() * users.length)]!;
    const name = `${tag}-${i}`;
    await writer.query("update public.datasets set name = $2 where id = $1", [u.dataset, name]);
    sent.set(name, { dataset: u.dataset, at: Date.now() });
  }
  return sent;
}

async function realtime(users: Subject[], filtered: boolean): Promise<void> {
  const tag = `${filtered ? "f" : "t"}${users.length}`;
  const arrivals = new Map<string, number>();
  let leaks = 0;
  let subscribed = 0;
  const clients = users.map((u) => {
    const rt = new RealtimeClient(`${s.API_URL.replace("http", "ws")}/realtime/v1`, {
      params: { apikey: s.ANON_KEY }, transport: WebSocket as never,
    });
    void rt.setAuth(u.token);
    rt.channel(`bench-${u.id}`)
      .on("postgres_changes", { event: "UPDATE", schema: "public", table: "datasets", ...(filtered ? { filter: `id=eq.${u.dataset}` } : {}) } as never,
        (p: { new: { id: string; name: string } }) => {
          if (p.new.id !== u.dataset) leaks++;
          else if (!arrivals.has(p.new.name)) arrivals.set(p.new.name, Date.now());
        })
      .on("system", {}, (m: { status?: string }) => { if (m.status === "ok") subscribed++; })
      .subscribe();
    return rt;
  });
  const t0 = Date.now();
  await until(() => subscribed === users.length, 300_000, `${users.length} subscriptions`);
  const joinMs = Date.now() - t0;
  const sent = await write(users, tag);
  await until(() => arrivals.size >= sent.size, 60_000, "every change to arrive").catch((e: Error) => console.log(`  ${e.message}`));
  const lat = [...sent].filter(([n]) => arrivals.has(n)).map(([n, v]) => arrivals.get(n)! - v.at);
  console.log(`  realtime ${filtered ? "filtered  " : "table-wide"}  ${fmt(lat)}  lost ${sent.size - lat.length}, to non-owners ${leaks}; all joined in ${(joinMs / 1000).toFixed(1)} s`);
  for (const c of clients) {
    await c.removeAllChannels();
    c.disconnect();
  }
}

async function polling(users: Subject[]): Promise<void> {
  const seen = new Map<string, number>();
  let requests = 0;
  let stop = false;
  const loops = users.map(async (u, i) => {
    await new Promise((r) => setTimeout(r, (i * 1000) / users.length));
    while (!stop) {
      const next = Date.now() + 1000;
      const res = await fetch(`${s.REST_URL}/datasets?select=name&id=eq.${u.dataset}`, {
        headers: { apikey: s.ANON_KEY, authorization: `Bearer ${u.token}`, accept: "application/vnd.pgrst.object+json" },
      });
      requests++;
      const row = (await res.json()) as { name: string };
      if (!seen.has(row.name)) seen.set(row.name, Date.now());
      await new Promise((r) => setTimeout(r, Math.max(0, next - Date.now())));
    }
  });
  const t0 = Date.now();
  const sent = await write(users, `p${users.length}`);
  await until(() => [...sent.keys()].every((n) => seen.has(n) || overwritten(sent, n)), 30_000, "polls to see every change").catch(() => {});
  stop = true;
  await Promise.all(loops);
  const lat = [...sent].filter(([n]) => seen.has(n)).map(([n, v]) => seen.get(n)! - v.at);
  const rps = requests / ((Date.now() - t0) / 1000);
  console.log(`  polling 1 s          ${fmt(lat)}  (${sent.size - lat.length} overwritten before a poll); ${rps.toFixed(0)} requests/s`);
}

/** A name renamed again before any poll could see it. */
function overwritten(sent: Map<string, { dataset: string; at: number }>, name: string): boolean {
  const mine = sent.get(name)!;
  return [...sent.values()].some((v) => v.dataset === mine.dataset && v.at > mine.at);
}

async function rlsCost(users: Subject[]): Promise<void> {
  const { rows } = await db.query("select * from public.datasets where id = $1", [users[0]!.dataset]);
  const record = Object.fromEntries(Object.entries(rows[0]).map(([k, v]) => [k, v === null ? null : String(v)]));
  const change: Change = {
    schema: "public", table: "datasets", type: "UPDATE", commitTimestamp: new Date().toISOString(),
    columns: [], keyColumns: ["id"], record, oldRecord: { id: record.id ?? null }, rlsEnabled: true,
  };
  for (const n of [1, 100, 1000].filter((x) => x <= users.length)) {
    const audiences = users.slice(0, n).map((u) => ({ role: "authenticated", claims: { sub: u.id, role: "authenticated", aud: "authenticated" } }));
    const times: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t = performance.now();
      const visible = await visibleAudiences(db, change, audiences);
      times.push(performance.now() - t);
      if (visible.size !== 1) throw new Error(`expected exactly the owner to see the row, got ${visible.size}`);
    }
    console.log(`  RLS check for ${String(n).padStart(4)} distinct subscribers: p50 ${pct(times, 0.5).toFixed(1)} ms  p95 ${pct(times, 0.95).toFixed(1)} ms per change`);
  }
}

try {
  let all: Subject[] = [];
  for (const n of COUNTS) {
    const users = await subjects(n);
    all = users.length > all.length ? users : all;
    console.log(`\n${n} subscribers (${n} users), load ${loadavg()}`);
    await realtime(users, false);
    await realtime(users, true);
    await polling(users);
  }
  console.log(`\nPer-change RLS check alone (one round trip, each audience its own rolled-back transaction), load ${loadavg()}`);
  await rlsCost(all);
} finally {
  await writer.end();
  await db.end();
  await stack.stop();
}
