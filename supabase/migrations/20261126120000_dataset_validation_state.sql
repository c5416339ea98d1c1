-- Where dataset validation stands between worker invocations.
--
-- An upload (storage trigger, next migration) starts a validation *run* for
-- its dataset: one row of private.dataset_validation_runs, whose generation
-- goes up with every upload, and one message {"dataset_id", "generation"} in
-- pgmq queue dataset_validation. The validate-dataset Edge Function claims
-- the run (a lease tied to the message it read), validates a few chunks of
-- the file, and saves the engine's cursor after each one; the next
-- invocation resumes from that cursor. A re-upload bumps the generation,
-- which voids the lease and every message of the old generation, so an
-- in-flight invocation can no longer save anything.
--
-- Exact duplicates across chunks are found through
-- private.dataset_example_hashes (one row per distinct example of a run),
-- written in the same transaction as the cursor that accounts for them.
--
-- Tunables are rows of private.dataset_validation_settings.
-- Supersedes private.dataset_validation_state (20261126100250), never used.

drop table if exists private.dataset_validation_state;

do $$
begin
  if not exists (select 1 from pgmq.list_queues() q where q.queue_name = 'dataset_validation') then
    perform pgmq.create(queue_name => 'dataset_validation');
  end if;
end;
$$;

-- Settings ------------------------------------------------------------------

create table private.dataset_validation_settings (
  name text primary key check (name ~ '^[a-z][a-z0-9_]*$'),
  value numeric not null check (value >= 0),
  description text not null
);
comment on table private.dataset_validation_settings is
  'Tunables of the dataset validation pipeline, one row per setting. Read with private.dataset_validation_setting(name).';
comment on column private.dataset_validation_settings.name is 'Setting name, snake_case.';
comment on column private.dataset_validation_settings.value is 'Numeric value (unit in the description).';
comment on column private.dataset_validation_settings.description is 'What the setting controls and its unit.';

insert into private.dataset_validation_settings (name, value, description) values
  ('visibility_timeout_seconds', 60,
    'How long a read validation message stays invisible (and the run leased): longer than an invocation''s worst case (about 1 s of work, at most 20 s of wall clock, plus one Storage read with a 15 s timeout), so only a dead worker''s message comes back.'),
  ('max_attempts', 5,
    'Consecutive failed attempts (an error, or a worker that died holding the lease) without progress after which the message is archived and the dataset fails with LT282 (kind system).'),
  ('retry_delay_seconds', 5,
    'Delay before retrying a run after a failed attempt; doubles per consecutive failure, at most 60 s. pg_cron''s minute tick wakes the worker for it.'),
  ('sweep_after_seconds', 300,
    'The safety net sends a new message for an unfinished run that has had no message, no live lease and no change for this long.');

revoke all on table private.dataset_validation_settings from public;
grant select on table private.dataset_validation_settings to service_role;

create function private.dataset_validation_setting(p_name text)
returns numeric
language plpgsql
stable
set search_path = ''
as $$
declare
  v_value numeric;
begin
  select s.value into v_value from private.dataset_validation_settings s where s.name = p_name;
  if not found then
    raise exception 'Dataset validation setting "%" does not exist', p_name
      using errcode = 'P0002', hint = 'Settings are rows of private.dataset_validation_settings (migration 20261126120000).';
  end if;
  return v_value;
end;
$$;
comment on function private.dataset_validation_setting(text) is
  'The value of one row of private.dataset_validation_settings; raises P0002 for an unknown name.';
revoke all on function private.dataset_validation_setting(text) from public;

-- Runs ----------------------------------------------------------------------

create table private.dataset_validation_runs (
  dataset_id uuid primary key references public.datasets (id) on delete cascade,
  generation integer not null default 1 check (generation >= 1),
  queue_name text not null default 'dataset_validation',
  msg_id bigint,
  object_name text not null,
  size_bytes bigint check (size_bytes >= 0),
  mime_type text,
  options jsonb check (options is null or jsonb_typeof(options) = 'object'),
  cursor jsonb check (cursor is null or jsonb_typeof(cursor) = 'object'),
  seq integer not null default 0 check (seq >= 0),
  bytes_done bigint not null default 0 check (bytes_done >= 0),
  lease_token uuid,
  lease_msg_id bigint,
  lease_until timestamptz,
  lease_seq integer,
  failed_attempts integer not null default 0 check (failed_attempts >= 0),
  invocations integer not null default 0 check (invocations >= 0),
  last_error text,
  outcome text check (outcome in ('ready', 'error', 'failed', 'cancelled')),
  enqueued_at timestamptz not null default now(),
  started_at timestamptz,
  finished_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  check ((lease_token is null) = (lease_until is null)),
  check ((outcome is null) = (finished_at is null))
);
comment on table private.dataset_validation_runs is
  'The validation run of each dataset''s latest upload: the engine cursor, the worker lease and the attempt count. Written only by the storage trigger and the validate-dataset worker''s functions; operators read it to see progress and failures.';
comment on column private.dataset_validation_runs.dataset_id is 'The dataset being validated.';
comment on column private.dataset_validation_runs.generation is 'Upload generation: +1 on every upload of the dataset''s file. Messages and leases of an older generation are void.';
comment on column private.dataset_validation_runs.queue_name is 'pgmq queue carrying this run''s messages (dataset_validation; tests use their own queues, which nothing wakes or sweeps).';
comment on column private.dataset_validation_runs.msg_id is 'The message currently driving this run (the lease holder''s, else the last one sent).';
comment on column private.dataset_validation_runs.object_name is 'Object name in bucket lora-datasets (the dataset''s storage_path).';
comment on column private.dataset_validation_runs.size_bytes is 'Object size from Storage metadata at upload, when known.';
comment on column private.dataset_validation_runs.mime_type is 'MIME type the object was uploaded with.';
comment on column private.dataset_validation_runs.options is 'Engine options fixed at the first claim of the generation: the owner''s maxInvalidFraction and the enabled base models (family, context length).';
comment on column private.dataset_validation_runs.cursor is 'The engine state after the last saved chunk (functions/_shared/dataset/state.ts: byte offset, line, partial statistics, first issues); null before the first chunk and after the verdict.';
comment on column private.dataset_validation_runs.seq is 'Chunks saved in this generation; every save names the seq it continues, so a stale writer cannot save twice.';
comment on column private.dataset_validation_runs.bytes_done is 'Bytes of the object validated so far.';
comment on column private.dataset_validation_runs.lease_token is 'Token of the invocation that owns the run; every save, release and verdict must present it.';
comment on column private.dataset_validation_runs.lease_msg_id is 'The message the lease holder read.';
comment on column private.dataset_validation_runs.lease_until is 'When the lease ends: the message''s visibility timeout. A lease still set after that means its invocation died.';
comment on column private.dataset_validation_runs.lease_seq is 'seq when the lease was taken, to tell whether the holder made progress.';
comment on column private.dataset_validation_runs.failed_attempts is 'Consecutive failed attempts without progress; at max_attempts the run fails (LT282).';
comment on column private.dataset_validation_runs.invocations is 'Invocations that claimed this generation.';
comment on column private.dataset_validation_runs.last_error is 'The last attempt''s error, for operators.';
comment on column private.dataset_validation_runs.outcome is 'How the run ended: ready or error (verdict), failed (system error, attempts exhausted) or cancelled (dataset deleted or moved on).';
comment on column private.dataset_validation_runs.enqueued_at is 'When this generation was enqueued (the upload).';
comment on column private.dataset_validation_runs.started_at is 'When this generation was first claimed.';
comment on column private.dataset_validation_runs.finished_at is 'When this generation ended.';
comment on column private.dataset_validation_runs.created_at is 'When the dataset was first uploaded.';
comment on column private.dataset_validation_runs.updated_at is 'When the row last changed.';

create trigger _100_set_updated_at
  before update on private.dataset_validation_runs
  for each row execute function private.tg_any__set_updated_at();

revoke all on table private.dataset_validation_runs from public;
grant select on table private.dataset_validation_runs to service_role;

-- Duplicate store -------------------------------------------------------------

-- No foreign key: the table can hold a row per example of a 500 MiB file, and
-- an index on dataset_id alone would double its size. Runs delete their
-- hashes when they end; the safety net removes those of vanished runs.
create table private.dataset_example_hashes (
  dataset_id uuid not null,
  generation integer not null,
  hash bigint not null,
  line integer not null check (line >= 1),
  primary key (dataset_id, generation, hash)
);
comment on table private.dataset_example_hashes is
  'Exact-duplicate store of running validations: the first line of every distinct valid example (functions/_shared/dataset/dedupe.ts). Rows live only while their run does.';
comment on column private.dataset_example_hashes.dataset_id is 'The dataset (private.dataset_validation_runs.dataset_id).';
comment on column private.dataset_example_hashes.generation is 'The run''s upload generation.';
comment on column private.dataset_example_hashes.hash is 'Example fingerprint: the engine''s 16 hex digits of FNV-1a 64 as a bigint (two''s complement).';
comment on column private.dataset_example_hashes.line is 'First line where the example occurs.';

revoke all on table private.dataset_example_hashes from public;

create function private.tg_dataset_validation_runs__drop_example_hashes()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  delete from private.dataset_example_hashes h where h.dataset_id = old.dataset_id;
  return null;
end;
$$;
comment on function private.tg_dataset_validation_runs__drop_example_hashes() is
  'Trigger: a deleted run (its dataset was deleted) takes its duplicate store with it.';
revoke all on function private.tg_dataset_validation_runs__drop_example_hashes() from public;

create trigger _900_drop_example_hashes
  after delete on private.dataset_validation_runs
  for each row execute function private.tg_dataset_validation_runs__drop_example_hashes();
