-- RLS performance: indexes and planner statistics for the two reads a
-- frontend makes most, measured by bench/rls.ts (10,000 users, 1,000,000
-- jobs, 10,000,000 metrics points; docs/BENCHMARKS.md, "Schema and RLS").
--
-- 1. The job list ("my 20 most recent jobs") read every job of the user and
--    sorted them: 10,000 heap pages for a user with 10,000 jobs, 150-200 ms
--    at p50, with or without RLS. An index on (user_id, created_at desc)
--    returns the first 20 entries in order. It replaces the plain user_id
--    index, which it makes redundant (it still leads with user_id, for the
--    policy and the foreign key to auth.users).
--
-- 2. Reads of one job's metrics under RLS filter on job_id and, through the
--    policy, on user_id. Postgres assumed the two independent and estimated
--    a job of thousands of points at 1 row (the job's share times one user
--    in 10,000), so job_loss_curve() scanned and sorted the whole job to
--    find its first and last step, where the service role reads one index
--    entry: RLS cost 1.15x the service role at p50 on a quiet machine, and
--    1.8x (14 ms against 8 ms) on a loaded one.
--    Dependency statistics tell the planner that job_id determines user_id;
--    the RLS plans then match the service role's.
--
-- 3. With those estimates, the planner would combine the plain user_id
--    index (every point of the user: 100,000 for a heavy user) with the
--    job's rows in a BitmapAnd, 10x slower for heavy users. An index on
--    (user_id, job_id) answers both conditions at once and replaces it.
--
-- Each create index blocks writes to its table while it builds (seconds per
-- million rows). On a large live project, create the two indexes first
-- with "create index concurrently" under the same names; this migration
-- then skips them.

create index if not exists training_jobs_user_id_created_at_idx
  on public.training_jobs (user_id, created_at desc);
comment on index public.training_jobs_user_id_created_at_idx is
  'A user''s jobs newest first: the job list (order by created_at desc limit n) reads only the rows it returns. Also serves the owner policy and the foreign key to auth.users.';
drop index if exists public.training_jobs_user_id_idx;

create statistics if not exists public.metrics_points_job_id_user_id_stats (dependencies)
  on job_id, user_id from public.metrics_points;
comment on statistics public.metrics_points_job_id_user_id_stats is
  'job_id determines user_id: without this, the owner policy (user_id = auth.uid()) makes the planner estimate a job''s points at 1 row.';

create index if not exists metrics_points_user_id_job_id_idx
  on public.metrics_points (user_id, job_id);
comment on index public.metrics_points_user_id_job_id_idx is
  'Owner policy column first, then the job: a job''s points under RLS are found with both conditions in one index, never by intersecting all of a user''s points with the job''s.';
drop index if exists public.metrics_points_user_id_idx;

-- Extended statistics are empty until the next analyze.
analyze public.metrics_points;
