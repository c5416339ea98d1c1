-- Deleting a user removes their files.
--
-- Deleting a row of auth.users (dashboard, auth.admin.deleteUser) cascades
-- to their datasets and jobs, but hard deletes fire none of the soft-delete
-- triggers of 20261126141200, so the user's objects in lora-datasets and
-- lora-models stayed, readable with their still-valid token. Now an
-- after-delete trigger on auth.users queues {bucket, prefix: "<user id>/",
-- user_id} for both buckets on the storage_cleanup queue and wakes the
-- storage-cleanup worker, which removes everything under the user's folder
-- through the Storage API (pg_cron retries every five minutes).
-- private.storage_cleanup_next() (latest: 20261126141200) accepts such
-- whole-folder messages, only when the prefix is exactly the message's
-- user_id folder.

create function private.tg_auth_users__enqueue_storage_cleanup()
returns trigger
language plpgsql
-- Definer: GoTrue deletes as supabase_auth_admin, which cannot use pgmq or wake workers.
security definer
set search_path = ''
as $$
declare
  v_bucket text;
begin
  foreach v_bucket in array array['lora-datasets', 'lora-models'] loop
    perform pgmq.send(queue_name => 'storage_cleanup', msg => jsonb_build_object(
      'bucket', v_bucket, 'prefix', old.id::text || '/', 'user_id', old.id));
  end loop;
  perform private.invoke_worker('storage-cleanup', '{"source": "user_deleted"}'::jsonb);
  return null;
end;
$$;
comment on function private.tg_auth_users__enqueue_storage_cleanup() is
  'Trigger: a deleted auth.users row queues the removal of everything under lora-datasets/{user_id}/ and lora-models/{user_id}/ (pgmq storage_cleanup) and wakes the storage-cleanup worker.';
revoke all on function private.tg_auth_users__enqueue_storage_cleanup() from public, anon, authenticated;

create trigger _700_enqueue_storage_cleanup
  after delete on auth.users
  for each row execute function private.tg_auth_users__enqueue_storage_cleanup();
comment on trigger _700_enqueue_storage_cleanup on auth.users is
  'LoRA backend: queues removal of the deleted user''s dataset files and model artifacts.';

create or replace function private.storage_cleanup_next()
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_msg record;
  v_prefix text;
  v_user_folder boolean;
begin
  select * into v_msg from pgmq.read(queue_name => 'storage_cleanup', vt => 120, qty => 1);
  if not found then
    return null;
  end if;
  v_prefix := v_msg.message ->> 'prefix';
  -- A deleted user's whole folder: only "<user_id>/" of the message's own user_id.
  v_user_folder := v_msg.message ? 'user_id' and v_prefix ~ '^[0-9a-f-]{36}/$'
    and v_prefix = (v_msg.message ->> 'user_id') || '/';
  if v_msg.message ->> 'bucket' not in ('lora-models', 'lora-datasets')
     or not (v_user_folder or coalesce(v_prefix ~ '^[0-9a-f-]{36}/[0-9a-f-]{36}/$', false))
     or v_msg.read_ct > 20 then
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
  'Reads one storage_cleanup message (invisible for 120 s): {action: remove, msg_id, bucket, prefix} for the worker (prefix {user_id}/{id}/, or {user_id}/ for a deleted user), deferred (a dataset an active job still uses; retried in 5 minutes) or discarded (malformed or read more than 20 times: archived). Null when the queue is empty.';
revoke all on function private.storage_cleanup_next() from public, anon, authenticated;
