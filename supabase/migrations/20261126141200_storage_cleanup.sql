-- Deleting a job or a dataset removes its files.
--
-- Clients soft-delete (deleted_at). Supabase refuses direct SQL deletes from
-- storage.objects (storage.protect_delete), and rows deleted that way would
-- leave the bytes behind anyway, so removal goes through the Storage API:
-- a trigger sends {bucket, prefix} to the pgmq queue storage_cleanup and wakes
-- the storage-cleanup worker (pg_net, after commit), which lists the objects
-- under the prefix and removes them with the service key in batches, then
-- deletes the message. A dataset's file is kept while an active job still
-- trains on it (the message waits). pg_cron retries every five minutes.
-- Deleting lora-models objects also removes their model_artifacts rows
-- (20261126140700).

do $$
begin
  if not exists (select 1 from pgmq.list_queues() q where q.queue_name = 'storage_cleanup') then
    perform pgmq.create(queue_name => 'storage_cleanup');
  end if;
end;
$$;

create function private.tg_training_jobs__enqueue_storage_cleanup()
returns trigger
language plpgsql
-- Definer: a client's soft delete sends to pgmq and wakes the worker, which clients cannot do.
security definer
set search_path = ''
as $$
begin
  if old.deleted_at is null and new.deleted_at is not null then
    perform pgmq.send(queue_name => 'storage_cleanup', msg => jsonb_build_object(
      'bucket', 'lora-models', 'prefix', new.user_id || '/' || new.id || '/', 'job_id', new.id));
    perform private.invoke_worker('storage-cleanup', '{}'::jsonb);
  end if;
  return null;
end;
$$;
comment on function private.tg_training_jobs__enqueue_storage_cleanup() is
  'Trigger: a soft-deleted job queues the removal of lora-models/{user_id}/{job_id}/ (pgmq storage_cleanup) and wakes the storage-cleanup worker.';
revoke all on function private.tg_training_jobs__enqueue_storage_cleanup() from public;

create trigger _700_enqueue_storage_cleanup
  after update of deleted_at on public.training_jobs
  for each row execute function private.tg_training_jobs__enqueue_storage_cleanup();
comment on trigger _700_enqueue_storage_cleanup on public.training_jobs is
  'Queues removal of the job''s artifacts when it is soft-deleted.';

create function private.tg_datasets__enqueue_storage_cleanup()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if old.deleted_at is null and new.deleted_at is not null then
    perform pgmq.send(queue_name => 'storage_cleanup', msg => jsonb_build_object(
      'bucket', 'lora-datasets', 'prefix', new.user_id || '/' || new.id || '/', 'dataset_id', new.id));
    perform private.invoke_worker('storage-cleanup', '{}'::jsonb);
  end if;
  return null;
end;
$$;
comment on function private.tg_datasets__enqueue_storage_cleanup() is
  'Trigger: a soft-deleted dataset queues the removal of lora-datasets/{user_id}/{dataset_id}/ (pgmq storage_cleanup) and wakes the storage-cleanup worker.';
revoke all on function private.tg_datasets__enqueue_storage_cleanup() from public;

create trigger _700_enqueue_storage_cleanup
  after update of deleted_at on public.datasets
  for each row execute function private.tg_datasets__enqueue_storage_cleanup();
comment on trigger _700_enqueue_storage_cleanup on public.datasets is
  'Queues removal of the dataset''s file when it is soft-deleted.';

create function private.storage_cleanup_next()
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_msg record;
  v_prefix text;
begin
  select * into v_msg from pgmq.read(queue_name => 'storage_cleanup', vt => 120, qty => 1);
  if not found then
    return null;
  end if;
  v_prefix := v_msg.message ->> 'prefix';
  if v_msg.message ->> 'bucket' not in ('lora-models', 'lora-datasets')
     or v_prefix !~ '^[0-9a-f-]{36}/[0-9a-f-]{36}/$' or v_msg.read_ct > 20 then
    perform pgmq.archive(queue_name => 'storage_cleanup', msg_id => v_msg.msg_id);
    return jsonb_build_object('action', 'discarded', 'msg_id', v_msg.msg_id, 'message', v_msg.message);
  end if;
  if v_msg.message ? 'dataset_id' and exists (
    select 1 from public.training_jobs j
     where (j.dataset_id = (v_msg.message ->> 'dataset_id')::uuid or j.validation_dataset_id = (v_msg.message ->> 'dataset_id')::uuid)
       and j.status in ('pending', 'queued', 'dispatching', 'running', 'cancelling')) then
    perform pgmq.set_vt(queue_name => 'storage_cleanup', msg_id => v_msg.msg_id, vt => 300);
    return jsonb_build_object('action', 'deferred', 'msg_id', v_msg.msg_id, 'reason', 'An active job still uses the dataset');
  end if;
  return jsonb_build_object('action', 'remove', 'msg_id', v_msg.msg_id, 'bucket', v_msg.message ->> 'bucket', 'prefix', v_prefix);
end;
$$;
comment on function private.storage_cleanup_next() is
  'Reads one storage_cleanup message (invisible for 120 s): {action: remove, msg_id, bucket, prefix} for the worker, deferred (a dataset an active job still uses; retried in 5 minutes) or discarded (malformed or read more than 20 times: archived). Null when the queue is empty.';
revoke all on function private.storage_cleanup_next() from public;

create function private.storage_objects_under(p_bucket text, p_prefix text, p_limit integer default 500)
returns text[]
language sql
stable
set search_path = ''
as $$
  -- The prefix is {uuid}/{uuid}/, free of LIKE wildcards (checked by storage_cleanup_next).
  select coalesce(array_agg(o.name order by o.name), '{}')
    from (select o.name from storage.objects o
           where o.bucket_id = p_bucket and o.name like p_prefix || '%'
           order by o.name limit p_limit) o
$$;
comment on function private.storage_objects_under(text, text, integer) is
  'Up to p_limit object names under p_prefix in bucket p_bucket, for the storage-cleanup worker to remove through the Storage API.';
revoke all on function private.storage_objects_under(text, text, integer) from public;

create function private.storage_cleanup_done(p_msg_id bigint)
returns boolean
language sql
set search_path = ''
as $$
  select pgmq.delete(queue_name => 'storage_cleanup', msg_id => p_msg_id)
$$;
comment on function private.storage_cleanup_done(bigint) is
  'Deletes a storage_cleanup message once nothing is left under its prefix.';
revoke all on function private.storage_cleanup_done(bigint) from public;

create function private.storage_cleanup_safety_net()
returns bigint
language plpgsql
set search_path = ''
as $$
begin
  if exists (select 1 from pgmq.q_storage_cleanup q where q.vt <= now()) then
    return private.invoke_worker('storage-cleanup', '{"source": "cron"}'::jsonb);
  end if;
  return null;
end;
$$;
comment on function private.storage_cleanup_safety_net() is
  'What pg_cron runs every five minutes: wakes the storage-cleanup worker when a visible message waits.';
revoke all on function private.storage_cleanup_safety_net() from public;

do $$
begin
  if exists (select 1 from pg_catalog.pg_extension where extname = 'pg_cron') then
    perform cron.schedule('storage-cleanup', '*/5 * * * *', 'select private.storage_cleanup_safety_net()');
  end if;
end;
$$;
