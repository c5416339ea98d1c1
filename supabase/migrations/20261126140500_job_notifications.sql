-- Notifications when a job ends. Every terminal status (succeeded, failed,
-- cancelled, timed_out) reaches the owner as one public.notifications row,
-- whichever path ended the job (cluster report, poller, cancel, dispatch
-- failure), because the state machine lets a job enter a terminal status
-- only once. The first metrics of a job are notified by
-- private.apply_cluster_update() (kind job.first_metrics).

create function private.tg_training_jobs__notify_finished()
returns trigger
language plpgsql
-- Definer: a client's cancel RPC ends jobs too, and clients cannot insert notifications.
security definer
set search_path = ''
as $$
declare
  v_best jsonb;
begin
  if new.status not in ('succeeded', 'failed', 'cancelled', 'timed_out') or old.status = new.status then
    return null;
  end if;
  if new.status = 'succeeded' then
    v_best := private.best_checkpoint(new.id);
  end if;
  insert into public.notifications (user_id, kind, job_id, payload)
  values (new.user_id, 'job.' || new.status, new.id, jsonb_strip_nulls(jsonb_build_object(
    'job_id', new.id,
    'name', new.name,
    'status', new.status,
    'base_model_id', new.base_model_id,
    'message', case new.status
      when 'succeeded' then format('Training finished: %s steps; the adapter is ready to download', coalesce(new.current_step, 0))
      when 'cancelled' then 'Training was cancelled'
      else new.error ->> 'message' end,
    'error', new.error,
    'actual_cost', new.actual_cost,
    'currency', new.currency,
    'best_checkpoint', v_best,
    'finished_at', new.finished_at)));
  return null;
end;
$$;
comment on function private.tg_training_jobs__notify_finished() is
  'Trigger: one notification (kind job.succeeded, job.failed, job.cancelled or job.timed_out) when a job enters a terminal status, with its message, error, cost and best checkpoint.';
revoke all on function private.tg_training_jobs__notify_finished() from public;

create trigger _910_notify_finished
  after update of status on public.training_jobs
  for each row execute function private.tg_training_jobs__notify_finished();
comment on trigger _910_notify_finished on public.training_jobs is
  'Notifies the owner when the job reaches a terminal status (private.tg_training_jobs__notify_finished).';
