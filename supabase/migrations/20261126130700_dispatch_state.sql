-- The dispatch worker's state transitions, one SQL function each, so every
-- step is one atomic, testable statement and the worker (Edge Function
-- dispatch-training-job, through SUPABASE_DB_URL) holds no state of its own:
--
--   dispatch_next        read one message and claim its job (queued -> dispatching, committed
--                        BEFORE any HTTP call), or settle a message that needs no work
--   dispatch_save_request  store the exact submit body before it is sent
--   dispatch_record_submitted  external id + running + events + delete message, one transaction
--   dispatch_record_retry      back to queued + delayed message (backoff), or LT313 after N attempts
--   dispatch_record_failure    failed with {code, message, kind}
--
-- A message is deleted only in the transaction that commits its outcome; a
-- worker that dies leaves it invisible until the visibility timeout, and the
-- next claim of a job left in dispatching (or with a submit started) returns
-- action "recover": look the job up at the cluster by key before any submit.

create function private.dispatch_add_events(p_job_id uuid, p_events jsonb)
returns void
language sql
set search_path = ''
as $$
  insert into public.job_events (job_id, level, type, message, data)
  select p_job_id, coalesce(e.value ->> 'level', 'info')::public.job_event_level, e.value ->> 'type',
         e.value ->> 'message', coalesce(e.value -> 'data', '{}'::jsonb)
    from jsonb_array_elements(coalesce(p_events, '[]'::jsonb)) with ordinality as e(value, n)
   order by e.n
$$;
comment on function private.dispatch_add_events(uuid, jsonb) is
  'Appends worker events [{level?, type, message, data?}] to a job''s job_events, in order.';

create function private.dispatch_backoff_seconds(p_attempt integer)
returns integer
language sql
volatile
set search_path = ''
as $$
  -- Exponential with "equal jitter": half the ceiling plus a random half, at least 1 s.
  with c as (
    select least(private.job_setting('dispatch_retry_max_seconds'),
                 private.job_setting('dispatch_retry_base_seconds') * power(2::numeric, greatest(p_attempt, 1) - 1)) as ceiling
  )
  select greatest(1, ceil(c.ceiling / 2 + random() * c.ceiling / 2))::integer from c
$$;
comment on function private.dispatch_backoff_seconds(integer) is
  'Delay before the dispatch attempt after attempt p_attempt: between half and all of min(dispatch_retry_max_seconds, dispatch_retry_base_seconds x 2^(p_attempt-1)), at least 1 s.';

create function private.dispatch_next(p_queue text default 'training_dispatch')
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_vt integer := private.job_setting('dispatch_visibility_timeout_seconds')::integer;
  v_msg record;
  v_job_id uuid;
  v_job public.training_jobs;
  v_state private.training_job_dispatch;
  v_key text;
  v_action text;
  v_path text;
begin
  select * into v_msg from pgmq.read(queue_name => p_queue, vt => v_vt, qty => 1);
  if not found then
    return null;
  end if;
  begin
    v_job_id := (v_msg.message ->> 'job_id')::uuid;
  exception when invalid_text_representation then
    v_job_id := null;
  end;
  if v_job_id is null then
    perform pgmq.archive(queue_name => p_queue, msg_id => v_msg.msg_id);
    return jsonb_build_object('action', 'discarded', 'msg_id', v_msg.msg_id, 'reason', 'The message has no job_id');
  end if;
  select * into v_job from public.training_jobs j where j.id = v_job_id for update;
  if not found then
    perform pgmq.delete(queue_name => p_queue, msg_id => v_msg.msg_id);
    return jsonb_build_object('action', 'gone', 'msg_id', v_msg.msg_id, 'job_id', v_job_id);
  end if;

  if v_msg.read_ct > private.job_setting('dispatch_max_deliveries') then
    perform pgmq.archive(queue_name => p_queue, msg_id => v_msg.msg_id);
    if v_job.status in ('queued', 'dispatching') then
      update public.training_jobs set status = 'failed', error = jsonb_build_object('code', 'LT314', 'kind', 'system',
        'message', format('Dispatch was attempted %s times without finishing; the job was stopped and an operator alerted', v_msg.read_ct - 1),
        'details', jsonb_build_object('msg_id', v_msg.msg_id, 'queue', p_queue))
       where id = v_job.id;
    end if;
    return jsonb_build_object('action', 'poisoned', 'msg_id', v_msg.msg_id, 'job_id', v_job.id, 'read_ct', v_msg.read_ct);
  end if;

  if v_job.status not in ('queued', 'dispatching') then
    -- Pending jobs get a message when admitted; later states need no dispatch (a redelivery).
    perform pgmq.delete(queue_name => p_queue, msg_id => v_msg.msg_id);
    return jsonb_build_object('action', case when v_job.status = 'pending' then 'not_admitted' else 'done' end,
      'msg_id', v_msg.msg_id, 'job_id', v_job.id, 'status', v_job.status);
  end if;

  v_key := private.cluster_idempotency_key(v_job.id, v_job.attempt_count + 1);
  select * into v_state from private.training_job_dispatch s where s.job_id = v_job.id for update;
  if v_job.status = 'dispatching' and v_state.lease_until > clock_timestamp() then
    -- Another worker holds this job through another message: look again when its lease ends.
    perform pgmq.set_vt(queue_name => p_queue, msg_id => v_msg.msg_id,
      vt => ceil(extract(epoch from v_state.lease_until - clock_timestamp()))::integer + 1);
    return jsonb_build_object('action', 'busy', 'msg_id', v_msg.msg_id, 'job_id', v_job.id);
  end if;

  if v_state.job_id is null or v_state.cluster_idempotency_key <> v_key then
    -- First claim of this run (a retry from running starts a new run, with a new key).
    insert into private.training_job_dispatch (job_id, cluster_idempotency_key)
    values (v_job.id, v_key)
    on conflict (job_id) do update
      set cluster_idempotency_key = excluded.cluster_idempotency_key, request = null,
          dataset_url_expires_at = null, submit_started_at = null
    returning * into v_state;
  end if;
  update private.training_job_dispatch set lease_until = clock_timestamp() + v_vt * interval '1 second'
   where job_id = v_job.id;
  if v_job.status = 'queued' then
    update public.training_jobs set status = 'dispatching' where id = v_job.id returning * into v_job;
  end if;
  -- A submit may have reached the cluster (a crash, or an unknown outcome): look before submitting.
  v_action := case when v_state.submit_started_at is not null then 'recover' else 'submit' end;
  select d.storage_path into v_path from public.datasets d where d.id = v_job.dataset_id;
  return jsonb_build_object(
    'action', v_action,
    'msg_id', v_msg.msg_id,
    'read_ct', v_msg.read_ct,
    'job_id', v_job.id,
    'run', v_job.attempt_count + 1,
    'dispatch_attempt', v_job.dispatch_attempts,
    'max_attempts', private.job_setting('dispatch_max_attempts'),
    'cluster_idempotency_key', v_key,
    -- The saved body is reused while its signed URL stays valid long enough for the download.
    'request', case when v_state.dataset_url_expires_at > now()
                      + private.job_setting('dataset_url_min_remaining_seconds') * interval '1 second'
                    then v_state.request end,
    'dataset_bucket', 'lora-datasets',
    'dataset_path', v_path,
    'dataset_url_ttl_seconds', private.job_setting('dataset_url_ttl_seconds'),
    'cluster_config', private.cluster_job_config(v_job.id));
end;
$$;
comment on function private.dispatch_next(text) is
  'Reads one dispatch message (visibility timeout dispatch_visibility_timeout_seconds) and returns what to do: submit or recover (job claimed: queued -> dispatching committed, with key, saved request, dataset path and cluster config), busy, done, not_admitted, gone, discarded or poisoned (archived; LT314). Null when the queue is empty.';

create function private.dispatch_save_request(p_job_id uuid, p_request jsonb, p_dataset_url_expires_at timestamptz)
returns boolean
language sql
set search_path = ''
as $$
  update private.training_job_dispatch s
     set request = p_request, dataset_url_expires_at = p_dataset_url_expires_at,
         submit_started_at = coalesce(s.submit_started_at, now())
    from public.training_jobs j
   where s.job_id = p_job_id and j.id = s.job_id and j.status = 'dispatching'
  returning true
$$;
comment on function private.dispatch_save_request(uuid, jsonb, timestamptz) is
  'Stores the submit body about to be sent (and marks that a submit may have started); null when the job is no longer dispatching, in which case nothing may be sent.';

create function private.dispatch_record_submitted(
  p_queue text, p_msg_id bigint, p_job_id uuid, p_external_job_id text, p_details jsonb, p_events jsonb)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_job public.training_jobs;
  v_action text;
begin
  select * into v_job from public.training_jobs j where j.id = p_job_id for update;
  perform pgmq.delete(queue_name => p_queue, msg_id => p_msg_id);
  if v_job.id is null then
    return jsonb_build_object('action', 'gone');
  end if;
  perform private.dispatch_add_events(p_job_id, p_events);
  if v_job.status = 'dispatching' then
    update public.training_jobs set external_job_id = p_external_job_id, status = 'running' where id = p_job_id;
    v_action := 'running';
  elsif v_job.status = 'running' and v_job.external_job_id = p_external_job_id then
    return jsonb_build_object('action', 'already_recorded');
  elsif v_job.status = 'cancelling' then
    update public.training_jobs set external_job_id = coalesce(external_job_id, p_external_job_id) where id = p_job_id;
    v_action := 'cancel_requested'; -- the canceller stops the cluster job it now knows
  elsif v_job.status = 'queued' then
    v_action := 'deferred'; -- a later attempt adopts this cluster job through its key
  else
    v_action := 'orphaned'; -- the job ended meanwhile: the worker cancels the cluster job
  end if;
  perform private.dispatch_add_events(p_job_id, jsonb_build_array(jsonb_build_object(
    'level', case when v_action in ('running', 'cancel_requested') then 'info' else 'warning' end,
    'type', 'dispatch.submitted',
    'message', format('The GPU cluster %s job "%s"%s',
      case when (p_details ->> 'adopted')::boolean then 'already had' when (p_details ->> 'replayed')::boolean then 'replayed'
           else 'accepted' end,
      p_external_job_id,
      case v_action when 'running' then '' when 'cancel_requested' then ' while the job was being cancelled'
           else format(' but the job is %s', v_job.status) end),
    'data', coalesce(p_details, '{}'::jsonb) || jsonb_build_object('external_job_id', p_external_job_id, 'outcome', v_action))));
  return jsonb_build_object('action', v_action);
end;
$$;
comment on function private.dispatch_record_submitted(text, bigint, uuid, text, jsonb, jsonb) is
  'In one transaction: records the cluster job of a dispatching job (external_job_id, status running), appends the worker''s events and a dispatch.submitted event, and deletes the message. Returns the outcome: running, already_recorded, cancel_requested, deferred, orphaned (cancel the cluster job) or gone.';

create function private.dispatch_record_retry(
  p_queue text, p_msg_id bigint, p_job_id uuid, p_error jsonb, p_retry_after_seconds numeric, p_events jsonb)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_job public.training_jobs;
  v_max integer := private.job_setting('dispatch_max_attempts')::integer;
  v_delay integer;
begin
  select * into v_job from public.training_jobs j where j.id = p_job_id for update;
  perform pgmq.delete(queue_name => p_queue, msg_id => p_msg_id);
  if v_job.id is null then
    return jsonb_build_object('action', 'gone');
  end if;
  perform private.dispatch_add_events(p_job_id, p_events);
  if v_job.status <> 'dispatching' then
    return jsonb_build_object('action', 'ignored', 'status', v_job.status);
  end if;
  if v_job.dispatch_attempts >= v_max then
    update public.training_jobs set status = 'failed', error = jsonb_build_object('code', 'LT313', 'kind', 'system',
      'message', format('The GPU cluster could not take the job after %s attempts: %s', v_job.dispatch_attempts, p_error ->> 'message'),
      'details', p_error)
     where id = p_job_id;
    return jsonb_build_object('action', 'failed', 'attempts', v_job.dispatch_attempts);
  end if;
  v_delay := greatest(ceil(coalesce(p_retry_after_seconds, 0))::integer, private.dispatch_backoff_seconds(v_job.dispatch_attempts));
  update public.training_jobs set status = 'queued' where id = p_job_id;
  perform private.dispatch_add_events(p_job_id, jsonb_build_array(jsonb_build_object(
    'level', 'warning', 'type', 'dispatch.retry_scheduled',
    'message', format('Submission attempt %s of %s failed (%s); trying again in %s s',
      v_job.dispatch_attempts, v_max, p_error ->> 'message', v_delay),
    'data', jsonb_build_object('attempt', v_job.dispatch_attempts, 'max_attempts', v_max, 'delay_seconds', v_delay, 'error', p_error))));
  perform pgmq.send(queue_name => p_queue, msg => jsonb_build_object('job_id', p_job_id), delay => v_delay);
  return jsonb_build_object('action', 'retry_scheduled', 'delay_seconds', v_delay, 'attempt', v_job.dispatch_attempts);
end;
$$;
comment on function private.dispatch_record_retry(text, bigint, uuid, jsonb, numeric, jsonb) is
  'In one transaction, after a transient failure of a dispatching job: back to queued with a dispatch.retry_scheduled event and a new message delayed by max(Retry-After, backoff), or after dispatch_max_attempts failed with LT313; deletes the message.';

create function private.dispatch_record_failure(
  p_queue text, p_msg_id bigint, p_job_id uuid, p_error jsonb, p_events jsonb)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_job public.training_jobs;
begin
  select * into v_job from public.training_jobs j where j.id = p_job_id for update;
  perform pgmq.delete(queue_name => p_queue, msg_id => p_msg_id);
  if v_job.id is null then
    return jsonb_build_object('action', 'gone');
  end if;
  perform private.dispatch_add_events(p_job_id, p_events);
  if v_job.status <> 'dispatching' then
    return jsonb_build_object('action', 'ignored', 'status', v_job.status);
  end if;
  update public.training_jobs set status = 'failed', error = p_error where id = p_job_id;
  return jsonb_build_object('action', 'failed');
end;
$$;
comment on function private.dispatch_record_failure(text, bigint, uuid, jsonb, jsonb) is
  'In one transaction: fails a dispatching job with p_error {code, message, kind: user|system, details?}, appends the worker''s events and deletes the message.';

revoke all on function private.dispatch_add_events(uuid, jsonb) from public;
revoke all on function private.dispatch_backoff_seconds(integer) from public;
revoke all on function private.dispatch_next(text) from public;
revoke all on function private.dispatch_save_request(uuid, jsonb, timestamptz) from public;
revoke all on function private.dispatch_record_submitted(text, bigint, uuid, text, jsonb, jsonb) from public;
revoke all on function private.dispatch_record_retry(text, bigint, uuid, jsonb, numeric, jsonb) from public;
revoke all on function private.dispatch_record_failure(text, bigint, uuid, jsonb, jsonb) from public;
