-- pg_cron safety net for dataset validation: every minute, send a new
-- message for an unfinished run that lost its own (a purged queue, a message
-- deleted by hand) and has been quiet for sweep_after_seconds, then wake
-- validate-dataset if the queue has a visible message: one whose wake-up
-- request was lost, a retry whose backoff ended, or a message of a worker
-- that died, visible again after its visibility timeout.
-- The schedule ('* * * * *') is valid on pg_cron 1.4 and 1.6 (no seconds
-- syntax); it is only created where pg_cron is installed.

create function private.dataset_validation_sweep()
returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_run record;
  v_msg_id bigint;
  v_count integer := 0;
  v_after interval := private.dataset_validation_setting('sweep_after_seconds') * interval '1 second';
begin
  for v_run in
    select r.dataset_id, r.generation from private.dataset_validation_runs r
     where r.finished_at is null and r.queue_name = 'dataset_validation'
       and (r.lease_until is null or r.lease_until < now())
       and r.updated_at < now() - v_after
       and not exists (select 1 from pgmq.q_dataset_validation q where q.msg_id = r.msg_id)
     for update of r skip locked
  loop
    select s.id into v_msg_id from pgmq.send(
      queue_name => 'dataset_validation',
      msg => jsonb_build_object('dataset_id', v_run.dataset_id, 'generation', v_run.generation)) as s(id);
    update private.dataset_validation_runs r set msg_id = v_msg_id where r.dataset_id = v_run.dataset_id;
    raise warning 'Dataset "%" was validating without a queue message; sent message %', v_run.dataset_id, v_msg_id;
    v_count := v_count + 1;
  end loop;
  return v_count;
end;
$$;
comment on function private.dataset_validation_sweep() is
  'Sends a new message for every unfinished run of queue dataset_validation that has none, no live lease, and has not changed for sweep_after_seconds; returns how many.';

create function private.dataset_validation_safety_net()
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_requeued integer := private.dataset_validation_sweep();
  v_request bigint;
begin
  if exists (select 1 from pgmq.q_dataset_validation q where q.vt <= clock_timestamp()) then
    v_request := private.invoke_worker('validate-dataset', '{"source": "cron"}'::jsonb);
  end if;
  return jsonb_build_object('requeued', v_requeued, 'request_id', v_request);
end;
$$;
comment on function private.dataset_validation_safety_net() is
  'What pg_cron runs every minute: private.dataset_validation_sweep(), then wake validate-dataset if queue dataset_validation has a visible message.';

revoke all on function private.dataset_validation_sweep() from public;
revoke all on function private.dataset_validation_safety_net() from public;

do $$
begin
  if exists (select 1 from pg_extension where extname = 'pg_cron') then
    perform cron.schedule('validate-datasets', '* * * * *', 'select private.dataset_validation_safety_net()');
  end if;
end;
$$;
