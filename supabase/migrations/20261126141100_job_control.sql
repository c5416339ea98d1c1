-- What an owner can do to a job: cancel it, and run a finished one again.
--
-- public.cancel_training_job(job_id): owner only, idempotent.
--   pending, queued      -> cancelled at once (nothing exists on the cluster;
--                           the dispatcher skips a job that is no longer queued)
--   dispatching          -> cancelling; once the dispatcher has recorded or
--                           abandoned its submit, the poller stops the cluster
--                           job it finds by idempotency key, or confirms
--   running              -> cancelling; the poller is woken to cancel the
--                           cluster job and confirms when the cluster does
--   cancelling, cancelled -> unchanged (the same answer again)
--   succeeded, failed, timed_out -> LT421
-- The job row lock orders a cancel against the dispatcher's claim and
-- against a completion: whichever commits first wins, the other sees it.
--
-- public.retry_training_job(job_id, checkpoint_id, config, ...): a new job
-- with parent_job_id (and resume_from_checkpoint_id), the same dataset,
-- model and configuration (config keys override), through
-- public.create_training_job() so admission, quotas and idempotency apply.

create function public.cancel_training_job(job_id uuid)
returns public.training_jobs
language plpgsql
-- Definer: clients cannot write status; ownership is checked against auth.uid() below.
security definer
set search_path = ''
as $$
declare
  v_uid uuid := auth.uid();
  v_job public.training_jobs;
begin
  if v_uid is null then
    raise exception 'Sign in to cancel training jobs' using errcode = '42501';
  end if;
  select * into v_job from public.training_jobs j where j.id = cancel_training_job.job_id and j.user_id = v_uid for update;
  if not found then
    raise exception 'Job "%" does not exist', cancel_training_job.job_id using errcode = 'LT420',
      hint = 'Pass the id of one of your jobs: select id, status from public.training_jobs.';
  end if;
  if v_job.status in ('cancelling', 'cancelled') then
    return v_job;
  end if;
  if v_job.status in ('succeeded', 'failed', 'timed_out') then
    raise exception 'Cannot cancel job "%": already %', v_job.id, v_job.status using errcode = 'LT421',
      hint = 'Finished jobs cannot be cancelled; soft-delete it (deleted_at) or start a new one.';
  end if;
  perform private.monitor_event(v_job.id, 'info', 'job.cancel_requested',
    format('Cancel requested by the owner while %s', v_job.status),
    jsonb_build_object('from', v_job.status, 'by', v_uid));
  if v_job.status in ('pending', 'queued') then
    update public.training_jobs set status = 'cancelled' where id = v_job.id returning * into v_job;
  else
    update public.training_jobs set status = 'cancelling' where id = v_job.id returning * into v_job;
    -- The monitor trigger has requested the cluster stop when the cluster job is known; act now, not at the next tick.
    update private.job_monitor m set next_poll_at = now() where m.job_id = v_job.id;
    update private.cluster_stops s set next_attempt_at = now() where s.job_id = v_job.id and s.done_at is null;
    perform private.invoke_worker('poll-training-jobs', jsonb_build_object('job_ids', jsonb_build_array(v_job.id), 'source', 'cancel'));
  end if;
  return v_job;
end;
$$;
comment on function public.cancel_training_job(uuid) is
  'Cancels one of the caller''s jobs, idempotently: pending or queued jobs are cancelled at once; dispatching or running jobs become cancelling and the poller stops the cluster job, then marks them cancelled (or succeeded/failed if the cluster finished first). Returns the job. LT420: not the caller''s job; LT421: already finished.';
revoke all on function public.cancel_training_job(uuid) from public, anon;
grant execute on function public.cancel_training_job(uuid) to authenticated;

create function public.retry_training_job(
  job_id uuid,
  checkpoint_id uuid default null,
  config jsonb default null,
  name text default null,
  idempotency_key text default null)
returns public.training_jobs
language plpgsql
-- Invoker: the parent is read under the caller's RLS; create_training_job() does the rest.
security invoker
set search_path = ''
as $$
declare
  v_parent public.training_jobs;
begin
  select * into v_parent from public.training_jobs j where j.id = retry_training_job.job_id;
  if not found then
    raise exception 'Job "%" does not exist', retry_training_job.job_id using errcode = 'LT420',
      hint = 'Pass the id of one of your finished jobs.';
  end if;
  if checkpoint_id is not null and not exists (
    select 1 from public.checkpoints k where k.id = retry_training_job.checkpoint_id and k.job_id = v_parent.id) then
    raise exception 'Checkpoint "%" is not a checkpoint of job "%"', checkpoint_id, v_parent.id using errcode = 'LT422',
      hint = 'Pick one of the job''s checkpoints: select id, step, eval_loss from public.checkpoints where job_id = ...';
  end if;
  return public.create_training_job(
    dataset_id => v_parent.dataset_id,
    base_model_id => v_parent.base_model_id,
    config => v_parent.requested_config || coalesce(retry_training_job.config, '{}'::jsonb),
    validation_dataset_id => v_parent.validation_dataset_id,
    name => coalesce(retry_training_job.name, v_parent.name),
    suffix => v_parent.suffix,
    idempotency_key => retry_training_job.idempotency_key,
    parent_job_id => v_parent.id,
    resume_from_checkpoint_id => checkpoint_id);
end;
$$;
comment on function public.retry_training_job(uuid, uuid, jsonb, text, text) is
  'Runs one of the caller''s finished jobs again as a new job (parent_job_id = job_id): same dataset, model, requested configuration (keys in config override it, e.g. {"epochs": 2} to continue), optionally from one of its checkpoints (resume_from_checkpoint_id). Admission, quotas and idempotency as public.create_training_job(). LT420: not the caller''s job; LT422: not its checkpoint; LT010: not finished.';
revoke all on function public.retry_training_job(uuid, uuid, jsonb, text, text) from public, anon;
grant execute on function public.retry_training_job(uuid, uuid, jsonb, text, text) to authenticated;
