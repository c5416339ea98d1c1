-- Operations for database administrators: the ops schema.
--
-- Views and runbook functions a DBA uses from psql or the SQL editor:
-- queue health, dead messages, stuck jobs, failures, usage, cron and pg_net
-- health (read-only views), and procedures that change state (requeue,
-- force-fail, force-cancel, secret rotation, pruning). docs/OPERATIONS.md
-- is the manual.
--
-- ops is not exposed by the Data API (supabase/config.toml api.schemas lists
-- public and graphql_public) and only its owner, postgres, may use it:
-- neither clients nor service_role can reach these views, so they may show
-- every user's rows. Views are security_invoker and functions security
-- invoker with search_path = '', so they run with the DBA's own rights.
-- Every runbook function that changes something writes one row to
-- ops.runbook_log.

create schema if not exists ops;
comment on schema ops is
  'Operations for DBAs (docs/OPERATIONS.md): health views and runbook functions. Not exposed by the Data API; usable by postgres only.';
revoke all on schema ops from public;

alter default privileges in schema ops revoke all on tables from public;
alter default privileges in schema ops revoke all on sequences from public;
alter default privileges in schema ops revoke execute on functions from public;

create table ops.runbook_log (
  id bigint generated always as identity primary key,
  at timestamptz not null default now(),
  actor text not null default session_user,
  action text not null check (action ~ '^[a-z][a-z0-9_]*$'),
  target text,
  reason text,
  details jsonb not null default '{}' check (jsonb_typeof(details) = 'object')
);
comment on table ops.runbook_log is
  'Audit trail of the ops runbook functions: who did what to which object, and why. Append-only by convention.';
comment on column ops.runbook_log.id is 'Entry id, in order of writing.';
comment on column ops.runbook_log.at is 'When the action ran (transaction time).';
comment on column ops.runbook_log.actor is 'The database user who ran it (session_user).';
comment on column ops.runbook_log.action is 'The runbook function, e.g. force_fail_job.';
comment on column ops.runbook_log.target is 'What it acted on: a job id, queue/msg_id, a table.';
comment on column ops.runbook_log.reason is 'The reason the operator gave, when the function asks for one.';
comment on column ops.runbook_log.details is 'What the action did (ids, counts, previous state).';

create index runbook_log_at_idx on ops.runbook_log (at);

create function ops.log_action(p_action text, p_target text, p_reason text default null, p_details jsonb default '{}'::jsonb)
returns bigint
language sql
set search_path = ''
as $$
  insert into ops.runbook_log (action, target, reason, details)
  values (p_action, p_target, p_reason, coalesce(p_details, '{}'::jsonb))
  returning id
$$;
comment on function ops.log_action(text, text, text, jsonb) is
  'Appends one entry to ops.runbook_log; returns its id. Called by every runbook function that changes state.';

create function ops.require_reason(p_reason text)
returns text
language plpgsql
immutable
set search_path = ''
as $$
begin
  if p_reason is null or length(btrim(p_reason)) < 3 then
    raise exception 'A reason is required (at least 3 characters), got %', coalesce(quote_literal(p_reason), 'null')
      using errcode = '22023',
            hint = 'Say why, e.g. ''cluster lost the job, ticket OPS-123'': it goes to ops.runbook_log and the job''s events.';
  end if;
  return btrim(p_reason);
end;
$$;
comment on function ops.require_reason(text) is
  'The trimmed reason, or 22023 when it is missing or shorter than 3 characters.';

create function ops.queue_worker(p_queue text)
returns text
language sql
immutable
set search_path = ''
as $$
  select case p_queue
    when 'dataset_validation' then 'validate-dataset'
    when 'training_dispatch' then 'dispatch-training-job'
    when 'storage_cleanup' then 'storage-cleanup'
  end
$$;
comment on function ops.queue_worker(text) is
  'The Edge Function that drains a pgmq queue of this project (null for other queues).';

revoke all on all tables in schema ops from public, anon, authenticated, service_role;
revoke all on all sequences in schema ops from public, anon, authenticated, service_role;
revoke all on all functions in schema ops from public, anon, authenticated, service_role;
