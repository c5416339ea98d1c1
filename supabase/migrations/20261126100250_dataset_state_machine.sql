-- The dataset state machine, as data: every allowed status change is a row
-- of private.dataset_status_transitions, and a trigger rejects any other
-- change (LT002), whoever makes it. Also the private per-dataset state the
-- resumable validation worker keeps between chunks.

create table private.dataset_status_transitions (
  from_status public.dataset_status not null,
  to_status public.dataset_status not null,
  description text not null,
  primary key (from_status, to_status),
  check (from_status <> to_status)
);
comment on table private.dataset_status_transitions is
  'Allowed dataset status changes. Anything not listed is rejected with LT002 by the _400_check_status_transition trigger on public.datasets.';
comment on column private.dataset_status_transitions.from_status is 'Status before the change.';
comment on column private.dataset_status_transitions.to_status is 'Status after the change.';
comment on column private.dataset_status_transitions.description is 'When and by whom this change is made.';

insert into private.dataset_status_transitions (from_status, to_status, description) values
  ('uploading', 'validating', 'Storage trigger: the file arrived at storage_path; validation is queued'),
  ('uploading', 'error', 'Server: the upload was abandoned or the object was rejected'),
  ('validating', 'ready', 'Validation worker: the file passed (invalid lines within max_invalid_fraction)'),
  ('validating', 'error', 'Validation worker: the file failed validation, or validation failed for a system reason'),
  ('error', 'uploading', 'Server, on the owner''s request: reopen the upload window for a corrected file'),
  ('error', 'validating', 'Server: validate again (e.g. after a system error during validation)');

revoke all on table private.dataset_status_transitions from public;
grant select on table private.dataset_status_transitions to service_role;

create or replace function private.tg_datasets__check_status_transition()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if new.status = old.status then
    return new;
  end if;
  if not exists (
    select 1 from private.dataset_status_transitions t
    where t.from_status = old.status and t.to_status = new.status
  ) then
    raise exception 'Dataset "%" cannot move from "%" to "%"', old.id, old.status, new.status
      using errcode = 'LT002',
            hint = 'Allowed moves are listed in private.dataset_status_transitions.';
  end if;
  if old.status = 'validating' then
    new.validated_at := now();
  end if;
  if new.status = 'validating' then
    new.progress_pct := 0;
  end if;
  return new;
end;
$$;
comment on function private.tg_datasets__check_status_transition() is
  'Trigger: rejects dataset status changes not in private.dataset_status_transitions (LT002); stamps validated_at when validation ends and resets progress when it starts.';
revoke all on function private.tg_datasets__check_status_transition() from public;

create trigger _400_check_status_transition
  before update of status on public.datasets
  for each row execute function private.tg_datasets__check_status_transition();

-- Where the resumable validation worker left off (one row per dataset being
-- validated). Private: only the server reads or writes it.
create table private.dataset_validation_state (
  dataset_id uuid primary key references public.datasets (id) on delete cascade,
  cursor jsonb not null default '{}' check (jsonb_typeof(cursor) = 'object'),
  attempts integer not null default 0 check (attempts >= 0),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table private.dataset_validation_state is
  'Resumable validation state per dataset (byte offset, line number, partial statistics), owned by the validation worker.';
comment on column private.dataset_validation_state.dataset_id is 'The dataset being validated.';
comment on column private.dataset_validation_state.cursor is 'Worker-defined resume point and partial results, e.g. {"byte_offset", "line", "partial_stats"}.';
comment on column private.dataset_validation_state.attempts is 'How many validation chunks have been started, for poison detection.';
comment on column private.dataset_validation_state.created_at is 'When validation state was first written.';
comment on column private.dataset_validation_state.updated_at is 'When the worker last advanced the cursor.';

create trigger _100_set_updated_at
  before update on private.dataset_validation_state
  for each row execute function private.tg_any__set_updated_at();

revoke all on table private.dataset_validation_state from public;
grant select, insert, update, delete on table private.dataset_validation_state to service_role;
