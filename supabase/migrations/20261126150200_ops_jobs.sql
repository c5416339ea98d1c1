-- Operations: jobs that need an operator, failures, usage; force-fail and
-- force-cancel.
--
-- ops.stuck_jobs lists active jobs that are not moving, one row per
-- problem, with thresholds taken from private.job_settings so they follow
-- the pipeline's own tuning. ops.failures_by_code counts failed jobs, failed
-- runs that were retried automatically, and rejected datasets by error code.
-- ops.usage_by_user_month is GPU hours and money per user and UTC month of
-- the cost ledger. The two procedures change status only through the state
-- machine, write a job event the owner sees, stop the cluster job through
-- the poller's stop queue, and are logged in ops.runbook_log.

create view ops.stuck_jobs
with (security_invoker = true)
as
with settings as (
  select private.job_setting('dispatch_sweep_after_seconds') as sweep,
         private.job_setting('monitor_silence_warning_seconds') as silence,
         private.job_setting('monitor_stall_after_seconds') as stall,
         private.job_setting('delivery_timeout_seconds') as delivery,
         private.job_setting('max_training_duration_hours') as max_hours
)
select j.id as job_id, j.user_id, j.status, j.status_changed_at, now() - j.status_changed_at as in_status_for,
       p.problem, p.detail, p.action,
       j.external_job_id, j.current_step, j.total_steps, j.progress_pct, j.started_at, j.estimated_finish_at,
       m.last_report_at, m.last_progress_at, m.poll_failures
  from public.training_jobs j
  cross join settings s
  left join private.job_monitor m on m.job_id = j.id
  left join private.training_job_dispatch d on d.job_id = j.id
  cross join lateral (values
    ('pending_too_long', j.status = 'pending' and j.status_changed_at < now() - interval '1 hour',
      'Held in pending for over an hour; nothing moves it to queued',
      'Move it to queued (update public.training_jobs set status = ''queued'') or ops.force_cancel_job()'),
    ('queued_too_long', j.status = 'queued' and j.status_changed_at < now() - 2 * s.sweep * interval '1 second',
      format('Queued since %s with %s dispatch attempts', j.status_changed_at, j.dispatch_attempts),
      'Check ops.queue_health (training_dispatch) and the dispatch-training-job logs'),
    ('dispatch_stuck', j.status = 'dispatching' and coalesce(d.lease_until, j.status_changed_at) < now() - interval '5 minutes',
      format('Dispatching since %s; worker lease ended %s', j.status_changed_at, coalesce(d.lease_until::text, 'never taken')),
      'The safety net re-enqueues it; if it stays, check ops.archived_messages and ops.failed_http_requests'),
    ('cluster_silent', j.status = 'running' and m.last_report_at < now() - s.silence * interval '1 second',
      format('No answer from the GPU cluster since %s (%s failed polls)', m.last_report_at, m.poll_failures),
      'Check the cluster and ops.cron_job_health (poll-training-jobs); the monitor declares the run lost after monitor_lost_after_seconds'),
    ('no_progress', j.status = 'running' and m.cluster_status = 'running'
       and m.last_progress_at < now() - s.stall / 2 * interval '1 second',
      format('Step %s has not advanced since %s', coalesce(j.current_step, 0), m.last_progress_at),
      'The monitor stops and retries it at monitor_stall_after_seconds; ops.force_fail_job() to stop it now'),
    ('delivery_pending', j.status = 'running' and m.cluster_succeeded_at < now() - s.delivery / 2 * interval '1 second',
      format('The cluster finished at %s but the artifacts are not all registered', m.cluster_succeeded_at),
      'Check gpu-upload-urls and Storage; the run fails with LT413 at delivery_timeout_seconds'),
    ('overdue', j.status = 'running' and j.estimated_finish_at is not null
       and j.estimated_finish_at < now() - greatest(interval '10 minutes', (j.estimated_finish_at - coalesce(j.started_at, j.created_at)) / 2),
      format('Estimated to finish at %s; now at step %s of %s', j.estimated_finish_at, coalesce(j.current_step, 0), j.total_steps),
      'Usually a slow cluster; compare tokens_per_second in public.metrics_points with base_models.throughput_tokens_per_second'),
    ('near_time_limit', j.status = 'running' and j.started_at < now() - 0.9 * s.max_hours * interval '1 hour',
      format('Running since %s; the limit is %s hours (MAX_TRAINING_DURATION_HOURS)', j.started_at, s.max_hours),
      'It will time out (LT410); tell the owner to continue from its best checkpoint'),
    ('cancel_unconfirmed', j.status = 'cancelling' and j.status_changed_at < now() - interval '10 minutes',
      format('Cancelling since %s; cluster stop attempts: %s', j.status_changed_at,
        coalesce((select s2.attempts::text || coalesce(' (' || (s2.last_error ->> 'message') || ')', '')
                    from private.cluster_stops s2 where s2.job_id = j.id and s2.done_at is null limit 1), 'none pending')),
      'ops.force_cancel_job(job_id, reason, immediate => true) marks it cancelled; the stop keeps being retried')
  ) as p(problem, hit, detail, action)
 where j.status in ('pending', 'queued', 'dispatching', 'running', 'cancelling')
   and p.hit;
comment on view ops.stuck_jobs is
  'Active jobs that are not moving, one row per problem (pending_too_long, queued_too_long, dispatch_stuck, cluster_silent, no_progress, delivery_pending, overdue, near_time_limit, cancel_unconfirmed), with a detail and the suggested action. Thresholds come from private.job_settings.';

create view ops.failures_by_code
with (security_invoker = true)
as
with failures as (
  select 'job'::text as source, j.error ->> 'code' as code, j.error ->> 'kind' as kind,
         coalesce(j.finished_at, j.status_changed_at) as at, j.error ->> 'message' as message, j.id as subject_id
    from public.training_jobs j
   where j.status in ('failed', 'timed_out') and j.error is not null
  union all
  select 'retried_run', e.data #>> '{error,code}', e.data #>> '{error,kind}', e.created_at, e.data #>> '{error,message}', e.job_id
    from public.job_events e
   where e.type = 'training.retry_scheduled'
  union all
  select 'dataset', d.error ->> 'code', d.error ->> 'kind', coalesce(d.validated_at, d.updated_at), d.error ->> 'message', d.id
    from public.datasets d
   where d.status = 'error' and d.error is not null
)
select f.source, coalesce(f.code, 'unknown') as code, f.kind,
       count(*) as total,
       count(*) filter (where f.at > now() - interval '24 hours') as last_24h,
       count(*) filter (where f.at > now() - interval '7 days') as last_7d,
       max(f.at) as last_at,
       (array_agg(f.message order by f.at desc))[1] as latest_message,
       (array_agg(f.subject_id order by f.at desc))[1] as latest_subject_id
  from failures f
 group by f.source, coalesce(f.code, 'unknown'), f.kind
 order by last_at desc;
comment on view ops.failures_by_code is
  'Failures by error code (docs/ERRORS.md): failed and timed-out jobs (source job), failed runs retried automatically (retried_run, from training.retry_scheduled events) and rejected datasets (dataset), with counts over 24 h, 7 days and all time, and the latest message and subject id.';

create view ops.usage_by_user_month
with (security_invoker = true)
as
select c.user_id, u.email::text as email,
       (date_trunc('month', c.created_at at time zone 'UTC'))::date as month,
       c.currency,
       round(coalesce(sum(c.gpu_seconds) filter (where c.kind = 'usage'), 0) / 3600, 3) as gpu_hours,
       coalesce(sum(c.amount) filter (where c.kind = 'usage'), 0) as usage_amount,
       coalesce(sum(c.amount) filter (where c.kind = 'refund'), 0) as refunds,
       coalesce(sum(c.amount) filter (where c.kind in ('usage', 'refund')), 0) as charged,
       coalesce(sum(c.amount) filter (where c.kind = 'estimate'), 0) as estimated,
       count(distinct c.job_id) as jobs
  from public.cost_records c
  left join auth.users u on u.id = c.user_id
 group by c.user_id, u.email, (date_trunc('month', c.created_at at time zone 'UTC'))::date, c.currency
 order by month desc, charged desc;
comment on view ops.usage_by_user_month is
  'GPU hours (usage rows) and money per user, UTC calendar month of the ledger entry and currency: usage, refunds, charged (usage + refunds), estimates written that month, and how many jobs had entries. Quotas count spend by job creation month instead (docs/jobs.md).';

create function ops.locked_active_job(p_job_id uuid)
returns public.training_jobs
language plpgsql
set search_path = ''
as $$
declare
  v_job public.training_jobs;
begin
  select * into v_job from public.training_jobs j where j.id = p_job_id for update;
  if not found then
    raise exception 'Job "%" does not exist', p_job_id using errcode = 'LT510',
      hint = 'select job_id, status, problem from ops.stuck_jobs;';
  end if;
  if v_job.status in ('succeeded', 'failed', 'cancelled', 'timed_out') then
    raise exception 'Job "%" is already %', p_job_id, v_job.status using errcode = 'LT511',
      hint = 'Finished jobs never change; nothing to do.';
  end if;
  return v_job;
end;
$$;
comment on function ops.locked_active_job(uuid) is
  'Locks and returns an active job for a runbook function; LT510 when it does not exist, LT511 when it is finished.';

create function ops.force_fail_job(p_job_id uuid, p_reason text)
returns public.training_jobs
language plpgsql
set search_path = ''
as $$
declare
  v_reason text := ops.require_reason(p_reason);
  v_job public.training_jobs := ops.locked_active_job(p_job_id);
begin
  perform private.monitor_event(v_job.id, 'error', 'ops.force_failed', format('Failed by an operator: %s', v_reason),
    jsonb_build_object('from', v_job.status, 'by', session_user, 'external_job_id', v_job.external_job_id));
  update public.training_jobs
     set status = 'failed',
         error = jsonb_build_object('code', 'LT501', 'kind', 'system', 'retryable', false,
           'message', format('Stopped by an operator: %s', v_reason),
           'hint', 'Retry it with public.retry_training_job() (from its best checkpoint), or contact support.',
           'details', jsonb_build_object('from', v_job.status, 'by', session_user))
   where id = v_job.id
  returning * into v_job;
  if v_job.external_job_id is not null then
    -- The cluster must stop billing: the poller cancels the cluster job (a dispatch still in
    -- flight cancels its own submit when it finds the job finished).
    perform private.request_cluster_stop(v_job.id, v_job.external_job_id, 'orphaned');
    perform private.invoke_worker('poll-training-jobs', jsonb_build_object('job_ids', jsonb_build_array(v_job.id), 'source', 'ops'));
  end if;
  perform ops.log_action('force_fail_job', v_job.id::text, v_reason,
    jsonb_build_object('from', (v_job.error #>> '{details,from}'), 'external_job_id', v_job.external_job_id));
  return v_job;
end;
$$;
comment on function ops.force_fail_job(uuid, text) is
  'Fails an active job now (error LT501, kind system, the reason in the message), with an ops.force_failed event for the owner, and asks the poller to cancel its cluster job. LT510: no such job; LT511: already finished; 22023: no reason. Logged in ops.runbook_log.';

create function ops.force_cancel_job(p_job_id uuid, p_reason text, p_immediate boolean default false)
returns public.training_jobs
language plpgsql
set search_path = ''
as $$
declare
  v_reason text := ops.require_reason(p_reason);
  v_job public.training_jobs := ops.locked_active_job(p_job_id);
  v_from public.training_job_status := v_job.status;
begin
  perform private.monitor_event(v_job.id, 'warning', 'ops.force_cancelled', format('Cancelled by an operator: %s', v_reason),
    jsonb_build_object('from', v_from, 'by', session_user, 'immediate', p_immediate));
  if v_job.status in ('pending', 'queued') then
    update public.training_jobs set status = 'cancelled' where id = v_job.id returning * into v_job;
  else
    if v_job.status <> 'cancelling' then
      -- The monitor trigger queues the cluster stop when the cluster job is known.
      update public.training_jobs set status = 'cancelling' where id = v_job.id returning * into v_job;
    end if;
    update private.job_monitor set next_poll_at = now() where job_id = v_job.id;
    update private.cluster_stops set next_attempt_at = now() where job_id = v_job.id and done_at is null;
    if p_immediate then
      -- Do not wait for the cluster to confirm; its stop request stays queued.
      update public.training_jobs set status = 'cancelled' where id = v_job.id returning * into v_job;
    end if;
    perform private.invoke_worker('poll-training-jobs', jsonb_build_object('job_ids', jsonb_build_array(v_job.id), 'source', 'ops'));
  end if;
  perform ops.log_action('force_cancel_job', v_job.id::text, v_reason,
    jsonb_build_object('from', v_from, 'to', v_job.status, 'immediate', p_immediate, 'external_job_id', v_job.external_job_id));
  return v_job;
end;
$$;
comment on function ops.force_cancel_job(uuid, text, boolean) is
  'Cancels an active job as its owner''s cancel does (pending/queued: cancelled; dispatching/running: cancelling, the poller stops the cluster job and confirms), with an ops.force_cancelled event. p_immediate also marks a cancelling job cancelled without waiting for the cluster (its stop keeps being retried). LT510, LT511, 22023 as ops.force_fail_job. Logged in ops.runbook_log.';

revoke all on all tables in schema ops from public, anon, authenticated, service_role;
revoke all on all functions in schema ops from public, anon, authenticated, service_role;
