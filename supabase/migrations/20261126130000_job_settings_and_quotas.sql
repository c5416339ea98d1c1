-- Operator settings for training jobs, and per-user quota overrides.
--
-- Every limit the admission triggers, the quote RPC and the dispatch worker
-- apply is one row of private.job_settings, so an operator changes it with
-- one update and no code reads a hard-coded copy (MAX_TRAINING_DURATION_HOURS
-- = 48 lives here and nowhere else). private.user_quotas overrides the
-- per-user limits for one user. Both are private: clients see their limits
-- through public.quote_training_job(). Codes: docs/ERRORS.md (LT3xx).

create table private.job_settings (
  name text primary key check (name ~ '^[a-z][a-z0-9_]*$'),
  value numeric check (value >= 0),
  description text not null
);
comment on table private.job_settings is
  'Limits and tunables of job admission and dispatch, one row per setting. A null value means "no limit" where the description allows it. Read with private.job_setting(name).';
comment on column private.job_settings.name is 'Setting name, snake_case.';
comment on column private.job_settings.value is 'Numeric value (units in the description); null only where the description says so.';
comment on column private.job_settings.description is 'What the setting controls, its unit, and what null means.';

insert into private.job_settings (name, value, description) values
  ('max_active_jobs_per_user', 3,
    'Jobs a user may have in pending, queued, dispatching, running or cancelling at once (LT301); override per user in private.user_quotas.'),
  ('max_training_duration_hours', 48,
    'MAX_TRAINING_DURATION_HOURS: largest estimated wall-clock duration (training plus overhead) a new job may have (LT302).'),
  ('monthly_spend_cap', null,
    'Default monthly spend cap per user in the job currency (LT303); null = no cap. Override per user in private.user_quotas.'),
  ('duplicate_window_seconds', 60,
    'A job without idempotency key that repeats the dataset and configuration of one created this many seconds earlier is a double submit (LT304).'),
  ('estimate_overhead_seconds', 600,
    'Fixed wall-clock overhead added to every estimate: provisioning, model download, evaluation and artifact upload.'),
  ('dispatch_max_attempts', 10,
    'Dispatch attempts (entries into dispatching) before a job that keeps meeting transient GPU cluster errors fails (LT313).'),
  ('dispatch_retry_base_seconds', 2,
    'Delay before the second dispatch attempt; doubles per attempt (with jitter) up to dispatch_retry_max_seconds.'),
  ('dispatch_retry_max_seconds', 300,
    'Longest delay between dispatch attempts (a longer Retry-After from the cluster still wins).'),
  ('dispatch_visibility_timeout_seconds', 180,
    'How long a read dispatch message stays invisible; longer than a worker''s worst case (150 s wall clock), so only a crashed worker''s message is redelivered.'),
  ('dispatch_max_deliveries', 5,
    'A dispatch message read more times than this is poison: archived, and its job failed (LT314).'),
  ('dataset_url_ttl_seconds', 86400,
    'Validity of the signed dataset URL given to the GPU cluster; must outlive the cluster''s download window.'),
  ('dataset_url_min_remaining_seconds', 21600,
    'A stored signed dataset URL is reused for a resubmission only while it stays valid at least this long.'),
  ('dispatch_sweep_after_seconds', 300,
    'The safety net re-enqueues a queued job, or a dispatching job whose lease expired, that has had no dispatch message for this long.');

revoke all on table private.job_settings from public;
grant select on table private.job_settings to service_role;

create function private.job_setting(p_name text)
returns numeric
language plpgsql
stable
set search_path = ''
as $$
declare
  v_value numeric;
begin
  select s.value into v_value from private.job_settings s where s.name = p_name;
  if not found then
    raise exception 'Job setting "%" does not exist', p_name
      using errcode = 'P0002', hint = 'Settings are rows of private.job_settings (migration 20261126130000).';
  end if;
  return v_value;
end;
$$;
comment on function private.job_setting(text) is
  'The value of one row of private.job_settings (null = no limit where allowed); raises P0002 for an unknown name.';
revoke all on function private.job_setting(text) from public;

create table private.user_quotas (
  user_id uuid primary key references auth.users (id) on delete cascade,
  max_active_jobs integer check (max_active_jobs >= 0),
  monthly_spend_cap numeric(12, 4) check (monthly_spend_cap >= 0),
  currency text not null default 'USD' check (currency ~ '^[A-Z]{3}$'),
  note text check (length(note) <= 500),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table private.user_quotas is
  'Per-user overrides of the job quotas in private.job_settings; a null column falls back to the setting.';
comment on column private.user_quotas.user_id is 'The user the overrides apply to.';
comment on column private.user_quotas.max_active_jobs is 'Active jobs this user may have at once; null = max_active_jobs_per_user.';
comment on column private.user_quotas.monthly_spend_cap is 'Spend cap per calendar month (UTC) in currency; null = the monthly_spend_cap setting.';
comment on column private.user_quotas.currency is 'Currency of monthly_spend_cap; jobs priced in another currency do not count against it.';
comment on column private.user_quotas.note is 'Why the override exists (for operators).';
comment on column private.user_quotas.created_at is 'When the override was created.';
comment on column private.user_quotas.updated_at is 'When the override last changed.';

create trigger _100_set_updated_at
  before update on private.user_quotas
  for each row execute function private.tg_any__set_updated_at();

revoke all on table private.user_quotas from public;
grant select, insert, update, delete on table private.user_quotas to service_role;
