-- A review step before a job runs, like Mistral's auto_start=false (issue 15.8).
--
-- Status pending existed (state machine, quotas, dispatch) but nothing could
-- reach it. Now:
--
--   public.create_training_job(..., start => false)
--       creates the job as usual (validation, resolved config, estimate,
--       quotas, the estimate row of cost_records) but leaves it pending: no
--       dispatch message, nothing reaches the GPU cluster. A job.awaiting_start
--       event carries the estimate to review;
--   public.start_training_job(job_id)
--       owner only: pending -> queued (the enqueue trigger sends the dispatch
--       message); idempotent for a job already started; LT450 for a job
--       cancelled before it started; LT007 / LT008 when its dataset or base
--       model can no longer be used (nothing changes);
--   public.cancel_training_job(job_id)
--       already cancels a pending job at once.
--
-- Quotas are consumed at creation, not at start: a pending job holds one of
-- max_active_jobs (LT301 counts pending) and its estimate counts toward the
-- monthly spend cap, so a start never fails on a quota that creation passed,
-- and the estimate the user reviews is the one admission checked. Cancel a
-- pending job to free both.
--
-- The function gains a parameter, so it is dropped and created again from the
-- definition of 20261126130500_create_training_job.sql.

drop function public.create_training_job(uuid, text, jsonb, uuid, text, text, text, uuid, uuid);

create function public.create_training_job(
  dataset_id uuid,
  base_model_id text,
  config jsonb default '{}'::jsonb,
  validation_dataset_id uuid default null,
  name text default null,
  suffix text default null,
  idempotency_key text default null,
  parent_job_id uuid default null,
  resume_from_checkpoint_id uuid default null,
  start boolean default true)
returns public.training_jobs
language plpgsql
-- Definer: the lock and the duplicate lookup use private helpers. The row is always the
-- caller's (user_id = auth.uid()), and composite foreign keys keep its references inside
-- the caller's rows, as RLS and the column grants do for a plain insert.
security definer
set search_path = ''
as $$
declare
  v_uid uuid := auth.uid();
  v_new public.training_jobs;
  v_existing public.training_jobs;
begin
  if v_uid is null then
    raise exception 'Sign in to create training jobs' using errcode = '42501';
  end if;
  perform pg_advisory_xact_lock(private.training_jobs_user_lock(v_uid));

  v_new.user_id := v_uid;
  v_new.dataset_id := dataset_id;
  v_new.validation_dataset_id := validation_dataset_id;
  v_new.base_model_id := base_model_id;
  v_new.requested_config := coalesce(config, '{}'::jsonb);
  v_new.suffix := suffix;
  v_new.parent_job_id := parent_job_id;
  v_new.resume_from_checkpoint_id := resume_from_checkpoint_id;

  if idempotency_key is not null then
    select j.* into v_existing from public.training_jobs j
     where j.user_id = v_uid and j.idempotency_key = create_training_job.idempotency_key;
    if found then
      if (v_existing.dataset_id, v_existing.validation_dataset_id, v_existing.base_model_id, v_existing.requested_config,
          v_existing.suffix, v_existing.parent_job_id, v_existing.resume_from_checkpoint_id)
         is distinct from
         (v_new.dataset_id, v_new.validation_dataset_id, v_new.base_model_id, v_new.requested_config,
          v_new.suffix, v_new.parent_job_id, v_new.resume_from_checkpoint_id) then
        raise exception 'Idempotency key "%" was already used for job "%" with different parameters',
          idempotency_key, v_existing.id
          using errcode = 'LT306', detail = jsonb_build_object('existing_job_id', v_existing.id)::text,
                hint = 'Use a new idempotency key for a different job.';
      end if;
      return v_existing;
    end if;
  else
    v_existing := private.find_duplicate_training_job(v_new);
    if v_existing.id is not null then
      return v_existing;
    end if;
  end if;

  -- start => false: admitted now (validation, estimate, quotas), dispatched once the owner calls
  -- public.start_training_job(). A double submit returns the existing job whatever its status.
  insert into public.training_jobs (user_id, dataset_id, validation_dataset_id, base_model_id, name, suffix,
    requested_config, idempotency_key, parent_job_id, resume_from_checkpoint_id, status)
  values (v_uid, v_new.dataset_id, v_new.validation_dataset_id, v_new.base_model_id, name, v_new.suffix,
    v_new.requested_config, idempotency_key, v_new.parent_job_id, v_new.resume_from_checkpoint_id,
    case when coalesce(start, true) then 'queued' else 'pending' end::public.training_job_status)
  returning * into v_new;
  if not coalesce(start, true) then
    perform private.monitor_event(v_new.id, 'info', 'job.awaiting_start',
      'Created for review: the job is admitted and waits in pending until public.start_training_job() is called',
      jsonb_build_object('estimated_cost', v_new.estimated_cost, 'currency', v_new.currency,
        'estimated_gpu_seconds', v_new.estimated_gpu_seconds, 'total_steps', v_new.total_steps));
  end if;
  return v_new;
end;
$$;
comment on function public.create_training_job(uuid, text, jsonb, uuid, text, text, text, uuid, uuid, boolean) is
  'Creates a training job for the caller as an insert would (same validation, admission and dispatch), but a double submit returns the existing job: the one with the same idempotency_key (LT306 if its parameters differ), or without a key the same dataset and configuration created within duplicate_window_seconds. start => false leaves the new job pending (admitted, quotas counted, not dispatched) until public.start_training_job().';

revoke all on function public.create_training_job(uuid, text, jsonb, uuid, text, text, text, uuid, uuid, boolean) from public, anon;
grant execute on function public.create_training_job(uuid, text, jsonb, uuid, text, text, text, uuid, uuid, boolean) to authenticated;

create function public.start_training_job(job_id uuid)
returns public.training_jobs
language plpgsql
-- Definer: clients cannot write status; ownership is checked against auth.uid() below.
security definer
set search_path = ''
as $$
declare
  v_uid uuid := auth.uid();
  v_job public.training_jobs;
  v_bad record;
begin
  if v_uid is null then
    raise exception 'Sign in to start training jobs' using errcode = '42501';
  end if;
  select * into v_job from public.training_jobs j where j.id = start_training_job.job_id and j.user_id = v_uid for update;
  if not found then
    raise exception 'Job "%" does not exist', start_training_job.job_id using errcode = 'LT420',
      hint = 'Pass the id of one of your jobs: select id, status from public.training_jobs.';
  end if;
  if v_job.status in ('cancelling', 'cancelled') then
    raise exception 'Cannot start job "%": it was cancelled', v_job.id using errcode = 'LT450',
      hint = 'Create the job again (public.create_training_job) to run it.';
  end if;
  if v_job.status <> 'pending' then
    return v_job; -- already started: the same answer again
  end if;
  -- What admission checked may have changed while the job waited for review.
  select d.id, d.status, d.deleted_at into v_bad from public.datasets d
   where d.id in (v_job.dataset_id, v_job.validation_dataset_id) and (d.status <> 'ready' or d.deleted_at is not null)
   limit 1;
  if found then
    raise exception 'Cannot start job "%": dataset "%" is no longer ready for training (status "%"%)', v_job.id, v_bad.id,
      v_bad.status, case when v_bad.deleted_at is not null then ', deleted' else '' end
      using errcode = 'LT007', hint = 'Cancel this job and create it again with a ready dataset.';
  end if;
  if not exists (select 1 from public.base_models b where b.id = v_job.base_model_id and b.enabled) then
    raise exception 'Cannot start job "%": base model "%" is no longer enabled', v_job.id, v_job.base_model_id
      using errcode = 'LT008', hint = 'Cancel this job and create it again on an enabled model.';
  end if;
  perform private.monitor_event(v_job.id, 'info', 'job.start_requested',
    format('Started by the owner after %s s in review', round(extract(epoch from now() - v_job.created_at))),
    jsonb_build_object('from', 'pending', 'by', v_uid));
  update public.training_jobs set status = 'queued' where id = v_job.id returning * into v_job;
  return v_job;
end;
$$;
comment on function public.start_training_job(uuid) is
  'Starts one of the caller''s jobs created with create_training_job(..., start => false): pending -> queued, and dispatch follows. Idempotent (a job already started is returned unchanged). LT420: not the caller''s job; LT450: cancelled before it started; LT007 / LT008: its dataset or base model can no longer be used.';
revoke all on function public.start_training_job(uuid) from public, anon;
grant execute on function public.start_training_job(uuid) to authenticated;

update private.job_status_transitions
   set description = 'The owner started a job created for review (public.start_training_job)'
 where from_status = 'pending' and to_status = 'queued';
update private.job_status_transitions
   set description = 'The owner cancelled a job created for review: nothing exists on the GPU cluster'
 where from_status = 'pending' and to_status = 'cancelled';

-- ops.stuck_jobs said nothing moves a pending job; now its owner does (definition of
-- 20261126150200_ops_jobs.sql, only the pending_too_long texts change).
create or replace view ops.stuck_jobs
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
      format('Created for review %s ago and not started by its owner (public.start_training_job); it holds one of the owner''s max_active_jobs',
        date_trunc('minute', now() - j.created_at)),
      'Nothing is wrong: the owner starts or cancels it. To free the slot, ops.force_cancel_job()'),
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
