-- Operations: pg_cron and pg_net health, and pruning.
--
-- ops.cron_job_health: each pg_cron job with its last run, runs and failures
-- over 24 h and a verdict (ok, failing, late, hung, never_run, inactive).
-- ops.failed_http_requests: pg_net responses that were errors, timeouts or
-- HTTP 4xx/5xx (pg_net keeps them for pg_net.ttl, 6 hours by default).
-- Pruning: cron.job_run_details grows by a row per job run (several a minute
-- here) and pg_cron never trims it, so ops.prune_cron_history() runs nightly
-- from pg_cron; ops.prune_http_responses() and ops.prune_metrics() are for
-- manual use. The cron objects are created only where pg_cron is installed,
-- as the project's schedules are.

create function ops.cron_expected_seconds(p_schedule text)
returns integer
language sql
immutable
set search_path = ''
as $$
  select case
    when p_schedule = '* * * * *' then 60
    when p_schedule ~ '^\*/[0-9]+ \* \* \* \*$' then 60 * split_part(split_part(p_schedule, ' ', 1), '/', 2)::integer
    when p_schedule ~ '^[0-9]+ seconds?$' then split_part(p_schedule, ' ', 1)::integer
  end
$$;
comment on function ops.cron_expected_seconds(text) is
  'Seconds between runs of a simple pg_cron schedule (''* * * * *'', ''*/N * * * *'', ''N seconds''); null for others.';

do $$
begin
  if not exists (select 1 from pg_catalog.pg_extension where extname = 'pg_cron') then
    raise notice 'pg_cron is not installed: no ops.cron_job_health view and no nightly pruning';
    return;
  end if;
  execute $v$
    create view ops.cron_job_health
    with (security_invoker = true)
    as
    select j.jobid, j.jobname::text as jobname, j.schedule::text as schedule, j.active, j.command::text as command,
           ops.cron_expected_seconds(j.schedule) as expected_every_seconds,
           last.start_time as last_start, last.end_time as last_end, last.status::text as last_status,
           last.return_message::text as last_message,
           coalesce(day.runs, 0) as runs_24h, coalesce(day.failed, 0) as failed_24h, day.last_success_at,
           fail.end_time as last_failure_at, fail.return_message::text as last_failure_message,
           case
             when not j.active then 'inactive'
             when last.runid is null then 'never_run'
             when last.status in ('starting', 'running') and last.start_time < now() - interval '10 minutes' then 'hung'
             when last.status = 'failed' then 'failing'
             when ops.cron_expected_seconds(j.schedule) is not null
                  and last.start_time < now() - 3 * ops.cron_expected_seconds(j.schedule) * interval '1 second' then 'late'
             else 'ok'
           end as health
      from cron.job j
      left join lateral (
        select d.runid, d.start_time, d.end_time, d.status, d.return_message
          from cron.job_run_details d where d.jobid = j.jobid order by d.runid desc limit 1) last on true
      left join lateral (
        select count(*) as runs, count(*) filter (where d.status = 'failed') as failed,
               max(d.end_time) filter (where d.status = 'succeeded') as last_success_at
          from cron.job_run_details d where d.jobid = j.jobid and d.start_time > now() - interval '24 hours') day on true
      left join lateral (
        select d.end_time, d.return_message
          from cron.job_run_details d where d.jobid = j.jobid and d.status = 'failed' order by d.runid desc limit 1) fail on true
  $v$;
  execute $c$
    comment on view ops.cron_job_health is
      'Each pg_cron job: schedule, last run and its message, runs and failures over 24 h, last success and last failure, and health: ok, failing (last run failed), late (no run for 3 intervals of a simple schedule), hung (running over 10 minutes), never_run, inactive.'
  $c$;
  execute 'revoke all on ops.cron_job_health from public, anon, authenticated, service_role';
end;
$$;

create view ops.failed_http_requests
with (security_invoker = true)
as
select r.id, r.created, r.status_code, r.timed_out, r.error_msg, left(r.content, 500) as content,
       case when r.timed_out then 'timeout'
            when r.error_msg is not null then 'network'
            when r.status_code >= 500 then 'server_error'
            when r.status_code >= 400 then 'client_error'
            else 'no_status' end as failure
  from net._http_response r
 where coalesce(r.timed_out, false) or r.error_msg is not null or r.status_code is null or r.status_code >= 400
 order by r.created desc;
comment on view ops.failed_http_requests is
  'pg_net requests (worker wake-ups from private.invoke_worker) that timed out, could not connect or got HTTP 4xx/5xx, newest first, while pg_net keeps responses (pg_net.ttl, 6 hours). pg_net does not keep the URL: match by time with the functions'' logs. 401/403: the Vault secret service_role_key is wrong; connection errors: project_url.';

create function ops.check_retention(p_keep interval, p_min interval)
returns interval
language plpgsql
immutable
set search_path = ''
as $$
begin
  if p_keep is null or p_keep < p_min then
    raise exception 'Keep at least %, got %', p_min, coalesce(p_keep::text, 'null') using errcode = '22023',
      hint = 'Pass how much recent history to keep, e.g. interval ''7 days''.';
  end if;
  return p_keep;
end;
$$;
comment on function ops.check_retention(interval, interval) is
  'p_keep, or 22023 when it is null or shorter than p_min (a guard against pruning what is still in use).';

create function ops.prune_cron_history(p_keep interval default interval '7 days')
returns bigint
language plpgsql
set search_path = ''
as $$
declare
  v_keep interval := ops.check_retention(p_keep, interval '1 hour');
  v_deleted bigint;
begin
  delete from cron.job_run_details d where d.end_time < now() - v_keep;
  get diagnostics v_deleted = row_count;
  perform ops.log_action('prune_cron_history', 'cron.job_run_details', null,
    jsonb_build_object('keep', v_keep::text, 'deleted', v_deleted));
  return v_deleted;
end;
$$;
comment on function ops.prune_cron_history(interval) is
  'Deletes cron.job_run_details rows of runs that ended more than p_keep ago (at least 1 hour; default 7 days); returns how many. Runs nightly from pg_cron (job ops-prune-cron-history). Logged in ops.runbook_log.';

create function ops.prune_http_responses(p_keep interval default interval '1 hour')
returns bigint
language plpgsql
set search_path = ''
as $$
declare
  v_keep interval := ops.check_retention(p_keep, interval '1 minute');
  v_deleted bigint;
begin
  delete from net._http_response r where r.created < now() - v_keep;
  get diagnostics v_deleted = row_count;
  perform ops.log_action('prune_http_responses', 'net._http_response', null,
    jsonb_build_object('keep', v_keep::text, 'deleted', v_deleted));
  return v_deleted;
end;
$$;
comment on function ops.prune_http_responses(interval) is
  'Deletes pg_net responses older than p_keep (at least 1 minute; default 1 hour), e.g. after a burst of failures was investigated; pg_net itself drops them after pg_net.ttl. Returns how many. Logged in ops.runbook_log.';

create function ops.prune_metrics(p_older_than interval default interval '90 days', p_keep_points integer default 500)
returns table (jobs integer, deleted bigint)
language plpgsql
set search_path = ''
as $$
declare
  v_older interval := ops.check_retention(p_older_than, interval '1 day');
  v_job uuid;
  v_jobs integer := 0;
  v_total bigint := 0;
  v_n bigint;
begin
  if p_keep_points is null or p_keep_points < 6 then
    raise exception 'Keep at least 6 points per job, got %', p_keep_points using errcode = '22023',
      hint = 'The loss curve keeps the first, last, minimum and maximum points of each bucket: 6 per bucket.';
  end if;
  for v_job in
    select j.id from public.training_jobs j
     where j.status in ('succeeded', 'failed', 'cancelled', 'timed_out') and j.finished_at < now() - v_older
       and (select count(*) from public.metrics_points m where m.job_id = j.id) > p_keep_points
     order by j.finished_at
  loop
    -- Keep exactly what the chart shows (public.job_loss_curve, M4 downsampling): extremes survive.
    delete from public.metrics_points m
     where m.job_id = v_job
       and m.step not in (select c.step from public.job_loss_curve(v_job, p_keep_points) c);
    get diagnostics v_n = row_count;
    v_jobs := v_jobs + 1;
    v_total := v_total + v_n;
  end loop;
  perform ops.log_action('prune_metrics', 'public.metrics_points', null,
    jsonb_build_object('older_than', v_older::text, 'keep_points', p_keep_points, 'jobs', v_jobs, 'deleted', v_total));
  return query select v_jobs, v_total;
end;
$$;
comment on function ops.prune_metrics(interval, integer) is
  'Thins the metrics of jobs finished more than p_older_than ago (at least 1 day; default 90 days) to the p_keep_points (default 500) that public.job_loss_curve() returns, so their charts look the same; checkpoints and events are untouched. Returns the jobs thinned and points deleted. Logged in ops.runbook_log.';

do $$
begin
  if exists (select 1 from pg_catalog.pg_extension where extname = 'pg_cron') then
    perform cron.schedule('ops-prune-cron-history', '37 3 * * *', 'select ops.prune_cron_history(interval ''7 days'')');
  end if;
end;
$$;

revoke all on all tables in schema ops from public, anon, authenticated, service_role;
revoke all on all functions in schema ops from public, anon, authenticated, service_role;
