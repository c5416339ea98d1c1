-- What the validate-dataset worker calls, each step one atomic function:
--
--   claim_dataset_validation()          read a message, lease its run (or deal with it)
--   claim_dataset_example_hashes()  ┐   one transaction per chunk: duplicates
--   save_dataset_validation_chunk() ┘   found, then the cursor that counts them
--   continue_dataset_validation()       budget spent: release, message visible again, wake
--   finish_dataset_validation()         verdict, statistics and report on the dataset
--   retry_dataset_validation()          an attempt failed: back off, or give up (LT282)
--   fail_dataset_validation()           the file cannot be validated (e.g. deleted: LT283)
--
-- Every call after the claim presents the lease token (and the chunk number
-- it continues), so an invocation that lost its run (taken over after its
-- lease ran out, or voided by a re-upload) gets LT286 and saves nothing.
-- A message whose run's lease is still set when it is read again belongs to
-- an invocation that died: a failed attempt (unless it made progress). After
-- max_attempts consecutive failed attempts the message is archived and the
-- dataset gets error {code: LT282, kind: system}.

create function private.dataset_validation_leased(p_dataset_id uuid, p_token uuid, p_seq integer default null)
returns private.dataset_validation_runs
language plpgsql
set search_path = ''
as $$
declare
  v_run private.dataset_validation_runs;
begin
  select * into v_run from private.dataset_validation_runs r
   where r.dataset_id = p_dataset_id and r.lease_token = p_token
   for update;
  if not found or (p_seq is not null and v_run.seq <> p_seq) then
    raise exception 'The validation run of dataset "%" is no longer leased by this worker', p_dataset_id
      using errcode = 'LT286',
            hint = 'Another invocation took the run over, or the file was uploaded again; stop working on it.';
  end if;
  return v_run;
end;
$$;
comment on function private.dataset_validation_leased(uuid, uuid, integer) is
  'Locks and returns the run of p_dataset_id if p_token holds its lease (and, when given, p_seq chunks are saved); raises LT286 otherwise.';

create function private.dataset_validation_close(
  p_dataset_id uuid, p_outcome text, p_msg_id bigint default null, p_archive boolean default false)
returns void
language plpgsql
set search_path = ''
as $$
declare
  v_run private.dataset_validation_runs;
  v_msg bigint;
begin
  select * into v_run from private.dataset_validation_runs r where r.dataset_id = p_dataset_id for update;
  for v_msg in select distinct m from unnest(array[p_msg_id, v_run.lease_msg_id, v_run.msg_id]) as m where m is not null loop
    if p_archive and v_msg = p_msg_id then
      perform pgmq.archive(queue_name => v_run.queue_name, msg_id => v_msg);
    else
      perform pgmq.delete(queue_name => v_run.queue_name, msg_id => v_msg);
    end if;
  end loop;
  update private.dataset_validation_runs r
     set outcome = p_outcome, finished_at = now(), cursor = null,
         lease_token = null, lease_until = null, lease_msg_id = null, lease_seq = null
   where r.dataset_id = p_dataset_id;
  delete from private.dataset_example_hashes h where h.dataset_id = p_dataset_id;
end;
$$;
comment on function private.dataset_validation_close(uuid, text, bigint, boolean) is
  'Ends a run with p_outcome: deletes its messages (archives p_msg_id when p_archive), clears cursor and lease, drops its duplicate store.';

create function private.dataset_validation_give_up(p_dataset_id uuid, p_attempts integer, p_msg_id bigint)
returns void
language plpgsql
set search_path = ''
as $$
begin
  update public.datasets d
     set status = 'error',
         error = jsonb_build_object(
           'code', 'LT282', 'kind', 'system',
           'message', format('Validation failed %s times in a row; the file was not validated', p_attempts),
           'hint', 'Upload the file again. If it keeps failing, report the dataset id: operators find the cause in private.dataset_validation_runs.last_error.')
   where d.id = p_dataset_id and d.status = 'validating';
  perform private.dataset_validation_close(p_dataset_id, 'failed', p_msg_id, true);
  raise warning 'Dataset validation of "%" failed % times in a row; its message % is archived', p_dataset_id, p_attempts, p_msg_id
    using errcode = 'LT282';
end;
$$;
comment on function private.dataset_validation_give_up(uuid, integer, bigint) is
  'Attempts exhausted: the dataset gets error LT282 (kind system), message p_msg_id is archived, the run ends as failed.';

create function private.claim_dataset_validation(p_queue text default 'dataset_validation', p_vt integer default null)
returns table (
  dataset_id uuid, generation integer, lease_token uuid, msg_id bigint, read_ct integer,
  object_name text, size_bytes bigint, seq integer, options jsonb, cursor jsonb)
language plpgsql
set search_path = ''
as $$
declare
  v_vt integer := coalesce(p_vt, private.dataset_validation_setting('visibility_timeout_seconds')::integer);
  v_max integer := private.dataset_validation_setting('max_attempts')::integer;
  v_msg pgmq.message_record;
  v_run private.dataset_validation_runs;
  v_dataset record;
  v_id uuid;
begin
  -- Stale, duplicate and poison messages are dealt with here; look a little further for real work.
  for i in 1..25 loop
    select * into v_msg from pgmq.read(queue_name => p_queue, vt => v_vt, qty => 1);
    exit when not found;
    if jsonb_typeof(v_msg.message) is distinct from 'object'
       or coalesce(v_msg.message ->> 'dataset_id', '') !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
       or jsonb_typeof(v_msg.message -> 'generation') is distinct from 'number'
       or (v_msg.message ->> 'generation') !~ '^[1-9][0-9]{0,8}$' then
      perform pgmq.archive(queue_name => p_queue, msg_id => v_msg.msg_id);
      raise warning 'Archived malformed dataset validation message % of queue "%": %', v_msg.msg_id, p_queue, v_msg.message
        using errcode = 'LT285';
      continue;
    end if;
    v_id := (v_msg.message ->> 'dataset_id')::uuid;
    select * into v_run from private.dataset_validation_runs r where r.dataset_id = v_id for update;
    if not found or v_run.generation <> (v_msg.message ->> 'generation')::integer
       or v_run.finished_at is not null or v_run.queue_name <> p_queue then
      perform pgmq.delete(queue_name => p_queue, msg_id => v_msg.msg_id); -- an older upload's, or done
      continue;
    end if;
    if v_run.lease_token is not null and v_run.lease_until > clock_timestamp() and v_run.lease_msg_id <> v_msg.msg_id then
      perform pgmq.delete(queue_name => p_queue, msg_id => v_msg.msg_id); -- a duplicate of the message being worked on
      continue;
    end if;
    if v_run.lease_token is not null then
      -- The lease outlived its message's visibility: that invocation died.
      v_run.failed_attempts := case when v_run.seq > v_run.lease_seq then 1 else v_run.failed_attempts + 1 end;
      v_run.last_error := format('Attempt %s ended without releasing the run (the worker crashed, was killed or ran out of time)',
        v_run.invocations);
      if v_run.failed_attempts >= v_max then
        update private.dataset_validation_runs r set last_error = v_run.last_error, failed_attempts = v_run.failed_attempts
         where r.dataset_id = v_id;
        perform private.dataset_validation_give_up(v_id, v_run.failed_attempts, v_msg.msg_id);
        continue;
      end if;
    end if;
    select d.status, d.deleted_at into v_dataset from public.datasets d where d.id = v_id for update;
    if v_dataset.status <> 'validating' or v_dataset.deleted_at is not null then
      update public.datasets d
         set status = 'error', error = jsonb_build_object('code', 'LT284', 'kind', 'user',
               'message', 'Validation was cancelled: the dataset was deleted')
       where d.id = v_id and d.status = 'validating';
      perform private.dataset_validation_close(v_id, 'cancelled', v_msg.msg_id);
      continue;
    end if;
    update private.dataset_validation_runs r
       set lease_token = gen_random_uuid(), lease_msg_id = v_msg.msg_id, msg_id = v_msg.msg_id,
           lease_until = v_msg.vt, lease_seq = r.seq, failed_attempts = v_run.failed_attempts,
           last_error = v_run.last_error, invocations = r.invocations + 1,
           started_at = coalesce(r.started_at, now()),
           options = coalesce(r.options, private.dataset_validation_options(r.dataset_id))
     where r.dataset_id = v_id
    returning r.* into v_run;
    return query select v_run.dataset_id, v_run.generation, v_run.lease_token, v_msg.msg_id, v_msg.read_ct,
      v_run.object_name, v_run.size_bytes, v_run.seq, v_run.options, v_run.cursor;
    return;
  end loop;
end;
$$;
comment on function private.claim_dataset_validation(text, integer) is
  'Reads the next message of p_queue (visibility p_vt seconds, default visibility_timeout_seconds) and leases its run: returns the run with a lease token, or no row when there is no work. Archives malformed messages (LT285 warning), deletes stale and duplicate ones, gives up after max_attempts (LT282), cancels runs of deleted datasets (LT284).';

create function private.claim_dataset_example_hashes(p_dataset_id uuid, p_token uuid, p_seq integer, p_hashes jsonb)
returns table (line integer, first_line integer)
language plpgsql
set search_path = ''
as $$
declare
  v_run private.dataset_validation_runs := private.dataset_validation_leased(p_dataset_id, p_token, p_seq);
begin
  -- Rows this statement inserts are not visible to its own join, so the
  -- first line of a hash new in this chunk comes from the chunk itself.
  return query
    with entry as (
      select ('x' || e.hash)::bit(64)::bigint as hash, e.line
      from jsonb_to_recordset(coalesce(p_hashes, '[]'::jsonb)) as e(hash text, line integer)
    ), first_in_chunk as (
      select e.hash, min(e.line) as line from entry e group by e.hash
    ), stored as (
      insert into private.dataset_example_hashes (dataset_id, generation, hash, line)
      select p_dataset_id, v_run.generation, f.hash, f.line from first_in_chunk f
      on conflict do nothing
    )
    select e.line, least(h.line, f.line)
    from entry e
    join first_in_chunk f on f.hash = e.hash
    left join private.dataset_example_hashes h
      on h.dataset_id = p_dataset_id and h.generation = v_run.generation and h.hash = e.hash
    where least(h.line, f.line) < e.line
    order by e.line;
end;
$$;
comment on function private.claim_dataset_example_hashes(uuid, uuid, integer, jsonb) is
  'Duplicate store claim for one chunk (p_hashes: [{hash: 16 hex digits, line}] in line order): records first occurrences and returns each entry first seen on an earlier line. Idempotent: a redelivered chunk finds its own lines. Call in the transaction that then saves the cursor.';

create function private.save_dataset_validation_chunk(
  p_dataset_id uuid, p_token uuid, p_seq integer, p_cursor jsonb, p_bytes_done bigint, p_progress_pct numeric)
returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_run private.dataset_validation_runs := private.dataset_validation_leased(p_dataset_id, p_token, p_seq);
  v_pct numeric(5, 2) := least(greatest(round(coalesce(p_progress_pct, 0), 2), 0), 99.99);
begin
  update private.dataset_validation_runs r
     set cursor = p_cursor, seq = r.seq + 1, bytes_done = p_bytes_done
   where r.dataset_id = p_dataset_id;
  -- Realtime subscribers get a progress update every 5 %, not every chunk.
  update public.datasets d set progress_pct = v_pct
   where d.id = p_dataset_id and d.status = 'validating' and floor(v_pct / 5) > floor(d.progress_pct / 5);
  return v_run.seq + 1;
end;
$$;
comment on function private.save_dataset_validation_chunk(uuid, uuid, integer, jsonb, bigint, numeric) is
  'Saves the engine cursor after chunk p_seq + 1 (the lease holder only, LT286 otherwise) and moves the dataset''s progress_pct when it crosses a 5 % step. Returns the new seq.';

create function private.continue_dataset_validation(p_dataset_id uuid, p_token uuid)
returns void
language plpgsql
set search_path = ''
as $$
declare
  v_run private.dataset_validation_runs := private.dataset_validation_leased(p_dataset_id, p_token);
begin
  update private.dataset_validation_runs r
     set lease_token = null, lease_until = null, lease_msg_id = null, lease_seq = null, last_error = null,
         -- The worker saves at least one chunk per claim; a release without progress is a failure.
         failed_attempts = case when r.seq > v_run.lease_seq then 0 else r.failed_attempts + 1 end
   where r.dataset_id = p_dataset_id;
  perform pgmq.set_vt(queue_name => v_run.queue_name, msg_id => v_run.lease_msg_id, vt => 0);
  if v_run.queue_name = 'dataset_validation' then
    perform private.invoke_worker('validate-dataset', jsonb_build_object('dataset_id', p_dataset_id));
  end if;
end;
$$;
comment on function private.continue_dataset_validation(uuid, uuid) is
  'The invocation''s budget is spent: releases the lease, makes the message visible again and wakes validate-dataset after commit for the next chunks.';

create function private.finish_dataset_validation(
  p_dataset_id uuid, p_token uuid, p_seq integer, p_result jsonb, p_error jsonb default null)
returns public.dataset_status
language plpgsql
set search_path = ''
as $$
declare
  v_status public.dataset_status := case when p_result ->> 'verdict' = 'ready'
    then 'ready'::public.dataset_status else 'error'::public.dataset_status end;
begin
  -- Raises LT286 unless the caller still holds the run's lease for this chunk.
  perform private.dataset_validation_leased(p_dataset_id, p_token, p_seq);
  update public.datasets d
     set status = v_status, format = (p_result ->> 'format')::public.dataset_format,
         stats = p_result -> 'stats', report = p_result -> 'report',
         error = case when v_status = 'error' then p_error end, progress_pct = 100
   where d.id = p_dataset_id and d.status = 'validating';
  if not found then
    perform private.dataset_validation_close(p_dataset_id, 'cancelled');
    return null;
  end if;
  perform private.dataset_validation_close(p_dataset_id, v_status::text);
  return v_status;
end;
$$;
comment on function private.finish_dataset_validation(uuid, uuid, integer, jsonb, jsonb) is
  'Writes the verdict (types/dataset.ts ValidationResult: format, stats, report; p_error on the dataset when the verdict is error) and ends the run. Returns the new status, or null when the dataset had left validating meanwhile.';

create function private.retry_dataset_validation(p_dataset_id uuid, p_token uuid, p_error text)
returns text
language plpgsql
set search_path = ''
as $$
declare
  v_run private.dataset_validation_runs := private.dataset_validation_leased(p_dataset_id, p_token);
  v_failed integer := case when v_run.seq > v_run.lease_seq then 1 else v_run.failed_attempts + 1 end;
  v_delay integer;
begin
  update private.dataset_validation_runs r
     set failed_attempts = v_failed, last_error = left(p_error, 2000),
         lease_token = null, lease_until = null, lease_msg_id = null, lease_seq = null
   where r.dataset_id = p_dataset_id;
  if v_failed >= private.dataset_validation_setting('max_attempts') then
    perform private.dataset_validation_give_up(p_dataset_id, v_failed, v_run.lease_msg_id);
    return 'failed';
  end if;
  v_delay := least(60, private.dataset_validation_setting('retry_delay_seconds') * power(2, v_failed - 1))::integer;
  perform pgmq.set_vt(queue_name => v_run.queue_name, msg_id => v_run.lease_msg_id, vt => v_delay);
  return 'retrying';
end;
$$;
comment on function private.retry_dataset_validation(uuid, uuid, text) is
  'An attempt failed with p_error: counts it, and either makes the message visible again after a backoff (returns retrying) or gives up with LT282 once max_attempts is reached (returns failed).';

create function private.fail_dataset_validation(p_dataset_id uuid, p_token uuid, p_error jsonb)
returns void
language plpgsql
set search_path = ''
as $$
declare
  v_run private.dataset_validation_runs := private.dataset_validation_leased(p_dataset_id, p_token);
begin
  update public.datasets d set status = 'error', error = p_error
   where d.id = v_run.dataset_id and d.status = 'validating';
  perform private.dataset_validation_close(p_dataset_id, case when p_error ->> 'kind' = 'user' then 'error' else 'failed' end);
end;
$$;
comment on function private.fail_dataset_validation(uuid, uuid, jsonb) is
  'The file cannot be validated at all (e.g. deleted from Storage meanwhile: LT283): the dataset gets p_error ({code, message, kind}) and the run ends.';

revoke all on function private.dataset_validation_leased(uuid, uuid, integer) from public;
revoke all on function private.dataset_validation_close(uuid, text, bigint, boolean) from public;
revoke all on function private.dataset_validation_give_up(uuid, integer, bigint) from public;
revoke all on function private.claim_dataset_validation(text, integer) from public;
revoke all on function private.claim_dataset_example_hashes(uuid, uuid, integer, jsonb) from public;
revoke all on function private.save_dataset_validation_chunk(uuid, uuid, integer, jsonb, bigint, numeric) from public;
revoke all on function private.continue_dataset_validation(uuid, uuid) from public;
revoke all on function private.finish_dataset_validation(uuid, uuid, integer, jsonb, jsonb) from public;
revoke all on function private.retry_dataset_validation(uuid, uuid, text) from public;
revoke all on function private.fail_dataset_validation(uuid, uuid, jsonb) from public;
