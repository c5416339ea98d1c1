-- Training jobs: a client asks for a LoRA fine-tune of a base model on one
-- of its ready datasets. The client writes what it asks for (references,
-- requested_config, name, suffix, idempotency key, and optionally the job
-- and checkpoint to continue from); the server owns everything else: the
-- resolved config, status, progress, estimates, costs and external ids.

create type public.training_job_status as enum (
  'pending', 'queued', 'dispatching', 'running', 'succeeded', 'failed', 'cancelling', 'cancelled', 'timed_out'
);
comment on type public.training_job_status is
  'Job lifecycle. Active: pending, queued, dispatching, running, cancelling. Terminal (never change): succeeded, failed, cancelled, timed_out. Allowed moves are rows of private.job_status_transitions.';

create table public.training_jobs (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
  dataset_id uuid not null,
  validation_dataset_id uuid,
  base_model_id text not null references public.base_models (id),
  name text check (length(btrim(name)) between 1 and 200),
  suffix text check (suffix ~ '^[a-z0-9][a-z0-9-]{0,39}$'),
  requested_config jsonb not null default '{}' check (jsonb_typeof(requested_config) = 'object'),
  config jsonb check (config is null or jsonb_typeof(config) = 'object'),
  idempotency_key text check (length(idempotency_key) between 1 and 200),
  status public.training_job_status not null default 'queued',
  error jsonb check (
    error is null or (
      jsonb_typeof(error) = 'object'
      and jsonb_typeof(error -> 'code') = 'string'
      and jsonb_typeof(error -> 'message') = 'string'
      and error ->> 'kind' in ('user', 'system')
    )
  ),
  external_job_id text check (length(external_job_id) between 1 and 200),
  current_step integer check (current_step >= 0),
  total_steps integer check (total_steps > 0),
  current_epoch numeric(8, 3) check (current_epoch >= 0),
  progress_pct numeric(5, 2) not null default 0 check (progress_pct between 0 and 100),
  estimated_finish_at timestamptz,
  estimated_gpu_seconds numeric(14, 3) check (estimated_gpu_seconds >= 0),
  estimated_cost numeric(12, 4) check (estimated_cost >= 0),
  actual_gpu_seconds numeric(14, 3) check (actual_gpu_seconds >= 0),
  actual_cost numeric(12, 4) check (actual_cost >= 0),
  currency text not null default 'USD' check (currency ~ '^[A-Z]{3}$'),
  attempt_count integer not null default 0 check (attempt_count >= 0),
  dispatch_attempts integer not null default 0 check (dispatch_attempts >= 0),
  parent_job_id uuid,
  resume_from_checkpoint_id uuid,
  status_changed_at timestamptz not null default now(),
  started_at timestamptz,
  finished_at timestamptz,
  last_polled_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  deleted_at timestamptz,
  constraint training_jobs_id_user_id_key unique (id, user_id),
  constraint training_jobs_user_id_idempotency_key_key unique (user_id, idempotency_key),
  constraint training_jobs_dataset_fkey foreign key (dataset_id, user_id)
    references public.datasets (id, user_id),
  constraint training_jobs_validation_dataset_fkey foreign key (validation_dataset_id, user_id)
    references public.datasets (id, user_id),
  constraint training_jobs_parent_job_fkey foreign key (parent_job_id, user_id)
    references public.training_jobs (id, user_id),
  constraint training_jobs_resume_needs_parent check (resume_from_checkpoint_id is null or parent_job_id is not null),
  constraint training_jobs_not_own_parent check (parent_job_id is distinct from id)
);

comment on table public.training_jobs is
  'LoRA fine-tuning jobs. Owners read their jobs, create them with the client-writable columns, rename them and soft-delete finished ones; status, progress, estimates, costs and external ids are server-owned.';
comment on column public.training_jobs.id is 'Job id; also the folder of its artifacts in lora-models ({user_id}/{id}/...).';
comment on column public.training_jobs.user_id is 'Owner (auth.users.id). Defaults to the caller; a client can only create jobs for itself.';
comment on column public.training_jobs.dataset_id is 'Training dataset; must belong to the owner, be ready and not deleted (client-writable at creation).';
comment on column public.training_jobs.validation_dataset_id is 'Optional evaluation dataset, same rules as dataset_id (client-writable at creation).';
comment on column public.training_jobs.base_model_id is 'Base model to fine-tune; must be enabled (client-writable at creation).';
comment on column public.training_jobs.name is 'Display name (client-writable).';
comment on column public.training_jobs.suffix is 'Short label for the resulting adapter, [a-z0-9-], at most 40 characters (client-writable at creation).';
comment on column public.training_jobs.requested_config is 'Hyperparameters and LoRA settings as the client asked for them; validated against base_models at creation (client-writable at creation).';
comment on column public.training_jobs.config is 'Resolved configuration actually used: requested values plus defaults (server-owned).';
comment on column public.training_jobs.idempotency_key is 'Optional client key, unique per owner: retrying a create with the same key cannot make a second job (client-writable at creation).';
comment on column public.training_jobs.status is 'Lifecycle state (server-owned); see type training_job_status and private.job_status_transitions.';
comment on column public.training_jobs.error is 'Why the job failed or stopped: {code, message, kind: user|system} (server-owned).';
comment on column public.training_jobs.external_job_id is 'Id of the job on the GPU cluster, once submitted (server-owned).';
comment on column public.training_jobs.current_step is 'Last training step reported (server-owned).';
comment on column public.training_jobs.total_steps is 'Total training steps planned (server-owned).';
comment on column public.training_jobs.current_epoch is 'Current (fractional) epoch (server-owned).';
comment on column public.training_jobs.progress_pct is 'Training progress, 0..100 (server-owned).';
comment on column public.training_jobs.estimated_finish_at is 'Estimated completion time (server-owned).';
comment on column public.training_jobs.estimated_gpu_seconds is 'Estimated GPU time in GPU-seconds (server-owned).';
comment on column public.training_jobs.estimated_cost is 'Estimated cost in currency (server-owned).';
comment on column public.training_jobs.actual_gpu_seconds is 'GPU time used so far, in GPU-seconds (server-owned).';
comment on column public.training_jobs.actual_cost is 'Cost incurred so far, in currency (server-owned).';
comment on column public.training_jobs.currency is 'ISO 4217 currency of the cost columns (server-owned).';
comment on column public.training_jobs.attempt_count is 'How many times the job entered running (automatic retries included); maintained by the state machine.';
comment on column public.training_jobs.dispatch_attempts is 'How many times the job entered dispatching; maintained by the state machine.';
comment on column public.training_jobs.parent_job_id is 'Finished job of the same owner and base model this job continues (client-writable at creation).';
comment on column public.training_jobs.resume_from_checkpoint_id is 'Checkpoint of parent_job_id to start from (client-writable at creation).';
comment on column public.training_jobs.status_changed_at is 'When status last changed; maintained by the state machine.';
comment on column public.training_jobs.started_at is 'When the job first entered running; maintained by the state machine.';
comment on column public.training_jobs.finished_at is 'When the job reached a terminal status; maintained by the state machine.';
comment on column public.training_jobs.last_polled_at is 'When the poller last asked the GPU cluster about this job (server-owned).';
comment on column public.training_jobs.created_at is 'When the job was created.';
comment on column public.training_jobs.updated_at is 'When the row last changed.';
comment on column public.training_jobs.deleted_at is 'Soft-delete time, allowed only in a terminal status; set by the owner (any value becomes now()), never cleared.';

create index training_jobs_user_id_idx on public.training_jobs (user_id);
create index training_jobs_dataset_id_user_id_idx on public.training_jobs (dataset_id, user_id);
create index training_jobs_validation_dataset_id_user_id_idx on public.training_jobs (validation_dataset_id, user_id);
create index training_jobs_base_model_id_idx on public.training_jobs (base_model_id);
create index training_jobs_parent_job_id_user_id_idx on public.training_jobs (parent_job_id, user_id);
create unique index training_jobs_external_job_id_key on public.training_jobs (external_job_id);
-- Workers scan active jobs by status.
create index training_jobs_active_status_idx on public.training_jobs (status, status_changed_at)
  where status in ('pending', 'queued', 'dispatching', 'running', 'cancelling');

-- Guards ------------------------------------------------------------------

create or replace function private.tg_training_jobs__guard_insert()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if new.status not in ('pending', 'queued') then
    raise exception 'A new job must start in status "pending" or "queued", not "%"', new.status
      using errcode = 'LT009', hint = 'Insert without a status; the server moves it forward.';
  end if;
  if new.deleted_at is not null then
    raise exception 'A new job cannot be deleted already'
      using errcode = 'LT004', hint = 'Insert without deleted_at.';
  end if;
  return new;
end;
$$;
comment on function private.tg_training_jobs__guard_insert() is
  'Trigger: a job starts in status pending or queued and not deleted (LT009, LT004).';
revoke all on function private.tg_training_jobs__guard_insert() from public;

-- Runs after insert, i.e. after RLS and the foreign keys have accepted the
-- row, so a reference to someone else's row fails as a foreign-key or
-- permission error before any domain rule is consulted.
create or replace function private.tg_training_jobs__check_references()
returns trigger
language plpgsql
set search_path = ''
as $$
declare
  ds record;
  parent record;
begin
  for ds in
    select d.id, d.status, d.deleted_at from public.datasets d
    where d.id in (new.dataset_id, new.validation_dataset_id)
  loop
    if ds.status <> 'ready' or ds.deleted_at is not null then
      raise exception 'Dataset "%" is not ready for training (status "%"%)', ds.id, ds.status,
        case when ds.deleted_at is not null then ', deleted' else '' end
        using errcode = 'LT007', hint = 'Wait until the dataset status is "ready"; deleted datasets cannot be used.';
    end if;
  end loop;
  if not exists (select 1 from public.base_models m where m.id = new.base_model_id and m.enabled) then
    raise exception 'Base model "%" is not available', new.base_model_id
      using errcode = 'LT008', hint = 'Choose an enabled model from public.base_models.';
  end if;
  if new.parent_job_id is not null then
    select j.status, j.base_model_id into parent from public.training_jobs j where j.id = new.parent_job_id;
    if parent.status not in ('succeeded', 'failed', 'cancelled', 'timed_out') then
      raise exception 'Job "%" cannot be continued while it is "%"', new.parent_job_id, parent.status
        using errcode = 'LT010', hint = 'Only finished jobs (succeeded, failed, cancelled, timed_out) can be continued.';
    end if;
    if parent.base_model_id <> new.base_model_id then
      raise exception 'Job "%" trained "%", not "%"', new.parent_job_id, parent.base_model_id, new.base_model_id
        using errcode = 'LT010', hint = 'A continuation must use the base model of its parent job.';
    end if;
  end if;
  return null;
end;
$$;
comment on function private.tg_training_jobs__check_references() is
  'Trigger: datasets must be ready and not deleted (LT007), the base model enabled (LT008), a parent job finished and on the same base model (LT010).';
revoke all on function private.tg_training_jobs__check_references() from public;

create or replace function private.tg_training_jobs__guard_update()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if (new.id, new.user_id, new.dataset_id, new.validation_dataset_id, new.base_model_id, new.requested_config,
      new.idempotency_key, new.suffix, new.parent_job_id, new.resume_from_checkpoint_id, new.created_at)
     is distinct from
     (old.id, old.user_id, old.dataset_id, old.validation_dataset_id, old.base_model_id, old.requested_config,
      old.idempotency_key, old.suffix, old.parent_job_id, old.resume_from_checkpoint_id, old.created_at) then
    raise exception 'Job "%": what was requested at creation cannot change', old.id
      using errcode = 'LT003', hint = 'Create a new job (parent_job_id continues a finished one).';
  end if;
  if old.deleted_at is not null and new.deleted_at is distinct from old.deleted_at then
    raise exception 'Job "%" is deleted; deletion cannot be undone or re-dated', old.id
      using errcode = 'LT004', hint = 'Deleted jobs stay deleted.';
  end if;
  if old.deleted_at is null and new.deleted_at is not null then
    if new.status not in ('succeeded', 'failed', 'cancelled', 'timed_out') then
      raise exception 'Job "%" is still "%" and cannot be deleted', old.id, new.status
        using errcode = 'LT005', hint = 'Cancel the job and wait for it to finish first.';
    end if;
    new.deleted_at := now();
  end if;
  return new;
end;
$$;
comment on function private.tg_training_jobs__guard_update() is
  'Trigger: creation-time columns never change (LT003); soft delete only when finished (LT005), stamped with now() and final (LT004).';
revoke all on function private.tg_training_jobs__guard_update() from public;

create trigger _100_set_updated_at
  before update on public.training_jobs
  for each row execute function private.tg_any__set_updated_at();

create trigger _200_guard_insert
  before insert on public.training_jobs
  for each row execute function private.tg_training_jobs__guard_insert();

create trigger _200_guard_update
  before update on public.training_jobs
  for each row execute function private.tg_training_jobs__guard_update();

create trigger _200_check_references
  after insert on public.training_jobs
  for each row execute function private.tg_training_jobs__check_references();

-- Access ------------------------------------------------------------------

alter table public.training_jobs enable row level security;

create policy "Owners can read their own jobs"
  on public.training_jobs for select to authenticated
  using (user_id = (select auth.uid()));

create policy "Users can create jobs for themselves"
  on public.training_jobs for insert to authenticated
  with check (user_id = (select auth.uid()));

create policy "Owners can rename and soft-delete their own jobs"
  on public.training_jobs for update to authenticated
  using (user_id = (select auth.uid()))
  with check (user_id = (select auth.uid()));

revoke all on table public.training_jobs from anon, authenticated, service_role;
grant select on table public.training_jobs to authenticated;
grant insert (
  user_id, dataset_id, validation_dataset_id, base_model_id, name, suffix, requested_config,
  idempotency_key, parent_job_id, resume_from_checkpoint_id
) on table public.training_jobs to authenticated;
grant update (name, deleted_at) on table public.training_jobs to authenticated;
grant select, insert, update, delete on table public.training_jobs to service_role;
