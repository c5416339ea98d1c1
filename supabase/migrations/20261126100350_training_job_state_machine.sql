-- The training-job state machine, as data. Every allowed status change is a
-- row of private.job_status_transitions; a trigger rejects anything else
-- (LT001) whoever attempts it, so no worker bug or stray write can move a job
-- backwards or out of a terminal state. The same trigger keeps the
-- bookkeeping columns (status_changed_at, started_at, finished_at,
-- attempt_count, dispatch_attempts) in step with the transitions.
--
-- Terminal states (succeeded, failed, cancelled, timed_out) have no outgoing
-- transitions. "Retry" or "continue" after a terminal state is a new job row
-- with parent_job_id (and optionally resume_from_checkpoint_id).

create table private.job_status_transitions (
  from_status public.training_job_status not null,
  to_status public.training_job_status not null,
  description text not null,
  primary key (from_status, to_status),
  check (from_status <> to_status)
);
comment on table private.job_status_transitions is
  'Allowed training-job status changes. Anything not listed is rejected with LT001 by the _400_check_status_transition trigger on public.training_jobs.';
comment on column private.job_status_transitions.from_status is 'Status before the change.';
comment on column private.job_status_transitions.to_status is 'Status after the change.';
comment on column private.job_status_transitions.description is 'When and by whom this change is made.';

insert into private.job_status_transitions (from_status, to_status, description) values
  ('pending', 'queued', 'Admission: the job may run now (e.g. a concurrency slot or quota became available)'),
  ('pending', 'cancelled', 'Cancel before admission: nothing exists on the GPU cluster'),
  ('pending', 'failed', 'Admission refused for good (quota, dataset no longer usable)'),
  ('queued', 'dispatching', 'Dispatch worker claimed the job and is submitting it to the GPU cluster'),
  ('queued', 'cancelled', 'Cancel before submission: nothing exists on the GPU cluster'),
  ('queued', 'failed', 'The job can never be dispatched (e.g. its dispatch message was poisoned)'),
  ('dispatching', 'running', 'The GPU cluster accepted the job; external_job_id is recorded'),
  ('dispatching', 'queued', 'Transient submission failure: dispatch again later (dispatch_attempts counts tries)'),
  ('dispatching', 'failed', 'Permanent submission failure, or too many dispatch attempts'),
  ('dispatching', 'cancelling', 'Cancel during submission: the worker must stop whatever the cluster created'),
  ('running', 'succeeded', 'Poller or webhook: the cluster reports success and artifacts are registered'),
  ('running', 'failed', 'Poller or webhook: the cluster reports a failure that retrying will not fix'),
  ('running', 'timed_out', 'The job exceeded its time limit and was stopped'),
  ('running', 'cancelling', 'Cancel requested while training: a stop was sent to the cluster'),
  ('running', 'queued', 'Automatic retry after a system failure (e.g. a preempted node); resumes from the latest checkpoint, attempt_count counts runs'),
  ('cancelling', 'cancelled', 'The cluster confirmed the stop'),
  ('cancelling', 'succeeded', 'The job finished before the stop reached it'),
  ('cancelling', 'failed', 'The job failed before the stop reached it, or the stop could not be confirmed');

revoke all on table private.job_status_transitions from public;
grant select on table private.job_status_transitions to service_role;

create or replace function private.tg_training_jobs__check_status_transition()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if new.status = old.status then
    return new;
  end if;
  if not exists (
    select 1 from private.job_status_transitions t
    where t.from_status = old.status and t.to_status = new.status
  ) then
    raise exception 'Job "%" cannot move from "%" to "%"', old.id, old.status, new.status
      using errcode = 'LT001',
            hint = 'Allowed moves are listed in private.job_status_transitions; finished jobs never change status.';
  end if;
  new.status_changed_at := now();
  case new.status
    when 'dispatching' then
      new.dispatch_attempts := old.dispatch_attempts + 1;
    when 'running' then
      new.attempt_count := old.attempt_count + 1;
      new.started_at := coalesce(old.started_at, now());
    when 'succeeded', 'failed', 'cancelled', 'timed_out' then
      new.finished_at := now();
    else
      null;
  end case;
  return new;
end;
$$;
comment on function private.tg_training_jobs__check_status_transition() is
  'Trigger: rejects job status changes not in private.job_status_transitions (LT001) and maintains status_changed_at, dispatch_attempts, attempt_count, started_at and finished_at.';
revoke all on function private.tg_training_jobs__check_status_transition() from public;

create trigger _400_check_status_transition
  before update of status on public.training_jobs
  for each row execute function private.tg_training_jobs__check_status_transition();
