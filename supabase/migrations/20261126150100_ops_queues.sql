-- Operations: pgmq queues and their dead messages.
--
-- ops.queue_health: depth, visible messages, oldest message age and the
-- archive per queue. ops.archived_messages: every archived (dead) message
-- with the reason it was archived. pgmq keeps no reason, so it is derived
-- from the row the message was about (the dataset's validation run, the
-- job's error, the message's shape), the same rules the workers archive by.
-- ops.requeue_archived_message(): put the work back in its queue when it can
-- still run, and wake its worker.
-- Queue tables are named as pgmq names them (q_<name>, a_<name>), found
-- through pgmq.list_queues(), so new queues show up without a migration.
-- Only pgmq 1.4 columns are read (no headers), so 1.4 and 1.5 both work.

create type ops.queue_stat as (
  queue_name text, worker text, messages bigint, visible bigint, invisible bigint,
  oldest_enqueued_at timestamptz, oldest_age interval, oldest_visible_age interval, max_read_ct integer,
  archived bigint, archived_last_24h bigint, last_archived_at timestamptz);
comment on type ops.queue_stat is 'One row of ops.queue_health (see ops.queue_stats()).';

create function ops.queue_stats()
returns setof ops.queue_stat
language plpgsql
stable
set search_path = ''
as $$
declare
  v_queue text;
begin
  for v_queue in select lower(l.queue_name::text) from pgmq.list_queues() l order by 1 loop
    return query execute format(
      $q$select %1$L::text, ops.queue_worker(%1$L), count(*), count(*) filter (where m.vt <= now()),
                count(*) filter (where m.vt > now()), min(m.enqueued_at), now() - min(m.enqueued_at),
                now() - min(m.enqueued_at) filter (where m.vt <= now()), max(m.read_ct),
                (select count(*) from pgmq.%3$I),
                (select count(*) from pgmq.%3$I a where a.archived_at > now() - interval '24 hours'),
                (select max(a.archived_at) from pgmq.%3$I a)
           from pgmq.%2$I m$q$,
      v_queue, 'q_' || v_queue, 'a_' || v_queue);
  end loop;
end;
$$;
comment on function ops.queue_stats() is
  'One row per pgmq queue: depth, visible and invisible (delayed or being worked on) messages, oldest message and its age, oldest visible message age, highest read count, archive size, archived in the last 24 h, last archive time. Read through ops.queue_health.';

create view ops.queue_health
with (security_invoker = true)
as select * from ops.queue_stats();
comment on view ops.queue_health is
  'Per queue: depth, oldest message age and archive (dead messages). A visible message older than a minute or two means its worker is not being woken; a growing archive means poison messages (ops.archived_messages).';

create function ops.archive_reason(p_queue text, p_message jsonb, p_read_ct integer)
returns table (subject_kind text, subject_id uuid, subject_status text, reason text, requeueable boolean)
language plpgsql
stable
set search_path = ''
as $$
declare
  v_uuid constant text := '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
  v_id uuid;
  v_run private.dataset_validation_runs;
  v_dataset public.datasets;
  v_job public.training_jobs;
begin
  if p_queue = 'dataset_validation' then
    if jsonb_typeof(p_message) is distinct from 'object' or coalesce(p_message ->> 'dataset_id', '') !~ v_uuid
       or coalesce(p_message ->> 'generation', '') !~ '^[1-9][0-9]{0,8}$' then
      return query select 'dataset'::text, null::uuid, null::text,
        'Malformed message (LT285): not {"dataset_id", "generation"}'::text, false;
      return;
    end if;
    v_id := (p_message ->> 'dataset_id')::uuid;
    select * into v_dataset from public.datasets d where d.id = v_id;
    select * into v_run from private.dataset_validation_runs r where r.dataset_id = v_id;
    if v_dataset.id is null then
      return query select 'dataset'::text, v_id, null::text, 'The dataset no longer exists'::text, false;
    elsif v_run.generation is distinct from (p_message ->> 'generation')::integer then
      return query select 'dataset'::text, v_id, v_dataset.status::text,
        format('Superseded: the file was uploaded again (message generation %s, current %s)',
          p_message ->> 'generation', v_run.generation), false;
    elsif v_run.outcome = 'failed' then
      return query select 'dataset'::text, v_id, v_dataset.status::text,
        format('Validation failed %s times in a row (LT282): %s', v_run.failed_attempts, coalesce(v_run.last_error, 'no error recorded')),
        v_dataset.status = 'error' and v_dataset.deleted_at is null;
    else
      return query select 'dataset'::text, v_id, v_dataset.status::text,
        format('Archived while the run was %s after %s reads', coalesce(v_run.outcome, 'unfinished'), p_read_ct),
        v_run.finished_at is null and v_dataset.deleted_at is null;
    end if;
  elsif p_queue = 'training_dispatch' then
    if jsonb_typeof(p_message) is distinct from 'object' or coalesce(p_message ->> 'job_id', '') !~ v_uuid then
      return query select 'job'::text, null::uuid, null::text, 'Malformed message: no job_id'::text, false;
      return;
    end if;
    v_id := (p_message ->> 'job_id')::uuid;
    select * into v_job from public.training_jobs j where j.id = v_id;
    if v_job.id is null then
      return query select 'job'::text, v_id, null::text, 'The job no longer exists'::text, false;
    elsif v_job.status = 'failed' and v_job.error ->> 'code' = 'LT314' then
      return query select 'job'::text, v_id, v_job.status::text,
        format('Poison message (LT314): delivered %s times without an outcome; the job was failed', p_read_ct), false;
    else
      return query select 'job'::text, v_id, v_job.status::text,
        format('Archived after %s deliveries (job %s)', p_read_ct, v_job.status),
        v_job.status in ('queued', 'dispatching');
    end if;
  elsif p_queue = 'storage_cleanup' then
    if p_message ->> 'bucket' is null or p_message ->> 'bucket' not in ('lora-models', 'lora-datasets')
       or coalesce(p_message ->> 'prefix', '') !~ '^[0-9a-f-]{36}/[0-9a-f-]{36}/$' then
      return query select 'storage_prefix'::text, null::uuid, null::text,
        'Malformed message: bucket or prefix invalid'::text, false;
    else
      return query select 'storage_prefix'::text, null::uuid, null::text,
        format('Gave up after %s reads: removing %s/%s kept failing', p_read_ct, p_message ->> 'bucket', p_message ->> 'prefix'),
        true;
    end if;
  else
    return query select null::text, null::uuid, null::text,
      format('Archived by the queue''s consumer after %s reads (no reason recorded)', p_read_ct), true;
  end if;
end;
$$;
comment on function ops.archive_reason(text, jsonb, integer) is
  'Why an archived message of a project queue was archived, derived from what it was about: {subject_kind, subject_id, subject_status, reason, requeueable}. requeueable: the work can still run (see ops.requeue_archived_message).';

create type ops.archived_message as (
  queue_name text, msg_id bigint, read_ct integer, enqueued_at timestamptz, archived_at timestamptz,
  message jsonb, subject_kind text, subject_id uuid, subject_status text, reason text, requeueable boolean);
comment on type ops.archived_message is 'One row of ops.archived_messages (see ops.archived_message_list()).';

create function ops.archived_message_list()
returns setof ops.archived_message
language plpgsql
stable
set search_path = ''
as $$
declare
  v_queue text;
begin
  for v_queue in select lower(l.queue_name::text) from pgmq.list_queues() l order by 1 loop
    return query execute format(
      $q$select %1$L::text, a.msg_id, a.read_ct, a.enqueued_at, a.archived_at, a.message,
                r.subject_kind, r.subject_id, r.subject_status, r.reason, r.requeueable
           from pgmq.%2$I a
           cross join lateral ops.archive_reason(%1$L, a.message, a.read_ct) r
          order by a.archived_at desc$q$,
      v_queue, 'a_' || v_queue);
  end loop;
end;
$$;
comment on function ops.archived_message_list() is
  'Every archived message of every pgmq queue with its derived reason (ops.archive_reason). Read through ops.archived_messages.';

create view ops.archived_messages
with (security_invoker = true)
as select * from ops.archived_message_list();
comment on view ops.archived_messages is
  'Archived (dead) messages of every queue, newest first per queue, with why they were archived and whether their work can still run. Requeue with ops.requeue_archived_message(queue, msg_id, reason).';

create function ops.requeue_archived_message(p_queue text, p_msg_id bigint, p_reason text)
returns bigint
language plpgsql
set search_path = ''
as $$
declare
  v_queue text := lower(p_queue);
  v_reason text := ops.require_reason(p_reason);
  v_msg_id bigint;
  v_read_ct integer;
  v_message jsonb;
  v_why record;
  v_new bigint;
  v_worker text;
begin
  if not exists (select 1 from pgmq.list_queues() l where lower(l.queue_name::text) = v_queue) then
    raise exception 'Queue "%" does not exist', p_queue using errcode = 'LT510',
      hint = 'select queue_name from ops.queue_health;';
  end if;
  execute format('select a.msg_id, a.read_ct, a.message from pgmq.%I a where a.msg_id = $1 for update', 'a_' || v_queue)
    into v_msg_id, v_read_ct, v_message using p_msg_id;
  if v_msg_id is null then
    raise exception 'Queue "%" has no archived message %', v_queue, p_msg_id using errcode = 'LT510',
      hint = 'select queue_name, msg_id, reason from ops.archived_messages;';
  end if;
  select * into v_why from ops.archive_reason(v_queue, v_message, v_read_ct);
  if not v_why.requeueable then
    raise exception 'Archived message % of queue "%" cannot run again: %', p_msg_id, v_queue, v_why.reason
      using errcode = 'LT511',
            hint = case v_why.subject_kind
              when 'job' then 'A finished job never runs again; its owner retries it with public.retry_training_job().'
              when 'dataset' then 'Nothing waits for this message any more; the owner uploads the file again if needed.'
              else 'Fix what the message is about first, or leave it archived.' end;
  end if;

  if v_queue = 'dataset_validation' and v_why.subject_status = 'error' then
    -- Attempts were exhausted (LT282): validate the stored file again as a new run generation
    -- (LT283 when the file is gone: the owner must upload it again).
    v_new := private.revalidate_dataset(v_why.subject_id);
  else
    select s.id into v_new from pgmq.send(queue_name => v_queue, msg => v_message) as s(id);
    if v_queue = 'dataset_validation' then
      update private.dataset_validation_runs set msg_id = v_new, failed_attempts = 0 where dataset_id = v_why.subject_id;
    end if;
    v_worker := ops.queue_worker(v_queue);
    if v_worker is not null then
      perform private.invoke_worker(v_worker, jsonb_build_object('source', 'ops'));
    end if;
  end if;
  execute format('delete from pgmq.%I where msg_id = $1', 'a_' || v_queue) using p_msg_id;
  perform ops.log_action('requeue_archived_message', v_queue || '/' || p_msg_id, v_reason,
    jsonb_build_object('new_msg_id', v_new, 'read_ct', v_read_ct, 'archive_reason', v_why.reason,
      'subject_kind', v_why.subject_kind, 'subject_id', v_why.subject_id));
  return v_new;
end;
$$;
comment on function ops.requeue_archived_message(text, bigint, text) is
  'Puts the work of an archived message back in its queue and wakes its worker (after commit); returns the new message id. A dataset whose validation gave up (LT282) is validated again from the start (private.revalidate_dataset; LT283 when its file is gone). Refuses (LT511) when the work can no longer run (malformed message, finished job, superseded upload); LT510 when the queue or message does not exist. Logged in ops.runbook_log.';

revoke all on all tables in schema ops from public, anon, authenticated, service_role;
revoke all on all functions in schema ops from public, anon, authenticated, service_role;
