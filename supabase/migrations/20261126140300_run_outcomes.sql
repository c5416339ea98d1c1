-- How a run ends, in one place for every path that ends one (cluster
-- report, poller, webhook, storage trigger):
--
--   private.fail_or_retry()   a failed run: an automatic retry (running ->
--                              queued, a new run resumes from the latest
--                              checkpoint) while retries are left and the
--                              failure is a retryable system one; else failed
--   private.end_run()         a failure the monitor detected (lost, stalled,
--                              artifacts missing), optionally stopping the
--                              cluster job
--   private.time_out_job()    over MAX_TRAINING_DURATION_HOURS: timed_out,
--                              and the cluster job is stopped
--   private.complete_delivery()  every artifact the cluster listed is
--                              registered: succeeded, model card pending
--
-- All of them lock the job row first and change status only through the
-- state machine, so they are safe to call twice or concurrently.

create function private.fail_or_retry(p_job_id uuid, p_failure jsonb)
returns text
language plpgsql
set search_path = ''
as $$
declare
  v_job public.training_jobs;
  v_max integer := private.job_setting('auto_retry_max')::integer;
  v_resume jsonb;
begin
  select * into v_job from public.training_jobs j where j.id = p_job_id for update;
  if v_job.status not in ('running', 'cancelling') then
    return v_job.status::text;
  end if;
  if v_job.status = 'running' and coalesce((p_failure ->> 'retryable')::boolean, false)
     and p_failure ->> 'kind' = 'system' and v_job.attempt_count <= v_max then
    v_resume := private.latest_checkpoint(v_job.id);
    perform private.monitor_event(v_job.id, 'warning', 'training.retry_scheduled',
      format('Run %s failed: %s. Retrying automatically (retry %s of %s)%s', v_job.attempt_count, p_failure ->> 'message',
        v_job.attempt_count, v_max,
        case when v_resume is null then ' from the start' else format(' from %s (step %s)', coalesce(v_resume ->> 'name', 'the latest checkpoint'), v_resume ->> 'step') end),
      jsonb_build_object('run', v_job.attempt_count, 'retry', v_job.attempt_count, 'max_retries', v_max,
        'error', p_failure, 'resume_from', v_resume));
    update public.training_jobs set status = 'queued', error = null where id = v_job.id;
    return 'queued';
  end if;
  update public.training_jobs
     set status = 'failed',
         error = p_failure || jsonb_build_object('runs', v_job.attempt_count)
               || case when v_job.attempt_count > 1 and p_failure ->> 'kind' = 'system'
                    then jsonb_build_object('message', format('%s (after %s runs)', p_failure ->> 'message', v_job.attempt_count))
                    else '{}'::jsonb end
   where id = v_job.id;
  return 'failed';
end;
$$;
comment on function private.fail_or_retry(uuid, jsonb) is
  'Ends a failed run of a running or cancelling job: with a retryable system failure and retries left (attempt_count <= auto_retry_max) the job goes back to queued with a training.retry_scheduled event naming the checkpoint to resume from; otherwise it fails with p_failure (plus runs). Returns the new status.';
revoke all on function private.fail_or_retry(uuid, jsonb) from public;

create function private.end_run(p_job_id uuid, p_failure jsonb, p_stop_reason text default null)
returns text
language plpgsql
set search_path = ''
as $$
declare
  v_ext text;
  v_status text;
begin
  select m.external_job_id into v_ext from private.job_monitor m where m.job_id = p_job_id;
  perform private.monitor_event(p_job_id, 'error', 'monitor.run_ended', p_failure ->> 'message',
    jsonb_build_object('error', p_failure, 'external_job_id', v_ext, 'stop_cluster_job', p_stop_reason is not null));
  v_status := private.fail_or_retry(p_job_id, p_failure);
  if p_stop_reason is not null and v_ext is not null then
    perform private.request_cluster_stop(p_job_id, v_ext, p_stop_reason);
  end if;
  return v_status;
end;
$$;
comment on function private.end_run(uuid, jsonb, text) is
  'Ends the current run for a failure the monitor detected (p_failure from private.monitor_failure): a monitor.run_ended event, retry or fail (private.fail_or_retry), and when p_stop_reason is given a stop request for the cluster job. Returns the new status.';
revoke all on function private.end_run(uuid, jsonb, text) from public;

create function private.time_out_job(p_job_id uuid)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_job public.training_jobs;
  v_hours numeric := private.job_setting('max_training_duration_hours');
begin
  select * into v_job from public.training_jobs j where j.id = p_job_id for update;
  if v_job.status <> 'running' or v_job.started_at >= now() - v_hours * interval '1 hour' then
    return null;
  end if;
  update public.training_jobs
     set status = 'timed_out',
         error = private.monitor_failure('LT410',
           format('The job ran for %s hours, longer than the limit of %s hours (MAX_TRAINING_DURATION_HOURS), and was stopped at step %s',
             round(extract(epoch from now() - v_job.started_at) / 3600, 1), v_hours, coalesce(v_job.current_step, 0)),
           jsonb_build_object('started_at', v_job.started_at, 'limit_hours', v_hours, 'step', v_job.current_step))
   where id = v_job.id;
  if v_job.external_job_id is not null then
    perform private.request_cluster_stop(v_job.id, v_job.external_job_id, 'timeout');
  end if;
  return jsonb_build_object('job_id', v_job.id, 'external_job_id', v_job.external_job_id);
end;
$$;
comment on function private.time_out_job(uuid) is
  'Marks a running job that started more than max_training_duration_hours ago timed_out (LT410) and requests a stop of its cluster job; returns {job_id, external_job_id}, or null when the job is not over its limit.';
revoke all on function private.time_out_job(uuid) from public;

create function private.complete_delivery(p_job_id uuid)
returns boolean
language plpgsql
set search_path = ''
as $$
declare
  v_job public.training_jobs;
  v_expected jsonb;
  v_missing jsonb;
  v_delivered jsonb;
begin
  select * into v_job from public.training_jobs j where j.id = p_job_id for update;
  if v_job.status not in ('running', 'cancelling') then
    return false;
  end if;
  select m.expected_artifacts into v_expected from private.job_monitor m where m.job_id = p_job_id;
  if v_expected is null then
    return false;
  end if;
  select coalesce(jsonb_agg(e ->> 'path'), '[]'::jsonb) into v_missing
    from jsonb_array_elements(v_expected) e
   where not exists (
     select 1 from public.model_artifacts a
      where a.storage_path = v_job.user_id || '/' || v_job.id || '/' || (e ->> 'path')
        and (e ->> 'size_bytes' is null or a.size_bytes = (e ->> 'size_bytes')::bigint));
  if v_missing <> '[]'::jsonb then
    return false;
  end if;
  select jsonb_agg(jsonb_build_object('kind', a.kind, 'storage_path', a.storage_path, 'size_bytes', a.size_bytes, 'sha256', a.sha256)
           order by a.storage_path)
    into v_delivered from public.model_artifacts a where a.job_id = p_job_id;
  perform private.monitor_event(p_job_id, 'info', 'delivery.completed',
    format('%s artifacts delivered to lora-models/%s/%s/', jsonb_array_length(v_delivered), v_job.user_id, v_job.id),
    jsonb_build_object('artifacts', v_delivered));
  update private.job_monitor set model_card_status = 'pending', next_poll_at = now() where job_id = p_job_id;
  update public.training_jobs set status = 'succeeded', error = null, progress_pct = 100 where id = p_job_id;
  return true;
end;
$$;
comment on function private.complete_delivery(uuid) is
  'When every artifact the cluster listed on success is registered in model_artifacts (same path and size), moves the job to succeeded with a delivery.completed event and marks its model card pending; false while something is missing or the job is not running/cancelling.';
revoke all on function private.complete_delivery(uuid) from public;
