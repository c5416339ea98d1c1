-- Runs that continue from a checkpoint, for real.
--
-- Until now a retry named the checkpoint it would resume from, but the GPU
-- cluster contract had no way to say so: every run started at step 0. The
-- contract now has SubmitJobRequest.resume_from {job_id, checkpoint, step}
-- (gpu-cluster/openapi.yaml): a checkpoint the cluster saved for one of its
-- jobs. So that we can name it:
--
--   public.checkpoints.external_job_id  the cluster job (run) that saved the
--                                       checkpoint, filled by a trigger from
--                                       the job's current run;
--   private.resume_point(job)           what a new run of the job continues
--                                       from: its own latest checkpoint (an
--                                       automatic retry), else the parent's
--                                       checkpoint it was created from
--                                       (resume_from_checkpoint_id), else null;
--   private.dispatch_next()             adds resume_from to every claim, so the
--                                       dispatch worker sends it;
--   private.fail_or_retry()             the retry event names that point
--                                       (private.latest_checkpoint() goes).
--
-- A job created from a checkpoint is checked when it is created: the LoRA
-- shape must match the checkpoint's (LT423), there must be steps left after
-- it (LT424), and the checkpoint must name its cluster run (LT425). Its loss
-- curve starts with the parent's points up to the checkpoint. A cluster that
-- no longer has the checkpoint fails the run with checkpoint_unavailable
-- (LT414).

-- 1. Which cluster run saved each checkpoint.
alter table public.checkpoints add column external_job_id text;
comment on column public.checkpoints.external_job_id is
  'The GPU cluster job (run) that saved the checkpoint: a run continuing from it names it in resume_from. Null for checkpoints recorded before runs were tracked.';

create function private.tg_checkpoints__set_external_job_id()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  -- Checkpoints arrive from the job's current run (private.apply_cluster_update checks it); a
  -- checkpoint saved again at the same step (a run that restarted before it) belongs to the new run.
  if tg_op = 'INSERT' and new.external_job_id is null
     or tg_op = 'UPDATE' and new.metrics ->> 'saved_at' is distinct from old.metrics ->> 'saved_at' then
    new.external_job_id := coalesce(
      (select j.external_job_id from public.training_jobs j where j.id = new.job_id), new.external_job_id);
  end if;
  return new;
end;
$$;
comment on function private.tg_checkpoints__set_external_job_id() is
  'Trigger: a checkpoint saved (or saved again) by a run records that run''s cluster job id (public.training_jobs.external_job_id).';
revoke all on function private.tg_checkpoints__set_external_job_id() from public;

create trigger _110_set_external_job_id
  before insert or update on public.checkpoints
  for each row execute function private.tg_checkpoints__set_external_job_id();
comment on trigger _110_set_external_job_id on public.checkpoints is
  'Records the cluster run that saved the checkpoint (private.tg_checkpoints__set_external_job_id).';

-- Checkpoints recorded before: only a job with a single run knows which run saved them.
update public.checkpoints k set external_job_id = j.external_job_id
  from public.training_jobs j
 where j.id = k.job_id and k.external_job_id is null and j.attempt_count <= 1 and j.external_job_id is not null;

-- 2. What a new run continues from.
create function private.resume_point(p_job_id uuid)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select jsonb_build_object('id', k.id, 'job_id', k.job_id, 'step', k.step, 'epoch', k.epoch,
           'train_loss', k.train_loss, 'eval_loss', k.eval_loss, 'name', k.metrics ->> 'name',
           'external_job_id', k.external_job_id)
    from public.training_jobs j
    join lateral (
      select x.*
        from ((select c.*, 1 as preference from public.checkpoints c
                where c.job_id = j.id and c.external_job_id is not null and c.metrics ? 'name'
                order by c.step desc limit 1)
              union all
              select c.*, 2 from public.checkpoints c where c.id = j.resume_from_checkpoint_id) as x
       order by x.preference
       limit 1
    ) k on true
   where j.id = p_job_id
$$;
comment on function private.resume_point(uuid) is
  'The checkpoint the job''s next run continues from, as JSON {id, job_id, step, epoch, train_loss, eval_loss, name, external_job_id}: its own latest checkpoint that names its cluster run (after a failed run), else the parent''s checkpoint it was created from (resume_from_checkpoint_id), else null (step 0).';
revoke all on function private.resume_point(uuid) from public;

create function private.cluster_resume_from(p_job_id uuid)
returns jsonb
language sql
stable
set search_path = ''
as $$
  -- SubmitJobRequest.resume_from of gpu-cluster/openapi.yaml.
  select case when r ->> 'external_job_id' is not null and r ->> 'name' is not null
              then jsonb_build_object('job_id', r ->> 'external_job_id', 'checkpoint', r ->> 'name', 'step', (r ->> 'step')::integer) end
    from (select private.resume_point(p_job_id) as r) as p
$$;
comment on function private.cluster_resume_from(uuid) is
  'The GPU cluster resume_from {job_id, checkpoint, step} of the job''s next run (private.resume_point), or null to start at step 0.';
revoke all on function private.cluster_resume_from(uuid) from public;

-- 3. Every claim carries it (the worker puts it in the submit body it saves and reuses).
alter function private.dispatch_next(text) rename to dispatch_claim_next;
comment on function private.dispatch_claim_next(text) is
  'The claim of private.dispatch_next() without resume_from: reads one dispatch message and returns what to do (see private.dispatch_next).';

create function private.dispatch_next(p_queue text default 'training_dispatch')
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_claim jsonb := private.dispatch_claim_next(p_queue);
begin
  if v_claim ->> 'action' in ('submit', 'recover') then
    v_claim := v_claim || jsonb_build_object('resume_from', private.cluster_resume_from((v_claim ->> 'job_id')::uuid));
  end if;
  return v_claim;
end;
$$;
comment on function private.dispatch_next(text) is
  'Reads one dispatch message (visibility timeout dispatch_visibility_timeout_seconds) and returns what to do: submit or recover (job claimed: queued -> dispatching committed, with key, saved request, dataset and validation dataset paths, cluster config and resume_from, the checkpoint to continue from or null), busy, done, not_admitted, gone, discarded or poisoned (archived; LT314). Null when the queue is empty.';
revoke all on function private.dispatch_next(text) from public;

-- 4. The retry event names the point the next run really continues from.
create or replace function private.fail_or_retry(p_job_id uuid, p_failure jsonb)
returns text
language plpgsql
set search_path = ''
as $$
declare
  v_job public.training_jobs;
  v_max integer := private.job_setting('auto_retry_max')::integer;
  v_resume jsonb;
begin
  select * into v_job from public.training_jobs j where j.id = p_job_id for update;
  if v_job.status not in ('running', 'cancelling') then
    return v_job.status::text;
  end if;
  if v_job.status = 'running' and coalesce((p_failure ->> 'retryable')::boolean, false)
     and p_failure ->> 'kind' = 'system' and v_job.attempt_count <= v_max then
    v_resume := private.resume_point(v_job.id);
    perform private.monitor_event(v_job.id, 'warning', 'training.retry_scheduled',
      format('Run %s failed: %s. Retrying automatically (retry %s of %s)%s', v_job.attempt_count, p_failure ->> 'message',
        v_job.attempt_count, v_max,
        case when v_resume is null then ' from the start' else format(' from %s (step %s)', coalesce(v_resume ->> 'name', 'the latest checkpoint'), v_resume ->> 'step') end),
      jsonb_build_object('run', v_job.attempt_count, 'retry', v_job.attempt_count, 'max_retries', v_max,
        'error', p_failure, 'resume_from', v_resume));
    update public.training_jobs set status = 'queued', error = null where id = v_job.id;
    return 'queued';
  end if;
  update public.training_jobs
     set status = 'failed',
         error = p_failure || jsonb_build_object('runs', v_job.attempt_count)
               || case when v_job.attempt_count > 1 and p_failure ->> 'kind' = 'system'
                    then jsonb_build_object('message', format('%s (after %s runs)', p_failure ->> 'message', v_job.attempt_count))
                    else '{}'::jsonb end
   where id = v_job.id;
  return 'failed';
end;
$$;
comment on function private.fail_or_retry(uuid, jsonb) is
  'Ends a failed run of a running or cancelling job: with a retryable system failure and retries left (attempt_count <= auto_retry_max) the job goes back to queued with a training.retry_scheduled event naming the checkpoint the next run continues from (private.resume_point); otherwise it fails with p_failure (plus runs). Returns the new status.';
-- Replaced by private.resume_point(), which knows which run saved a checkpoint.
drop function private.latest_checkpoint(uuid);

-- 5. A job created from a checkpoint can continue from it.
create function private.tg_training_jobs__check_resume()
returns trigger
language plpgsql
-- Definer: reads the parent's checkpoint whatever the caller's grants (the composite foreign
-- keys already keep parent and checkpoint inside the caller's rows).
security definer
set search_path = ''
as $$
declare
  v_ckpt public.checkpoints;
  v_parent jsonb;
  v_mine jsonb := new.config -> 'lora';
  v_diff text;
begin
  if new.resume_from_checkpoint_id is null or new.config is null then
    return new;
  end if;
  select * into v_ckpt from public.checkpoints k
   where k.id = new.resume_from_checkpoint_id and k.job_id = new.parent_job_id;
  if not found then
    return new; -- the foreign key answers
  end if;
  select j.config -> 'lora' into v_parent from public.training_jobs j where j.id = new.parent_job_id;
  select string_agg(format('%s %s instead of %s', f, coalesce(v_mine -> f, 'null'), coalesce(v_parent -> f, 'null')), ', ')
    into v_diff
    from unnest(array['rank', 'target_modules', 'use_dora']) as f
   where case when f = 'target_modules'
              then (select coalesce(array_agg(x order by x), '{}') from jsonb_array_elements_text(v_mine -> f) x)
                   is distinct from (select coalesce(array_agg(x order by x), '{}') from jsonb_array_elements_text(v_parent -> f) x)
              else v_mine -> f is distinct from v_parent -> f end;
  if v_diff is not null then
    raise exception 'Checkpoint "%" holds an adapter of another shape: lora %', v_ckpt.id, v_diff
      using errcode = 'LT423',
            detail = jsonb_build_object('checkpoint_id', v_ckpt.id, 'parent_lora', v_parent, 'lora', v_mine)::text,
            hint = 'Keep lora.rank, lora.target_modules and lora.use_dora of the parent job to continue from its checkpoint, or start without a checkpoint.';
  end if;
  if v_ckpt.external_job_id is null or not v_ckpt.metrics ? 'name' then
    raise exception 'Checkpoint "%" cannot be continued from: the GPU cluster run that saved it is not known', v_ckpt.id
      using errcode = 'LT425',
            hint = 'Pick a checkpoint saved since runs are tracked, or start without a checkpoint.';
  end if;
  if new.total_steps is not null and v_ckpt.step >= new.total_steps then
    raise exception 'Checkpoint "%" is at step %, but this job ends at step %: nothing would be left to train',
      coalesce(v_ckpt.metrics ->> 'name', v_ckpt.id::text), v_ckpt.step, new.total_steps
      using errcode = 'LT424',
            detail = jsonb_build_object('checkpoint_step', v_ckpt.step, 'total_steps', new.total_steps,
              'epochs', new.config -> 'epochs')::text,
            hint = 'Raise epochs so that the job runs past the checkpoint (e.g. config {"epochs": 2} after a 1-epoch job), or pick an earlier checkpoint.';
  end if;
  return new;
end;
$$;
comment on function private.tg_training_jobs__check_resume() is
  'Trigger: a job created from a checkpoint must keep its LoRA shape (rank, target_modules, use_dora; LT423), have steps left after it (total_steps > its step; LT424), and the checkpoint must name the cluster run that saved it (LT425).';
revoke all on function private.tg_training_jobs__check_resume() from public;

create trigger _360_check_resume
  before insert on public.training_jobs
  for each row execute function private.tg_training_jobs__check_resume();
comment on trigger _360_check_resume on public.training_jobs is
  'Checks that a job created from a checkpoint can continue from it (private.tg_training_jobs__check_resume).';

create function private.tg_training_jobs__copy_resumed_history()
returns trigger
language plpgsql
-- Definer: metrics_points are server-owned; the rows copied are the owner's own.
security definer
set search_path = ''
as $$
begin
  -- The curve of a continued job starts with the parent's points up to the checkpoint.
  insert into public.metrics_points (job_id, user_id, step, epoch, train_loss, eval_loss, learning_rate, grad_norm,
    tokens_per_second, recorded_at)
  select new.id, new.user_id, m.step, m.epoch, m.train_loss, m.eval_loss, m.learning_rate, m.grad_norm,
         m.tokens_per_second, m.recorded_at
    from public.metrics_points m
    join public.checkpoints k on k.id = new.resume_from_checkpoint_id
   where m.job_id = new.parent_job_id and m.step <= k.step;
  return null;
end;
$$;
comment on function private.tg_training_jobs__copy_resumed_history() is
  'Trigger: a job created from a checkpoint starts its metrics_points with the parent''s points up to the checkpoint''s step, so its loss curve is the whole history of the adapter it trains.';
revoke all on function private.tg_training_jobs__copy_resumed_history() from public;

create trigger _360_copy_resumed_history
  after insert on public.training_jobs
  for each row when (new.resume_from_checkpoint_id is not null)
  execute function private.tg_training_jobs__copy_resumed_history();
comment on trigger _360_copy_resumed_history on public.training_jobs is
  'Copies the parent''s loss curve up to the checkpoint into a job continued from it.';

-- 6. The cluster no longer has the checkpoint (LT414); and a model that does not fit in
--    the GPUs' memory at load time is the user's to fix with 4-bit quantization (LT408),
--    not a batch-size problem retried as a system failure (LT401).
create or replace function private.cluster_failure(p_error jsonb, p_config jsonb default '{}'::jsonb)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_code text := coalesce(nullif(p_error ->> 'code', ''), 'unknown');
  v_msg text := coalesce(p_error ->> 'message', '');
  v_step text := coalesce(p_error ->> 'step', 'an unknown step');
  v_category text := case when p_error ->> 'category' in ('user', 'system') then p_error ->> 'category' else 'system' end;
  v_retryable boolean := coalesce((p_error ->> 'retryable')::boolean, false);
  v_cfg jsonb := coalesce(p_config, '{}'::jsonb);
  v_out jsonb;
begin
  v_out := case
    -- Out of memory loading the model (the cluster's user error at step 0): no batch size helps.
    when v_code = 'oom' and (v_category = 'user' or (p_error ->> 'step' = '0' and not v_retryable)) then
      jsonb_build_object('code', 'LT408', 'kind', 'user', 'retryable', false,
      'message', format('The base model does not fit in the GPUs'' memory: %s', v_msg),
      'hint', 'Set "quantization": "4bit" in the configuration (QLoRA: about a quarter of the weight memory), or pick a smaller base model.')
  else case v_code
    when 'oom' then jsonb_build_object('code', 'LT401', 'kind', 'system', 'retryable', v_retryable,
      'message', format('The GPU ran out of memory at step %s (batch_size %s, max_seq_length %s, LoRA rank %s)',
        v_step, coalesce(v_cfg ->> 'batch_size', '?'), coalesce(v_cfg ->> 'max_seq_length', '?'), coalesce(v_cfg #>> '{lora,rank}', '?')),
      'hint', 'Halve batch_size and double gradient_accumulation_steps (same effective batch), or lower max_seq_length or the LoRA rank, then retry.')
    when 'dataset_unreachable' then jsonb_build_object('code', 'LT402', 'kind', 'system', 'retryable', true,
      'message', format('The GPU cluster could not download the dataset: %s', v_msg),
      'hint', 'Usually an expired or revoked download link; a retry signs a new one. If the dataset was deleted, create the job again with another dataset.')
    when 'dataset_invalid' then jsonb_build_object('code', 'LT403', 'kind', 'user', 'retryable', false,
      'message', format('The GPU cluster could not read the dataset: %s', v_msg),
      'hint', 'Fix the file (one JSON object per line), upload it as a new dataset and start a new job.')
    when 'invalid_config' then jsonb_build_object('code', 'LT404', 'kind', 'user', 'retryable', false,
      'message', format('The GPU cluster refused the training configuration: %s', v_msg),
      'hint', 'Check the configuration with public.quote_training_job() and start a new job with the values it accepts.')
    when 'node_failure' then jsonb_build_object('code', 'LT405', 'kind', 'system', 'retryable', true,
      'message', format('The GPU node running the job failed at step %s: %s', v_step, v_msg),
      'hint', 'Not caused by the job. It is retried automatically; if retries are used up, retry it from its last checkpoint.')
    when 'internal_error' then jsonb_build_object('code', 'LT405', 'kind', 'system', 'retryable', v_retryable,
      'message', format('The GPU cluster failed internally at step %s: %s', v_step, v_msg),
      'hint', 'Not caused by the job. It is retried automatically when the cluster allows; otherwise retry it later.')
    when 'artifact_upload_failed' then jsonb_build_object('code', 'LT406', 'kind', 'system', 'retryable', true,
      'message', format('Training finished but the trained adapter could not be delivered: %s', v_msg),
      'hint', 'Not caused by the job. It is retried automatically; if it keeps failing, an operator should check Storage and the gpu-upload-urls function.')
    when 'checkpoint_unavailable' then jsonb_build_object('code', 'LT414', 'kind', 'system', 'retryable', false,
      'message', format('The GPU cluster no longer has the checkpoint this run was to continue from: %s', v_msg),
      'hint', 'Clusters keep checkpoints for a limited time (at least 30 days). Retry the job from a more recent checkpoint, or without one to start at step 0: public.retry_training_job(job_id).')
    else jsonb_build_object('code', 'LT409', 'kind', v_category, 'retryable', v_retryable,
      'message', format('The GPU cluster reported "%s" at step %s: %s', v_code, v_step, v_msg),
      'hint', case when v_category = 'user' then 'Change the job or its data as the message says and start a new job.'
                   else 'Not caused by the job; retry it later.' end)
  end end;
  return v_out || jsonb_build_object('details', jsonb_build_object('cluster_error', p_error));
end;
$$;
comment on function private.cluster_failure(jsonb, jsonb) is
  'Translates a cluster JobError {code, message, retryable, category, step} into the job error {code (LT401-LT409, LT414), message, hint, kind (user|system), retryable, details.cluster_error}: an out-of-memory failure while training names the configuration values it depends on (LT401), one loading the model asks for 4-bit quantization (LT408).';
