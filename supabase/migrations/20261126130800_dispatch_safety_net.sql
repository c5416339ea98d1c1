-- pg_cron safety net for dispatch: every minute, re-enqueue a job that should
-- have a dispatch message but has none (a purged queue, a lost message), then
-- wake the worker, which also picks up delayed retry messages that became
-- visible and messages of crashed workers whose visibility timeout ended.
-- The schedule ('* * * * *') is valid on pg_cron 1.4 and 1.6; it is only
-- created where pg_cron is installed.

create function private.dispatch_sweep()
returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_job record;
  v_count integer := 0;
  v_after interval := private.job_setting('dispatch_sweep_after_seconds') * interval '1 second';
begin
  for v_job in
    select j.id, j.status from public.training_jobs j
      left join private.training_job_dispatch s on s.job_id = j.id
     where ((j.status = 'queued' and j.status_changed_at < now() - v_after)
         or (j.status = 'dispatching' and coalesce(s.lease_until, j.status_changed_at) < now() - v_after))
       and not exists (select 1 from pgmq.q_training_dispatch q where q.message ->> 'job_id' = j.id::text)
     for update of j skip locked
  loop
    perform pgmq.send(queue_name => 'training_dispatch', msg => jsonb_build_object('job_id', v_job.id));
    perform private.dispatch_add_events(v_job.id, jsonb_build_array(jsonb_build_object(
      'level', 'warning', 'type', 'dispatch.requeued',
      'message', format('The job was %s without a dispatch message; it was queued for dispatch again', v_job.status),
      'data', jsonb_build_object('status', v_job.status))));
    v_count := v_count + 1;
  end loop;
  return v_count;
end;
$$;
comment on function private.dispatch_sweep() is
  'Sends a dispatch message for every job queued (or dispatching with an expired lease) for longer than dispatch_sweep_after_seconds that has none in training_dispatch, with a dispatch.requeued event; returns how many.';

create function private.dispatch_safety_net()
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_requeued integer := private.dispatch_sweep();
begin
  return jsonb_build_object('requeued', v_requeued,
    'request_id', private.invoke_worker('dispatch-training-job', '{"source": "cron"}'::jsonb));
end;
$$;
comment on function private.dispatch_safety_net() is
  'What pg_cron runs every minute: private.dispatch_sweep(), then wake the dispatch-training-job worker.';

revoke all on function private.dispatch_sweep() from public;
revoke all on function private.dispatch_safety_net() from public;

do $$
begin
  if exists (select 1 from pg_extension where extname = 'pg_cron') then
    perform cron.schedule('dispatch-training-jobs', '* * * * *', 'select private.dispatch_safety_net()');
  end if;
end;
$$;
