/**
 * Bulk load for bench/rls.ts: users, one ready dataset each, training jobs and
 * metrics points, generated in SQL (generate_series, INSERT ... SELECT) as the
 * superuser.
 *
 * Honest shortcuts, all undone before anything is measured:
 * - `session_replication_role = replica` for the load session only. It skips
 *   the per-row triggers (admission, quotas, config validation, dispatch
 *   enqueue, status events, owner fill) and the foreign-key triggers, which
 *   would turn a bulk load into a million API calls. The generated rows are
 *   consistent by construction, and `verify()` checks every foreign key with
 *   one anti-join each afterwards. Check constraints and unique indexes still
 *   apply.
 * - Secondary indexes (and unique constraints no foreign key depends on) are
 *   dropped before the load and recreated from their own definitions after
 *   it, as pg_restore does; the definitions are compared afterwards.
 * - Jobs and points are inserted by two sessions at once (older and newer
 *   half of the year), one per core.
 *
 * Distribution: ~1 heavy user per 1,000 owns 10 % of the jobs between them;
 * the others get exponentially distributed counts (mean ≈ jobs / users, some
 * with none). One job per 1,000 has 1,000–5,000 metrics points (the loss
 * curves the bench reads); the other points are spread exponentially over the
 * other jobs (mean ≈ 7 at the full sizes, many with none). Jobs are inserted
 * in creation order and points in time order (every 10 s from the job's
 * start), so a long job's points are interleaved with other jobs' as in a
 * live table.
 */
import pg from "pg";

export type Sizes = { users: number; jobs: number; points: number };

export type LoadPlan = Sizes & {
  heavyUsers: number;
  jobsPerHeavyUser: number;
  longJobs: number;
  longPoints: number;
};

export function planLoad(s: Sizes): LoadPlan {
  const heavyUsers = Math.max(1, Math.round(s.users / 1000));
  const jobsPerHeavyUser = Math.floor((s.jobs * 0.1) / heavyUsers);
  let longJobs = Math.max(1, Math.round(s.jobs / 1000));
  // Long curves average 3,000 points; keep them under half the points.
  if (longJobs * 3000 > s.points / 2) longJobs = Math.max(1, Math.floor(s.points / 6000));
  return { ...s, heavyUsers, jobsPerHeavyUser, longJobs, longPoints: longJobs * 3000 };
}

const TABLES = ["public.training_jobs", "public.metrics_points"];

type IndexDef = { tbl: string; name: string; def: string; conname: string | null; condef: string | null };

/** Secondary indexes and droppable unique constraints of the loaded tables. */
async function secondaryIndexes(c: pg.Client): Promise<IndexDef[]> {
  const { rows } = await c.query<IndexDef>(
    `select distinct i.indrelid::regclass::text as tbl, ic.relname as name, pg_catalog.pg_get_indexdef(i.indexrelid) as def,
            con.conname, pg_catalog.pg_get_constraintdef(con.oid) as condef
       from pg_catalog.pg_index i
       join pg_catalog.pg_class ic on ic.oid = i.indexrelid
       left join pg_catalog.pg_constraint con on con.conindid = i.indexrelid and con.conrelid = i.indrelid and con.contype in ('u', 'p')
      where i.indrelid = any ($1::regclass[])
        and not i.indisprimary
        and not exists (select 1 from pg_catalog.pg_constraint f where f.contype = 'f' and f.conindid = i.indexrelid)
      order by 1, 2`,
    [TABLES],
  );
  return rows;
}

async function timed(log: (m: string) => void, label: string, fn: () => Promise<unknown>): Promise<void> {
  const t = performance.now();
  await fn();
  log(`  ${label}: ${((performance.now() - t) / 1000).toFixed(1)} s`);
}

async function loadSession(dbUrl: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: dbUrl });
  await c.connect();
  await c.query(`set session_replication_role = replica`);
  await c.query(`set maintenance_work_mem = '1GB'`);
  await c.query(`set work_mem = '512MB'`);
  return c;
}

/** Run `sql(half)` for the older and the newer half of the jobs at once, one session each. */
async function inHalves(dbUrl: string, split: string, sql: (half: string) => string): Promise<void> {
  const halves = [`created_at < '${split}'::timestamptz`, `created_at >= '${split}'::timestamptz`];
  await Promise.all(halves.map(async (half) => {
    const c = await loadSession(dbUrl);
    try {
      await c.query(sql(half));
    } finally {
      await c.end();
    }
  }));
}

/** Load the data set through `dbUrl` (a superuser); returns the seconds it took. */
export async function load(dbUrl: string, p: LoadPlan, log: (m: string) => void): Promise<number> {
  const t0 = performance.now();
  const c = await loadSession(dbUrl);
  try {
    await c.query(`drop schema if exists bench_load cascade; create schema bench_load`);
    await steps(c, dbUrl, p, log);
    await c.query(`drop schema bench_load cascade`);
  } finally {
    await c.end();
  }
  return (performance.now() - t0) / 1000;
}

async function steps(c: pg.Client, dbUrl: string, p: LoadPlan, log: (m: string) => void): Promise<void> {
  const normalJobs = p.jobs - p.heavyUsers * p.jobsPerHeavyUser;
  const restPoints = p.points - p.longPoints;

  const indexes = await secondaryIndexes(c);
  await timed(log, `drop ${indexes.length} secondary indexes`, async () => {
    for (const ix of indexes) {
      await c.query(ix.conname ? `alter table ${ix.tbl} drop constraint ${ix.conname}` : `drop index public.${ix.name}`);
    }
  });

  await timed(log, `${p.users} users and datasets`, async () => {
    await c.query(`create unlogged table bench_load.users as
      select g as idx, gen_random_uuid() as id, gen_random_uuid() as dataset_id, g <= ${p.heavyUsers} as heavy
        from generate_series(1, ${p.users}) g`);
    await c.query(`insert into auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
        raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
      select '00000000-0000-0000-0000-000000000000', id, 'authenticated', 'authenticated', 'bench-' || idx || '@example.test', '',
             now() - interval '400 days', '{"provider":"email","providers":["email"]}', '{}', now() - interval '400 days', now()
        from bench_load.users`);
    await c.query(`insert into public.datasets (id, user_id, name, file_name, status, mime_type, size_bytes, format,
        progress_pct, validated_at, created_at, updated_at)
      select dataset_id, id, 'Support chats ' || idx, 'train.jsonl', 'ready', 'application/jsonl', 10485760, 'chat', 100,
             now() - interval '399 days', now() - interval '400 days', now() - interval '399 days'
        from bench_load.users`);
  });

  await timed(log, `plan ${p.jobs} jobs`, async () => {
    await c.query(`create unlogged table bench_load.user_jobs as
      with w as (select *, case when heavy then 0 else -ln(1 - random()) end as w from bench_load.users),
           c as (select *, sum(w) over (order by idx) as cw, sum(w) over () as tw from w)
      select id, dataset_id, case when heavy then ${p.jobsPerHeavyUser}
               else (floor(cw / tw * ${normalJobs}) - floor((cw - w) / tw * ${normalJobs}))::integer end as njobs
        from c`);
    await c.query(`create unlogged table bench_load.jobs as
      with j as (
        select gen_random_uuid() as id, u.id as user_id, u.dataset_id, k,
               now() - interval '5 minutes' - random() * interval '365 days' as created_at, random() as r
          from bench_load.user_jobs u cross join lateral generate_series(1, u.njobs) k
      ), ranked as (
        select j.*, row_number() over (order by r) as rn, -ln(1 - random()) as w from j
      ), c as (
        select ranked.*, sum(case when rn <= ${p.longJobs} then 0 else w end) over (order by id) as cw,
               sum(case when rn <= ${p.longJobs} then 0 else w end) over () as tw
          from ranked
      )
      select id, user_id, dataset_id, k, created_at, rn <= ${p.longJobs} as long, random() as coin,
             case when rn <= ${p.longJobs} then 1000 + (4000 * (rn - 1) / greatest(${p.longJobs} - 1, 1))::integer
                  when rn > ${p.longJobs} then (floor(cw / tw * ${restPoints}) - floor((cw - w) / tw * ${restPoints}))::integer
             end as npoints
        from c`);
  });

  const { rows: [mid] } = await c.query<{ split: string }>(
    `select percentile_disc(0.5) within group (order by created_at)::text as split from bench_load.jobs`,
  );
  const split = mid!.split;

  await timed(log, `insert training_jobs`, async () => {
    await inHalves(dbUrl, split, (half) => `insert into public.training_jobs (id, user_id, dataset_id, base_model_id, name, suffix, requested_config, config,
        status, error, external_job_id, current_step, total_steps, current_epoch, progress_pct, estimated_gpu_seconds,
        estimated_cost, actual_gpu_seconds, actual_cost, attempt_count, dispatch_attempts, status_changed_at, started_at,
        finished_at, created_at, updated_at, deleted_at)
      select id, user_id, dataset_id, 'llama-3.1-8b-instruct', 'Support bot v' || k, 'support-v' || k,
             '{"epochs": 3}',
             '{"epochs": 3, "learning_rate": 0.0002, "batch_size": 8, "gradient_accumulation_steps": 2, "warmup_ratio": 0.03, "max_seq_length": 4096, "lr_scheduler": "cosine", "quantization": "none", "seed": 42, "lora": {"rank": 16, "alpha": 32, "dropout": 0.05, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"], "use_rslora": false, "use_dora": false}}',
             st, case when st in ('failed', 'timed_out') then '{"code": "LT401", "message": "The GPU ran out of memory at step 42", "kind": "system"}'::jsonb end,
             case when st <> 'queued' then 'gpu-' || replace(id::text, '-', '') end,
             case when st <> 'queued' then greatest(npoints, 1) end, greatest(npoints, 100), 3,
             case when st = 'succeeded' then 100 when st = 'queued' then 0 else 42 end,
             3600, 4.2, case when st <> 'queued' then 3500 end, case when st <> 'queued' then 4.08 end,
             case when st = 'queued' then 0 else 1 end, case when st = 'queued' then 0 else 1 end,
             created_at + interval '2 hours', case when st <> 'queued' then created_at + interval '1 minute' end,
             case when st not in ('queued', 'running') then created_at + interval '2 hours' end,
             created_at, created_at + interval '2 hours',
             case when st not in ('queued', 'running') and coin < 0.05 then created_at + interval '30 days' end
        from (select *, case
                when long then 'succeeded'
                when created_at > now() - interval '1 day' and coin < 0.3 then 'queued'
                when created_at > now() - interval '1 day' and coin < 0.7 then 'running'
                when coin < 0.80 then 'succeeded' when coin < 0.92 then 'failed' when coin < 0.98 then 'cancelled' else 'timed_out'
              end::public.training_job_status as st from bench_load.jobs where ${half}) j
       order by created_at`);
  });

  await timed(log, `insert metrics_points`, async () => {
    await inHalves(dbUrl, split, (half) => `insert into public.metrics_points (job_id, user_id, step, epoch, train_loss, eval_loss, learning_rate,
        grad_norm, tokens_per_second, recorded_at, created_at)
      select j.id, j.user_id, s, round(3.0 * s / j.npoints, 3),
             2.2 * exp(-s / 400.0) + 0.35 + random() * 0.05,
             case when s % 50 = 0 then 2.3 * exp(-s / 400.0) + 0.42 + random() * 0.03 end,
             0.0002 * least(1.0, (s + 1) / 30.0), 0.5 + random(), 2500 + random() * 500,
             j.created_at + interval '1 minute' + s * interval '10 seconds',
             j.created_at + interval '1 minute' + s * interval '10 seconds'
        from bench_load.jobs j cross join lateral generate_series(0, j.npoints - 1) s
       where ${half.replace("created_at", "j.created_at")}
       order by j.created_at + s * interval '10 seconds'`);
  });

  await timed(log, `recreate ${indexes.length} secondary indexes`, async () => {
    for (const ix of indexes) {
      await c.query(ix.conname ? `alter table ${ix.tbl} add constraint ${ix.conname} ${ix.condef}` : ix.def);
    }
    const after = await secondaryIndexes(c);
    if (JSON.stringify(after) !== JSON.stringify(indexes)) throw new Error("Recreated indexes differ from the originals");
  });
  await c.query(`reset session_replication_role`);
  await timed(log, "verify foreign keys", () => verify(c));
  // Autovacuum would have processed these insert-only tables by now (PG 13+
  // vacuums on inserts): set hint bits and the visibility map, then ANALYZE.
  await timed(log, "vacuum (analyze)", async () => {
    for (const t of ["auth.users", "public.datasets", ...TABLES]) await c.query(`vacuum (analyze) ${t}`);
  });
}

/** Each foreign key the load skipped, checked with one anti-join. */
async function verify(c: pg.Client): Promise<void> {
  const checks: Record<string, string> = {
    "metrics_points → training_jobs": `select count(*) from public.metrics_points m
      where not exists (select 1 from public.training_jobs j where j.id = m.job_id and j.user_id = m.user_id)`,
    "training_jobs → datasets": `select count(*) from public.training_jobs j
      where not exists (select 1 from public.datasets d where d.id = j.dataset_id and d.user_id = j.user_id)`,
    "datasets → auth.users": `select count(*) from public.datasets d
      where not exists (select 1 from auth.users u where u.id = d.user_id)`,
  };
  for (const [name, sql] of Object.entries(checks)) {
    const { rows } = await c.query<{ count: string }>(sql);
    if (rows[0]?.count !== "0") throw new Error(`Foreign key ${name}: ${rows[0]?.count} orphan rows`);
  }
}

export type Picks = { typical: string[]; heavy: string[]; curves: Array<{ job: string; user: string; points: number }> };

/** Users and jobs the bench samples from, with a summary of the distribution. */
export async function picks(c: pg.Client): Promise<{ picks: Picks; summary: Record<string, string | number> }> {
  const users = await c.query<{ id: string; n: number }>(
    `select user_id as id, count(*)::integer as n from public.training_jobs group by user_id`,
  );
  const counts = users.rows.map((r) => r.n).sort((a, b) => a - b);
  const heavyMin = counts[counts.length - 1]! / 2;
  const curves = await c.query<{ job: string; user: string; points: number }>(
    `select job_id as job, user_id as "user", count(*)::integer as points from public.metrics_points
      group by job_id, user_id having count(*) >= 1000`,
  );
  const totals = await c.query<{ jobs: string; points: string; users: string; deleted: string; jobs_with_points: string }>(
    `select (select count(*) from public.training_jobs) as jobs, (select count(*) from public.metrics_points) as points,
            (select count(*) from auth.users) as users,
            (select count(*) from public.training_jobs where deleted_at is not null) as deleted,
            (select count(distinct job_id) from public.metrics_points) as jobs_with_points`,
  );
  const t = totals.rows[0]!;
  const q = (f: number) => counts[Math.floor(f * (counts.length - 1))]!;
  return {
    picks: {
      typical: users.rows.filter((r) => r.n < heavyMin).map((r) => r.id),
      heavy: users.rows.filter((r) => r.n >= heavyMin).map((r) => r.id),
      curves: curves.rows,
    },
    summary: {
      users: Number(t.users), jobs: Number(t.jobs), points: Number(t.points),
      "jobs per user (users with jobs): median / p90 / max": `${q(0.5)} / ${q(0.9)} / ${q(1)}`,
      "heavy users (jobs each)": `${users.rows.filter((r) => r.n >= heavyMin).length} (${Math.round(heavyMin * 2)})`,
      "soft-deleted jobs": Number(t.deleted),
      "jobs with any metrics": Number(t.jobs_with_points),
      "loss curves of 1,000+ points": `${curves.rows.length} (${Math.min(...curves.rows.map((r) => r.points))}–${Math.max(...curves.rows.map((r) => r.points))} points)`,
    },
  };
}
