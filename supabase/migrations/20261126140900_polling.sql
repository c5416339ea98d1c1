-- Polling the GPU cluster: claims, outcomes and the pg_cron schedule.
--
-- pg_cron runs private.poll_tick(): every 10 seconds on pg_cron >= 1.5
-- (Supabase ships 1.6), every minute on older versions (Debian's 1.4). It
-- counts the rows with work (private.job_monitor where needs_poll, and
-- pending private.cluster_stops; both through partial indexes, so the cost
-- follows the number of active jobs, not of all jobs) and wakes as many
-- poll-training-jobs workers as they need through pg_net, one per free slot.
-- A worker owns its slot (private.poll_workers) while it loops: it claims
-- due work in batches with private.poll_claim() (FOR UPDATE SKIP LOCKED, and
-- the claim pushes next_poll_at past the lease, so an overlapping tick or
-- worker never polls a job twice at once), applies each answer with
-- private.apply_cluster_update(), and sleeps until the next job is due
-- until its budget runs out; then it frees its slot and, with poll_chain = 1,
-- wakes its successor at once (gap-free 10-second polling on pg_cron 1.4).

create table private.poll_workers (
  slot integer primary key check (slot >= 1),
  lease_until timestamptz,
  started_at timestamptz,
  runs bigint not null default 0
);
comment on table private.poll_workers is
  'Poll worker slots: at most poll_max_workers workers loop at once, one per slot; a slot whose lease ended (a crashed worker) is free again.';
comment on column private.poll_workers.slot is 'Slot number, 1..poll_max_workers.';
comment on column private.poll_workers.lease_until is 'Until when the worker in this slot may run; null when free.';
comment on column private.poll_workers.started_at is 'When the current (or last) worker in this slot started.';
comment on column private.poll_workers.runs is 'How many workers have run in this slot.';
revoke all on table private.poll_workers from public;

create function private.poll_claim(p_limit integer, p_job_ids uuid[] default null)
returns table (action text, job_id uuid, external_job_id text, metrics_since_step integer, reason text, cluster_key text)
language plpgsql
set search_path = ''
as $$
declare
  v_lease interval := private.job_setting('poll_lease_seconds') * interval '1 second';
  v_max_hours numeric := private.job_setting('max_training_duration_hours');
begin
  return query
  with due as (
    select s.external_job_id from private.cluster_stops s
     where s.done_at is null and s.next_attempt_at <= now() and (p_job_ids is null or s.job_id = any(p_job_ids))
     order by s.next_attempt_at limit p_limit
     for update skip locked
  ), claimed as (
    update private.cluster_stops s set lease_until = now() + v_lease, next_attempt_at = now() + v_lease, attempts = s.attempts + 1
      from due where s.external_job_id = due.external_job_id
    returning s.job_id, s.external_job_id, s.reason
  )
  select 'stop'::text, c.job_id, c.external_job_id, null::integer, c.reason, null::text from claimed c;

  return query
  with due as (
    select m.job_id from private.job_monitor m
     where m.needs_poll and m.next_poll_at <= now() and (p_job_ids is null or m.job_id = any(p_job_ids))
       -- A cancel during dispatch waits while a submit may be in flight: the dispatcher saved a request
       -- and still holds the job's message (invisible while it works; deleted with its outcome).
       and not (m.external_job_id is null and exists (
         select 1 from private.training_job_dispatch d
          where d.job_id = m.job_id and d.submit_started_at is not null and d.lease_until > now()
            and exists (select 1 from pgmq.q_training_dispatch q where q.message ->> 'job_id' = m.job_id::text and q.vt > now())))
     order by m.next_poll_at limit p_limit
     for update skip locked
  ), claimed as (
    update private.job_monitor m set lease_until = now() + v_lease, next_poll_at = now() + v_lease
      from due where m.job_id = due.job_id
    returning m.job_id, m.external_job_id, m.last_metrics_step, m.active
  )
  select case when not c.active then 'model_card'
              when j.status = 'running' and j.started_at < now() - v_max_hours * interval '1 hour' then 'timeout'
              when c.external_job_id is null then 'find'
              else 'poll' end,
         c.job_id, c.external_job_id, c.last_metrics_step, null::text, d.cluster_idempotency_key
    from claimed c
    join public.training_jobs j on j.id = c.job_id
    left join private.training_job_dispatch d on d.job_id = c.job_id;
end;
$$;
comment on function private.poll_claim(integer, uuid[]) is
  'Claims up to p_limit due cluster stops and up to p_limit due monitored jobs (optionally only p_job_ids), leasing each for poll_lease_seconds (FOR UPDATE SKIP LOCKED: concurrent workers get disjoint work). Actions: stop (cancel the cluster job), poll, timeout, find (a cancel during dispatch: look the cluster job up by key), model_card.';
revoke all on function private.poll_claim(integer, uuid[]) from public;

create function private.poll_failed(p_job_id uuid, p_error jsonb)
returns text
language plpgsql
set search_path = ''
as $$
declare
  v_mon private.job_monitor;
  v_interval numeric := private.job_setting('poll_interval_seconds');
begin
  update private.job_monitor m
     set poll_failures = m.poll_failures + 1,
         last_poll_error = p_error,
         lease_until = null,
         not_found_since = case when p_error ->> 'kind' = 'not_found' then coalesce(m.not_found_since, now()) end,
         next_poll_at = now() + least(300, v_interval * power(2, least(m.poll_failures, 5))) * interval '1 second'
   where m.job_id = p_job_id
  returning * into v_mon;
  if not found or not v_mon.active then
    return 'inactive';
  end if;
  if v_mon.not_found_since <= now() - private.job_setting('monitor_not_found_grace_seconds') * interval '1 second' then
    return private.end_run(p_job_id, private.monitor_failure('LT411',
      format('The GPU cluster no longer knows cluster job "%s"', v_mon.external_job_id),
      jsonb_build_object('external_job_id', v_mon.external_job_id, 'since', v_mon.not_found_since)));
  end if;
  if v_mon.last_report_at <= now() - private.job_setting('monitor_lost_after_seconds') * interval '1 second' then
    return private.end_run(p_job_id, private.monitor_failure('LT411',
      format('The GPU cluster has not answered about the run for %s minutes (%s)',
        round(extract(epoch from now() - v_mon.last_report_at) / 60), p_error ->> 'message'),
      jsonb_build_object('external_job_id', v_mon.external_job_id, 'last_report_at', v_mon.last_report_at, 'error', p_error)), 'lost');
  end if;
  if v_mon.silence_warned_at is null
     and v_mon.last_report_at <= now() - private.job_setting('monitor_silence_warning_seconds') * interval '1 second' then
    update private.job_monitor set silence_warned_at = now() where job_id = p_job_id;
    perform private.monitor_event(p_job_id, 'warning', 'monitor.cluster_silent',
      format('No answer from the GPU cluster about this job for %s minutes: %s',
        round(extract(epoch from now() - v_mon.last_report_at) / 60), p_error ->> 'message'),
      jsonb_build_object('error', p_error, 'failures', v_mon.poll_failures));
  end if;
  return 'retrying';
end;
$$;
comment on function private.poll_failed(uuid, jsonb) is
  'Records a failed poll {kind: not_found|retryable|permanent_system|..., message, status?}: backoff, a monitor.cluster_silent warning after monitor_silence_warning_seconds, and the run declared lost (LT411, retried or failed) after monitor_not_found_grace_seconds of 404s or monitor_lost_after_seconds without any answer.';
revoke all on function private.poll_failed(uuid, jsonb) from public;

create function private.cluster_stop_result(p_external_job_id text, p_outcome text, p_error jsonb default null)
returns void
language plpgsql
set search_path = ''
as $$
declare
  v_stop private.cluster_stops;
begin
  if p_outcome is null then
    update private.cluster_stops s
       set lease_until = null, last_error = p_error,
           next_attempt_at = now() + least(300, 5 * power(2, least(s.attempts, 6))) * interval '1 second'
     where s.external_job_id = p_external_job_id
    returning * into v_stop;
    if v_stop.attempts = 5 then
      perform private.monitor_event(v_stop.job_id, 'warning', 'monitor.cluster_stop_failing',
        format('Cancelling cluster job "%s" failed %s times: %s', p_external_job_id, v_stop.attempts, p_error ->> 'message'),
        jsonb_build_object('reason', v_stop.reason, 'error', p_error));
    end if;
    return;
  end if;
  update private.cluster_stops
     set done_at = coalesce(done_at, now()), outcome = coalesce(outcome, p_outcome), lease_until = null, last_error = p_error
   where external_job_id = p_external_job_id
  returning * into v_stop;
  -- A cancel whose cluster job is gone has nothing left to confirm it.
  if p_outcome = 'not_found' then
    update public.training_jobs set status = 'cancelled'
     where id = v_stop.job_id and status = 'cancelling' and external_job_id = p_external_job_id;
  end if;
end;
$$;
comment on function private.cluster_stop_result(text, text, jsonb) is
  'Records a cancel call: p_outcome cancelled | already_finished | not_found ends the stop (not_found also confirms an owner''s cancel); null records a failure and backs off (a monitor.cluster_stop_failing warning at the fifth).';
revoke all on function private.cluster_stop_result(text, text, jsonb) from public;

create function private.find_result(p_job_id uuid, p_external_job_id text)
returns text
language plpgsql
set search_path = ''
as $$
declare
  v_job public.training_jobs;
begin
  select * into v_job from public.training_jobs j where j.id = p_job_id for update;
  update private.job_monitor set lease_until = null, next_poll_at = now() where job_id = p_job_id;
  if v_job.status <> 'cancelling' or v_job.external_job_id is not null then
    return v_job.status::text;
  end if;
  if p_external_job_id is not null then
    -- The submit reached the cluster after all: record it; the monitor trigger requests its stop.
    update public.training_jobs set external_job_id = p_external_job_id where id = p_job_id;
    return 'stopping';
  end if;
  perform private.monitor_event(p_job_id, 'info', 'cancel.nothing_to_stop',
    'The job was cancelled before the GPU cluster created it', '{}'::jsonb);
  update public.training_jobs set status = 'cancelled' where id = p_job_id;
  return 'cancelled';
end;
$$;
comment on function private.find_result(uuid, text) is
  'For a job cancelled during dispatch: records the cluster job found by its idempotency key (its stop follows), or, when the cluster has none, confirms the cancel.';
revoke all on function private.find_result(uuid, text) from public;
