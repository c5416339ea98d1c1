-- Training datasets: one row per uploaded JSONL file. The client creates the
-- row (name, file name, tolerance), then uploads the file to Storage at the
-- row's storage_path; everything else (status, size, format, statistics,
-- error report) is written by the server's validation stage. Clients may
-- rename, describe and soft-delete their datasets, nothing more.

create type public.dataset_status as enum ('uploading', 'validating', 'ready', 'error');
comment on type public.dataset_status is
  'Dataset lifecycle: uploading (row created, awaiting the file) -> validating -> ready | error. Allowed moves are rows of private.dataset_status_transitions.';

create type public.dataset_format as enum ('chat', 'conversation', 'instruction', 'prompt_completion');
comment on type public.dataset_format is
  'Detected JSONL line format: chat ({"messages": [...]}), conversation (ShareGPT-style {"conversations": [...]}), instruction ({"instruction", "input"?, "output"}), prompt_completion ({"prompt", "completion"}).';

create table public.datasets (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
  name text not null check (length(btrim(name)) between 1 and 200),
  description text check (length(description) <= 2000),
  file_name text not null check (
    file_name ~ '^[A-Za-z0-9][A-Za-z0-9 _.()+=,@!-]{0,254}$' and strpos(file_name, '..') = 0
  ),
  storage_path text generated always as (user_id::text || '/' || id::text || '/' || file_name) stored,
  status public.dataset_status not null default 'uploading',
  max_invalid_fraction numeric(5, 4) not null default 0 check (max_invalid_fraction between 0 and 1),
  mime_type text,
  size_bytes bigint check (size_bytes >= 0),
  format public.dataset_format,
  progress_pct numeric(5, 2) not null default 0 check (progress_pct between 0 and 100),
  stats jsonb check (stats is null or jsonb_typeof(stats) = 'object'),
  report jsonb check (report is null or jsonb_typeof(report) = 'object'),
  error jsonb check (
    error is null or (
      jsonb_typeof(error) = 'object'
      and jsonb_typeof(error -> 'code') = 'string'
      and jsonb_typeof(error -> 'message') = 'string'
      and error ->> 'kind' in ('user', 'system')
    )
  ),
  validated_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  deleted_at timestamptz,
  -- Target of the composite (dataset_id, user_id) foreign keys that keep
  -- every reference to a dataset inside its owner's rows.
  constraint datasets_id_user_id_key unique (id, user_id)
);

comment on table public.datasets is
  'Uploaded training datasets (JSONL). Owners read their rows, create them with name/description/file_name/max_invalid_fraction, update name and description, and soft-delete by setting deleted_at. Validation fields are server-owned.';
comment on column public.datasets.id is 'Dataset id; the second segment of storage_path.';
comment on column public.datasets.user_id is 'Owner (auth.users.id). Defaults to the caller; a client can only create rows for itself.';
comment on column public.datasets.name is 'Display name chosen by the owner (client-writable).';
comment on column public.datasets.description is 'Free-text description (client-writable).';
comment on column public.datasets.file_name is 'Name of the uploaded file, set once at creation: letters, digits and " _.()+=,@!-", no "..", at most 255 characters.';
comment on column public.datasets.storage_path is 'Object name in the lora-datasets bucket: {user_id}/{id}/{file_name}. The only path the owner may upload to, and only while status = uploading.';
comment on column public.datasets.status is 'Lifecycle state (server-owned); see type dataset_status and private.dataset_status_transitions.';
comment on column public.datasets.max_invalid_fraction is 'Fraction of invalid lines (0..1) the owner tolerates before the dataset is rejected; set at creation, default 0.';
comment on column public.datasets.mime_type is 'MIME type the file was uploaded with (server-owned, from Storage).';
comment on column public.datasets.size_bytes is 'Size of the uploaded file in bytes (server-owned).';
comment on column public.datasets.format is 'Detected line format (server-owned).';
comment on column public.datasets.progress_pct is 'Validation progress, 0..100 (server-owned).';
comment on column public.datasets.stats is 'Statistics computed by validation, e.g. line, example and token counts (server-owned).';
comment on column public.datasets.report is 'Structured validation report with line-numbered errors (server-owned).';
comment on column public.datasets.error is 'Why the dataset is in status error: {code, message, kind: user|system} (server-owned).';
comment on column public.datasets.validated_at is 'When validation last finished (server-owned).';
comment on column public.datasets.created_at is 'When the row was created.';
comment on column public.datasets.updated_at is 'When the row last changed.';
comment on column public.datasets.deleted_at is 'Soft-delete time. The owner sets it (any value becomes now()); it can never be cleared. Clients should filter deleted_at is null.';

create index datasets_user_id_idx on public.datasets (user_id);
-- Storage policies look up the dataset an upload belongs to by its path.
create unique index datasets_storage_path_key on public.datasets (storage_path);

-- Guards ------------------------------------------------------------------

create or replace function private.tg_datasets__guard_insert()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if new.status is distinct from 'uploading' then
    raise exception 'A new dataset must start in status "uploading", not "%"', new.status
      using errcode = 'LT009', hint = 'Insert without a status; the server moves it forward.';
  end if;
  if new.deleted_at is not null then
    raise exception 'A new dataset cannot be deleted already'
      using errcode = 'LT004', hint = 'Insert without deleted_at.';
  end if;
  return new;
end;
$$;
comment on function private.tg_datasets__guard_insert() is
  'Trigger: a dataset starts in status uploading and not deleted (LT009, LT004).';
revoke all on function private.tg_datasets__guard_insert() from public;

create or replace function private.tg_datasets__guard_update()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if new.id is distinct from old.id or new.user_id is distinct from old.user_id
     or new.file_name is distinct from old.file_name or new.created_at is distinct from old.created_at then
    raise exception 'Dataset "%": id, user_id, file_name and created_at cannot change', old.id
      using errcode = 'LT003', hint = 'Create a new dataset instead.';
  end if;
  if old.deleted_at is not null and new.deleted_at is distinct from old.deleted_at then
    raise exception 'Dataset "%" is deleted; deletion cannot be undone or re-dated', old.id
      using errcode = 'LT004', hint = 'Create a new dataset instead.';
  end if;
  if old.deleted_at is null and new.deleted_at is not null then
    new.deleted_at := now();
  end if;
  return new;
end;
$$;
comment on function private.tg_datasets__guard_update() is
  'Trigger: identity columns never change (LT003); soft delete is stamped with now() and is final (LT004).';
revoke all on function private.tg_datasets__guard_update() from public;

create trigger _100_set_updated_at
  before update on public.datasets
  for each row execute function private.tg_any__set_updated_at();

create trigger _200_guard_insert
  before insert on public.datasets
  for each row execute function private.tg_datasets__guard_insert();

create trigger _200_guard_update
  before update on public.datasets
  for each row execute function private.tg_datasets__guard_update();

-- Access ------------------------------------------------------------------

alter table public.datasets enable row level security;

create policy "Owners can read their own datasets"
  on public.datasets for select to authenticated
  using (user_id = (select auth.uid()));

create policy "Users can create datasets for themselves"
  on public.datasets for insert to authenticated
  with check (user_id = (select auth.uid()));

create policy "Owners can rename, describe and soft-delete their own datasets"
  on public.datasets for update to authenticated
  using (user_id = (select auth.uid()))
  with check (user_id = (select auth.uid()));

revoke all on table public.datasets from anon, authenticated, service_role;
grant select on table public.datasets to authenticated;
grant insert (user_id, name, description, file_name, max_invalid_fraction) on table public.datasets to authenticated;
grant update (name, description, deleted_at) on table public.datasets to authenticated;
grant select, insert, update, delete on table public.datasets to service_role;
