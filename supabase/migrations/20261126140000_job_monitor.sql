-- Monitoring state of running jobs, one private row per job.
--
-- The poller and the webhook receiver keep what they know about the
-- current cluster run here instead of in public.training_jobs, so that
-- bookkeeping (leases, sequence numbers, failure counts) never reaches
-- Realtime subscribers and never competes with client reads:
--   - the run: external_job_id, the highest webhook sequence and step applied,
--     GPU seconds reported and billed;
--   - the poll schedule: next_poll_at, a lease (single-flight: a job is polled
--     by one worker at a time) and consecutive failures;
--   - a chore that outlives the job's active life: the model card to write.
-- Cluster jobs we still have to cancel (user cancel, timeout, a stalled or
-- lost run) are rows of private.cluster_stops, keyed by the cluster job, so a
-- retry's new run never hides the stop of the old one.
-- A trigger on training_jobs keeps the row in step with status and
-- external_job_id. Only rows that need work (needs_poll) are in the partial
-- index the poller scans, so a poll cycle costs O(active jobs), not O(jobs).
-- Settings (poll interval, leases, grace periods, retries) are rows of
-- private.job_settings. docs/monitoring.md.

insert into private.job_settings (name, value, description) values
  ('poll_interval_seconds', 10,
    'Seconds between two polls of the same running job.'),
  ('poll_batch_size', 50,
    'Jobs one poll worker claims per round.'),
  ('poll_concurrency', 8,
    'GPU cluster requests one poll worker keeps in flight at once.'),
  ('poll_lease_seconds', 60,
    'How long a claimed job stays leased to the worker polling it; a crashed worker''s jobs are polled again after this.'),
  ('poll_worker_budget_seconds', 50,
    'Wall-clock seconds one poll worker invocation keeps polling before it returns (Edge Functions stop at 150 s).'),
  ('poll_max_workers', 4,
    'Poll workers that may loop at once (slots); pg_cron wakes as many as the due jobs need.'),
  ('poll_jobs_per_worker', 500,
    'Due jobs per poll worker when pg_cron decides how many slots to wake.'),
  ('poll_chain', 1,
    '1: a poll worker whose budget ran out while jobs are still active wakes its successor at once (gap-free polling on pg_cron < 1.5, whose schedules are per minute); 0: wait for pg_cron.'),
  ('monitor_silence_warning_seconds', 300,
    'The cluster has not answered about a running job for this long: a monitor.cluster_silent warning event.'),
  ('monitor_lost_after_seconds', 900,
    'The cluster has not answered about a running job for this long: the run is treated as lost (LT411) and retried or failed.'),
  ('monitor_not_found_grace_seconds', 120,
    'The cluster has answered 404 for a running job for this long: the run is treated as lost (LT411).'),
  ('monitor_stall_after_seconds', 1800,
    'A run whose step has not advanced for this long while the cluster says running is stalled (LT412): stopped and retried or failed.'),
  ('delivery_timeout_seconds', 900,
    'After the cluster reports success, the artifacts it listed must be registered within this long, or the run fails (LT413).'),
  ('auto_retry_max', 2,
    'Automatic retries of a job after retryable system failures (out of memory, node failure, lost run); each is a new run, visible as a training.retry_scheduled event.'),
  ('usage_accrual_min_gpu_seconds', 300,
    'GPU seconds that accumulate before a usage row is written to cost_records (and always at the end of a run).'),
  ('webhook_receipt_retention_days', 7,
    'Days a webhook id is remembered for replay protection.'),
  ('artifact_download_ttl_seconds', 3600,
    'Validity of the signed download URLs that list-artifacts creates.')
on conflict (name) do nothing;

create table private.job_monitor (
  job_id uuid primary key references public.training_jobs (id) on delete cascade,
  external_job_id text,
  active boolean not null default true,
  last_sequence integer not null default 0 check (last_sequence >= 0),
  last_step integer not null default 0 check (last_step >= 0),
  last_metrics_step integer not null default 0 check (last_metrics_step >= 0),
  cluster_status text check (cluster_status in ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
  reported_gpu_seconds numeric(14, 3) not null default 0 check (reported_gpu_seconds >= 0),
  billed_gpu_seconds numeric(14, 3) not null default 0 check (billed_gpu_seconds >= 0),
  run_started_at timestamptz not null default now(),
  last_report_at timestamptz not null default now(),
  last_progress_at timestamptz not null default now(),
  next_poll_at timestamptz not null default now(),
  lease_until timestamptz,
  poll_failures integer not null default 0 check (poll_failures >= 0),
  last_poll_error jsonb,
  not_found_since timestamptz,
  silence_warned_at timestamptz,
  expected_artifacts jsonb check (expected_artifacts is null or jsonb_typeof(expected_artifacts) = 'array'),
  cluster_succeeded_at timestamptz,
  model_card_status text check (model_card_status in ('pending', 'done')),
  first_metrics_at timestamptz,
  needs_poll boolean not null generated always as (active or coalesce(model_card_status = 'pending', false)) stored,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table private.job_monitor is
  'Monitoring state per job: the current cluster run (sequence, step, GPU seconds), the poll schedule and lease, failure counts, and the model card still to write after success. Kept in step with training_jobs by the _600_track_monitor trigger.';
comment on column private.job_monitor.job_id is 'The job.';
comment on column private.job_monitor.external_job_id is 'Cluster job of the current (or last) run; a new run resets the run columns.';
comment on column private.job_monitor.active is 'The job is running or cancelling: polled, and updates about it are applied.';
comment on column private.job_monitor.last_sequence is 'Highest webhook data.sequence applied for this run; older events change no status or progress.';
comment on column private.job_monitor.last_step is 'Highest training step applied for this run; progress never moves back.';
comment on column private.job_monitor.last_metrics_step is 'Highest metrics step stored for this run; the poller asks for metrics_since_step = this.';
comment on column private.job_monitor.cluster_status is 'Last cluster status applied for this run.';
comment on column private.job_monitor.reported_gpu_seconds is 'Highest gpu_seconds the cluster reported for this run.';
comment on column private.job_monitor.billed_gpu_seconds is 'GPU seconds of this run already written to cost_records as usage.';
comment on column private.job_monitor.run_started_at is 'When this run was recorded (the job entered running with this external id).';
comment on column private.job_monitor.last_report_at is 'When the cluster last told us anything about this run (poll answer or webhook).';
comment on column private.job_monitor.last_progress_at is 'When the step of this run last advanced.';
comment on column private.job_monitor.next_poll_at is 'When the poller should look at this job next.';
comment on column private.job_monitor.lease_until is 'Until when a poll worker owns this job (single-flight); null when free.';
comment on column private.job_monitor.poll_failures is 'Consecutive failed polls (backoff doubles the interval).';
comment on column private.job_monitor.last_poll_error is 'The last poll failure {kind, message, status}.';
comment on column private.job_monitor.not_found_since is 'Since when the cluster answers 404 for this run.';
comment on column private.job_monitor.silence_warned_at is 'When the monitor.cluster_silent warning was written for this run.';
comment on column private.job_monitor.expected_artifacts is 'Artifacts the cluster listed when it reported success; delivery completes when all are registered.';
comment on column private.job_monitor.cluster_succeeded_at is 'When the cluster reported success for this run.';
comment on column private.job_monitor.model_card_status is 'pending: the job succeeded and its README.md model card is still to be written; done: written.';
comment on column private.job_monitor.first_metrics_at is 'When the job''s first metrics arrived (the job.first_metrics notification is sent once).';
comment on column private.job_monitor.needs_poll is 'Generated: the row has work for the poller (active, or a model card pending).';
comment on column private.job_monitor.created_at is 'When monitoring of the job began.';
comment on column private.job_monitor.updated_at is 'When the row last changed.';

-- What the poller scans: only rows with work, in due order.
create index job_monitor_due_idx on private.job_monitor (next_poll_at) where needs_poll;

create trigger _100_set_updated_at
  before update on private.job_monitor
  for each row execute function private.tg_any__set_updated_at();

revoke all on table private.job_monitor from public;
grant select, insert, update, delete on table private.job_monitor to service_role;

create function private.tg_training_jobs__track_monitor()
returns trigger
language plpgsql
-- Definer: status changes come from clients' RPCs (cancel) as well as workers; the row is private.
security definer
set search_path = ''
as $$
begin
  if new.status in ('running', 'cancelling') then
    insert into private.job_monitor as m (job_id, external_job_id)
    values (new.id, new.external_job_id)
    on conflict (job_id) do update
      set active = true,
          external_job_id = excluded.external_job_id,
          next_poll_at = least(m.next_poll_at, now()),
          -- A new cluster job is a new run: its sequence, steps and GPU seconds start again.
          last_sequence = case when m.external_job_id is distinct from excluded.external_job_id then 0 else m.last_sequence end,
          last_step = case when m.external_job_id is distinct from excluded.external_job_id then 0 else m.last_step end,
          last_metrics_step = case when m.external_job_id is distinct from excluded.external_job_id then 0 else m.last_metrics_step end,
          reported_gpu_seconds = case when m.external_job_id is distinct from excluded.external_job_id then 0 else m.reported_gpu_seconds end,
          billed_gpu_seconds = case when m.external_job_id is distinct from excluded.external_job_id then 0 else m.billed_gpu_seconds end,
          cluster_status = case when m.external_job_id is distinct from excluded.external_job_id then null else m.cluster_status end,
          expected_artifacts = case when m.external_job_id is distinct from excluded.external_job_id then null else m.expected_artifacts end,
          cluster_succeeded_at = case when m.external_job_id is distinct from excluded.external_job_id then null else m.cluster_succeeded_at end,
          run_started_at = case when m.external_job_id is distinct from excluded.external_job_id then now() else m.run_started_at end,
          last_report_at = case when m.external_job_id is distinct from excluded.external_job_id then now() else m.last_report_at end,
          last_progress_at = case when m.external_job_id is distinct from excluded.external_job_id then now() else m.last_progress_at end,
          poll_failures = 0,
          not_found_since = null,
          silence_warned_at = case when m.external_job_id is distinct from excluded.external_job_id then null else m.silence_warned_at end;
    -- Cancelling a job whose cluster job is known (now, or when the dispatcher records it late): stop it.
    if new.status = 'cancelling' and new.external_job_id is not null then
      perform private.request_cluster_stop(new.id, new.external_job_id, 'cancel');
      if old.external_job_id is null then
        -- The dispatcher recorded the cluster job of a job cancelled meanwhile: stop it now.
        perform private.invoke_worker('poll-training-jobs',
          jsonb_build_object('job_ids', jsonb_build_array(new.id), 'source', 'cancel'));
      end if;
    end if;
  elsif old.status in ('running', 'cancelling') then
    update private.job_monitor set active = false, lease_until = null where job_id = new.id;
  end if;
  return null;
end;
$$;
comment on function private.tg_training_jobs__track_monitor() is
  'Trigger: a job entering running or cancelling gets (or reactivates) its private.job_monitor row, reset for a new cluster run; a cancelling job''s cluster job gets a stop request (private.cluster_stops); a job leaving those statuses is no longer polled.';
revoke all on function private.tg_training_jobs__track_monitor() from public;

create trigger _600_track_monitor
  after update of status, external_job_id on public.training_jobs
  for each row execute function private.tg_training_jobs__track_monitor();
comment on trigger _600_track_monitor on public.training_jobs is
  'Keeps private.job_monitor in step with status and external_job_id (private.tg_training_jobs__track_monitor).';

create function private.monitor_event(p_job_id uuid, p_level text, p_type text, p_message text, p_data jsonb default '{}'::jsonb)
returns void
language sql
set search_path = ''
as $$
  insert into public.job_events (job_id, level, type, message, data)
  values (p_job_id, p_level::public.job_event_level, p_type, left(p_message, 4000), coalesce(p_data, '{}'::jsonb))
$$;
comment on function private.monitor_event(uuid, text, text, text, jsonb) is
  'Appends one monitoring event to public.job_events (types: docs/monitoring.md).';
revoke all on function private.monitor_event(uuid, text, text, text, jsonb) from public;

-- Cluster jobs to cancel -------------------------------------------------

create table private.cluster_stops (
  external_job_id text primary key,
  job_id uuid not null references public.training_jobs (id) on delete cascade,
  reason text not null check (reason in ('cancel', 'timeout', 'stalled', 'lost', 'delivery', 'orphaned')),
  requested_at timestamptz not null default now(),
  next_attempt_at timestamptz not null default now(),
  lease_until timestamptz,
  attempts integer not null default 0 check (attempts >= 0),
  last_error jsonb,
  done_at timestamptz,
  outcome text
);
comment on table private.cluster_stops is
  'Cluster jobs the poller must cancel (POST /v1/jobs/{id}/cancel), one row per cluster job, retried with backoff until the cluster confirms or answers that the job is gone or finished.';
comment on column private.cluster_stops.external_job_id is 'The cluster job to cancel.';
comment on column private.cluster_stops.job_id is 'Our job it ran for.';
comment on column private.cluster_stops.reason is 'cancel (the owner), timeout, stalled, lost, delivery (artifacts never arrived) or orphaned.';
comment on column private.cluster_stops.requested_at is 'When the stop was requested.';
comment on column private.cluster_stops.next_attempt_at is 'When the poller should (re)try the cancel.';
comment on column private.cluster_stops.lease_until is 'Until when a poll worker owns this stop; null when free.';
comment on column private.cluster_stops.attempts is 'Cancel calls made so far.';
comment on column private.cluster_stops.last_error is 'The last failed attempt {kind, message, status}.';
comment on column private.cluster_stops.done_at is 'When the stop finished (confirmed, or nothing left to stop).';
comment on column private.cluster_stops.outcome is 'cancelled, already_finished or not_found.';

create index cluster_stops_job_id_idx on private.cluster_stops (job_id);
create index cluster_stops_due_idx on private.cluster_stops (next_attempt_at) where done_at is null;

revoke all on table private.cluster_stops from public;
grant select, insert, update, delete on table private.cluster_stops to service_role;

create function private.request_cluster_stop(p_job_id uuid, p_external_job_id text, p_reason text)
returns void
language sql
set search_path = ''
as $$
  insert into private.cluster_stops (external_job_id, job_id, reason)
  values (p_external_job_id, p_job_id, p_reason)
  on conflict (external_job_id) do nothing
$$;
comment on function private.request_cluster_stop(uuid, text, text) is
  'Asks the poller to cancel cluster job p_external_job_id (of job p_job_id) as soon as possible; a second request for the same cluster job is a no-op.';
revoke all on function private.request_cluster_stop(uuid, text, text) from public;
