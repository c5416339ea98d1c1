-- What a job produces: checkpoints saved during training (one of them marked
-- best) and the delivered artifacts (adapter weights and config, model card,
-- metrics). Both point into the private lora-models bucket by object path
-- only ({user_id}/{job_id}/...); clients download through signed URLs created
-- on demand, never stored. Written by the server, read by the job's owner.

-- Checkpoints -------------------------------------------------------------

create table public.checkpoints (
  id uuid primary key default gen_random_uuid(),
  job_id uuid not null,
  user_id uuid not null,
  step integer not null check (step >= 0),
  epoch numeric(8, 3) check (epoch >= 0),
  train_loss double precision,
  eval_loss double precision,
  metrics jsonb not null default '{}' check (jsonb_typeof(metrics) = 'object'),
  storage_path text check (
    starts_with(storage_path, user_id::text || '/' || job_id::text || '/') and strpos(storage_path, '..') = 0
  ),
  is_best boolean not null default false,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint checkpoints_job_id_step_key unique (job_id, step),
  -- Target of training_jobs.resume_from_checkpoint_id: a checkpoint of the parent job.
  constraint checkpoints_id_job_id_key unique (id, job_id),
  constraint checkpoints_job_fkey foreign key (job_id, user_id)
    references public.training_jobs (id, user_id) on delete cascade
);
comment on table public.checkpoints is
  'Checkpoints saved during training, one per job and step; at most one per job is_best. Read-only to the owner.';
comment on column public.checkpoints.id is 'Checkpoint id; a new job resumes from it via resume_from_checkpoint_id.';
comment on column public.checkpoints.job_id is 'The job that saved the checkpoint.';
comment on column public.checkpoints.user_id is 'Owner of the job (denormalised for RLS).';
comment on column public.checkpoints.step is 'Training step of the checkpoint; unique per job.';
comment on column public.checkpoints.epoch is 'Fractional epoch of the checkpoint.';
comment on column public.checkpoints.train_loss is 'Training loss at the checkpoint.';
comment on column public.checkpoints.eval_loss is 'Evaluation loss at the checkpoint.';
comment on column public.checkpoints.metrics is 'Other metrics at the checkpoint (a JSON object).';
comment on column public.checkpoints.storage_path is 'Object path (prefix) of the checkpoint in the lora-models bucket, under {user_id}/{job_id}/; never a URL.';
comment on column public.checkpoints.is_best is 'Whether this is the job''s best checkpoint (lowest eval loss); at most one per job.';
comment on column public.checkpoints.created_at is 'When the checkpoint was recorded.';
comment on column public.checkpoints.updated_at is 'When the row last changed.';

create index checkpoints_job_id_user_id_idx on public.checkpoints (job_id, user_id);
create index checkpoints_user_id_idx on public.checkpoints (user_id);
create unique index checkpoints_one_best_per_job_key on public.checkpoints (job_id) where is_best;

create trigger _100_set_owner
  before insert on public.checkpoints
  for each row execute function private.tg_job_children__set_owner();

create trigger _100_set_updated_at
  before update on public.checkpoints
  for each row execute function private.tg_any__set_updated_at();

alter table public.checkpoints enable row level security;

create policy "Owners can read their own checkpoints"
  on public.checkpoints for select to authenticated
  using (user_id = (select auth.uid()));

revoke all on table public.checkpoints from anon, authenticated, service_role;
grant select on table public.checkpoints to authenticated;
grant select, insert, update, delete on table public.checkpoints to service_role;

-- A continuation resumes from a checkpoint of its parent job, never from
-- another job's (and so never from another user's).
alter table public.training_jobs
  add constraint training_jobs_resume_checkpoint_fkey foreign key (resume_from_checkpoint_id, parent_job_id)
  references public.checkpoints (id, job_id);
create index training_jobs_resume_from_checkpoint_id_parent_job_id_idx
  on public.training_jobs (resume_from_checkpoint_id, parent_job_id);

-- Artifacts ---------------------------------------------------------------

create type public.artifact_kind as enum ('adapter_weights', 'adapter_config', 'checkpoint', 'metrics', 'model_card');
comment on type public.artifact_kind is 'What a model artifact file is.';

create table public.model_artifacts (
  id uuid primary key default gen_random_uuid(),
  job_id uuid not null,
  user_id uuid not null,
  kind public.artifact_kind not null,
  storage_path text not null check (
    starts_with(storage_path, user_id::text || '/' || job_id::text || '/') and strpos(storage_path, '..') = 0
  ),
  size_bytes bigint check (size_bytes >= 0),
  sha256 text check (sha256 ~ '^[0-9a-f]{64}$'),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint model_artifacts_storage_path_key unique (storage_path),
  constraint model_artifacts_job_fkey foreign key (job_id, user_id)
    references public.training_jobs (id, user_id) on delete cascade
);
comment on table public.model_artifacts is
  'Files a job delivered to the lora-models bucket, registered when uploaded. Read-only to the owner, who downloads through signed URLs.';
comment on column public.model_artifacts.id is 'Artifact id.';
comment on column public.model_artifacts.job_id is 'The job that produced the artifact.';
comment on column public.model_artifacts.user_id is 'Owner of the job (denormalised for RLS).';
comment on column public.model_artifacts.kind is 'adapter_weights, adapter_config, checkpoint, metrics or model_card.';
comment on column public.model_artifacts.storage_path is 'Object name in the lora-models bucket, under {user_id}/{job_id}/; unique; never a URL.';
comment on column public.model_artifacts.size_bytes is 'Size of the object in bytes.';
comment on column public.model_artifacts.sha256 is 'Lowercase hex SHA-256 of the object, when known.';
comment on column public.model_artifacts.created_at is 'When the artifact was registered.';
comment on column public.model_artifacts.updated_at is 'When the row last changed (e.g. re-uploaded).';

create index model_artifacts_job_id_user_id_idx on public.model_artifacts (job_id, user_id);
create index model_artifacts_user_id_idx on public.model_artifacts (user_id);

create trigger _100_set_owner
  before insert on public.model_artifacts
  for each row execute function private.tg_job_children__set_owner();

create trigger _100_set_updated_at
  before update on public.model_artifacts
  for each row execute function private.tg_any__set_updated_at();

alter table public.model_artifacts enable row level security;

create policy "Owners can read their own model artifacts"
  on public.model_artifacts for select to authenticated
  using (user_id = (select auth.uid()));

revoke all on table public.model_artifacts from anon, authenticated, service_role;
grant select on table public.model_artifacts to authenticated;
grant select, insert, update, delete on table public.model_artifacts to service_role;
