-- What a running job reports: a typed, levelled event log (also written
-- automatically on every status change) and one metrics point per training
-- step. Both are written only by the server and read by the job's owner.
--
-- Every child row of a job carries the job's user_id so that RLS is one
-- indexed equality; a composite foreign key (job_id, user_id) keeps it equal
-- to the job's owner, and a trigger fills it in when a worker omits it.

create or replace function private.tg_job_children__set_owner()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if new.user_id is null then
    select j.user_id into new.user_id from public.training_jobs j where j.id = new.job_id;
  end if;
  return new;
end;
$$;
comment on function private.tg_job_children__set_owner() is
  'Trigger: fills user_id of a job''s child row (events, metrics, checkpoints, artifacts, costs) from its job when omitted; the (job_id, user_id) foreign key rejects a mismatch.';
revoke all on function private.tg_job_children__set_owner() from public;

-- Events ------------------------------------------------------------------

create type public.job_event_level as enum ('debug', 'info', 'warning', 'error');
comment on type public.job_event_level is 'Severity of a job event.';

create table public.job_events (
  id bigint generated always as identity primary key,
  job_id uuid not null,
  user_id uuid not null,
  level public.job_event_level not null default 'info',
  type text not null check (type ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$' and length(type) <= 100),
  message text not null check (length(message) <= 4000),
  data jsonb not null default '{}' check (jsonb_typeof(data) = 'object'),
  created_at timestamptz not null default now(),
  constraint job_events_job_fkey foreign key (job_id, user_id)
    references public.training_jobs (id, user_id) on delete cascade
);
comment on table public.job_events is
  'Append-only log of a job: status changes (type job.status_changed, written by a trigger) and worker events. Read-only to the owner; delivered by Realtime.';
comment on column public.job_events.id is 'Monotonic event id; page with id > last seen.';
comment on column public.job_events.job_id is 'The job the event belongs to.';
comment on column public.job_events.user_id is 'Owner of the job (denormalised for RLS).';
comment on column public.job_events.level is 'Severity: debug, info, warning or error.';
comment on column public.job_events.type is 'Dotted event type, e.g. job.status_changed, dispatch.submitted, training.checkpoint_saved.';
comment on column public.job_events.message is 'Human-readable message.';
comment on column public.job_events.data is 'Structured details of the event (a JSON object).';
comment on column public.job_events.created_at is 'When the event was recorded.';

create index job_events_job_id_user_id_idx on public.job_events (job_id, user_id);
create index job_events_user_id_idx on public.job_events (user_id);
create index job_events_job_id_id_idx on public.job_events (job_id, id);

create trigger _100_set_owner
  before insert on public.job_events
  for each row execute function private.tg_job_children__set_owner();

alter table public.job_events enable row level security;

create policy "Owners can read their own job events"
  on public.job_events for select to authenticated
  using (user_id = (select auth.uid()));

revoke all on table public.job_events from anon, authenticated, service_role;
grant select on table public.job_events to authenticated;
-- Append-only: the server adds and purges events but never rewrites them.
grant select, insert, delete on table public.job_events to service_role;

-- Every job creation and status change becomes an event. Security definer:
-- a client's insert of a job must be able to write its job.created event,
-- which the client itself may not insert.
create or replace function private.tg_training_jobs__record_status_event()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into public.job_events (job_id, user_id, level, type, message, data)
  values (
    new.id,
    new.user_id,
    case when new.status in ('failed', 'timed_out') then 'error'::public.job_event_level
         else 'info'::public.job_event_level end,
    case when tg_op = 'INSERT' then 'job.created' else 'job.status_changed' end,
    case when tg_op = 'INSERT' then format('Job created (%s)', new.status)
         else format('Status changed from %s to %s', old.status, new.status) end,
    jsonb_build_object('from', case when tg_op = 'UPDATE' then old.status end, 'to', new.status)
      || case when new.error is not null and tg_op = 'UPDATE' then jsonb_build_object('error', new.error) else '{}'::jsonb end
  );
  return null;
end;
$$;
comment on function private.tg_training_jobs__record_status_event() is
  'Trigger (security definer): records job.created and job.status_changed events in public.job_events.';
revoke all on function private.tg_training_jobs__record_status_event() from public;

create trigger _900_record_status_event
  after insert or update of status on public.training_jobs
  for each row execute function private.tg_training_jobs__record_status_event();

-- Metrics -----------------------------------------------------------------

create table public.metrics_points (
  id bigint generated always as identity primary key,
  job_id uuid not null,
  user_id uuid not null,
  step integer not null check (step >= 0),
  epoch numeric(8, 3) check (epoch >= 0),
  train_loss double precision,
  eval_loss double precision,
  learning_rate double precision check (learning_rate >= 0),
  grad_norm double precision check (grad_norm >= 0),
  tokens_per_second double precision check (tokens_per_second >= 0),
  recorded_at timestamptz not null default now(),
  created_at timestamptz not null default now(),
  constraint metrics_points_job_id_step_key unique (job_id, step),
  constraint metrics_points_job_fkey foreign key (job_id, user_id)
    references public.training_jobs (id, user_id) on delete cascade
);
comment on table public.metrics_points is
  'Training metrics, one row per job and step (workers upsert on (job_id, step)). Read-only to the owner.';
comment on column public.metrics_points.id is 'Row id.';
comment on column public.metrics_points.job_id is 'The job the metrics belong to.';
comment on column public.metrics_points.user_id is 'Owner of the job (denormalised for RLS).';
comment on column public.metrics_points.step is 'Training step the metrics were taken at; unique per job.';
comment on column public.metrics_points.epoch is 'Fractional epoch at this step.';
comment on column public.metrics_points.train_loss is 'Training loss.';
comment on column public.metrics_points.eval_loss is 'Evaluation loss, when evaluated at this step.';
comment on column public.metrics_points.learning_rate is 'Learning rate at this step.';
comment on column public.metrics_points.grad_norm is 'Gradient norm at this step.';
comment on column public.metrics_points.tokens_per_second is 'Training throughput at this step, tokens per second.';
comment on column public.metrics_points.recorded_at is 'When the cluster measured these metrics.';
comment on column public.metrics_points.created_at is 'When the row was written.';

create index metrics_points_job_id_user_id_idx on public.metrics_points (job_id, user_id);
create index metrics_points_user_id_idx on public.metrics_points (user_id);

create trigger _100_set_owner
  before insert on public.metrics_points
  for each row execute function private.tg_job_children__set_owner();

alter table public.metrics_points enable row level security;

create policy "Owners can read their own job metrics"
  on public.metrics_points for select to authenticated
  using (user_id = (select auth.uid()));

revoke all on table public.metrics_points from anon, authenticated, service_role;
grant select on table public.metrics_points to authenticated;
grant select, insert, update, delete on table public.metrics_points to service_role;
