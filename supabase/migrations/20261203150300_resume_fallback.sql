-- Resuming falls back when the GPU cluster lost the checkpoint (issue 16.3).
--
-- After a cluster restart the lost runs were retried from their own latest
-- checkpoint, which the cluster no longer had: the run failed with
-- checkpoint_unavailable (LT414, not retried) and the job failed although
-- retries were left and it could have started again.
--
-- Now the database remembers which cluster runs' checkpoints are gone
-- (private.lost_cluster_runs):
--   - a run the cluster answers 404 for (LT411, "no longer knows"): that run
--     and its checkpoints are gone;
--   - a run that fails with checkpoint_unavailable: the run whose checkpoint
--     it was to continue from is gone.
-- private.resume_point() skips the job's own checkpoints of such runs, so a
-- retry continues from the latest checkpoint the cluster still has, else the
-- checkpoint the job was created from, else step 0. LT414 is retried when
-- such a fallback exists, within auto_retry_max like any retry, and the
-- training.retry_scheduled event says where the next run starts and why.
-- The one fallback never taken: dropping the checkpoint an owner chose to
-- continue from (resume_from_checkpoint_id) and training from step 0, which
-- would bill a whole new training; that job fails with LT414 as before.

create table private.lost_cluster_runs (
  external_job_id text primary key check (length(external_job_id) between 1 and 200),
  job_id uuid references public.training_jobs (id) on delete cascade,
  reason text not null check (reason in ('not_found', 'checkpoint_unavailable')),
  details jsonb not null default '{}'::jsonb check (jsonb_typeof(details) = 'object'),
  detected_at timestamptz not null default now()
);
comment on table private.lost_cluster_runs is
  'GPU cluster jobs (runs) whose checkpoints the cluster no longer has: no run resumes from them (private.resume_point).';
comment on column private.lost_cluster_runs.external_job_id is 'The cluster job (run), as public.checkpoints.external_job_id names it.';
comment on column private.lost_cluster_runs.job_id is 'The training job whose failure revealed it.';
comment on column private.lost_cluster_runs.reason is 'not_found: the cluster answered 404 for the run (LT411); checkpoint_unavailable: a run failed to continue from one of its checkpoints (LT414).';
comment on column private.lost_cluster_runs.details is 'The failure that revealed it.';
comment on column private.lost_cluster_runs.detected_at is 'When it was recorded.';
create index lost_cluster_runs_job_id_idx on private.lost_cluster_runs (job_id);
revoke all on table private.lost_cluster_runs from public;
grant select on table private.lost_cluster_runs to service_role;

create or replace function private.resume_point(p_job_id uuid)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select jsonb_build_object('id', k.id, 'job_id', k.job_id, 'step', k.step, 'epoch', k.epoch,
           'train_loss', k.train_loss, 'eval_loss', k.eval_loss, 'name', k.metrics ->> 'name',
           'external_job_id', k.external_job_id, 'source', k.source,
           'cluster_lost', exists (select 1 from private.lost_cluster_runs l where l.external_job_id = k.external_job_id))
    from public.training_jobs j
    join lateral (
      select x.*
        from ((select c.*, 1 as preference, 'own' as source from public.checkpoints c
                where c.job_id = j.id and c.external_job_id is not null and c.metrics ? 'name'
                  and not exists (select 1 from private.lost_cluster_runs l where l.external_job_id = c.external_job_id)
                order by c.step desc limit 1)
              union all
              select c.*, 2, 'created_from' from public.checkpoints c where c.id = j.resume_from_checkpoint_id) as x
       order by x.preference
       limit 1
    ) k on true
   where j.id = p_job_id
$$;
comment on function private.resume_point(uuid) is
  'The checkpoint the job''s next run continues from, as JSON {id, job_id, step, epoch, train_loss, eval_loss, name, external_job_id, source: own|created_from, cluster_lost}: its own latest checkpoint that names its cluster run and whose run the cluster has not lost (private.lost_cluster_runs), else the parent''s checkpoint it was created from (resume_from_checkpoint_id; cluster_lost says whether the cluster lost it), else null (step 0).';

create or replace function private.fail_or_retry(p_job_id uuid, p_failure jsonb)
returns text
language plpgsql
set search_path = ''
as $$
declare
  v_job public.training_jobs;
  v_max integer := private.job_setting('auto_retry_max')::integer;
  v_failure jsonb := p_failure;
  v_lost_run text;
  v_lost_reason text;
  v_resume jsonb;
begin
  select * into v_job from public.training_jobs j where j.id = p_job_id for update;
  if v_job.status not in ('running', 'cancelling') then
    return v_job.status::text;
  end if;

  -- What the failure says about the checkpoints the cluster still has.
  if p_failure ->> 'code' = 'LT414' then
    select d.request #>> '{resume_from,job_id}' into v_lost_run
      from private.training_job_dispatch d where d.job_id = v_job.id;
    v_lost_run := coalesce(v_lost_run, private.resume_point(v_job.id) ->> 'external_job_id');
    v_lost_reason := 'checkpoint_unavailable';
  elsif p_failure ->> 'code' = 'LT411' and p_failure #> '{details,since}' is not null then
    -- The 404 path of private.poll_failed: the cluster no longer knows the run at all.
    v_lost_run := v_job.external_job_id;
    v_lost_reason := 'not_found';
  end if;
  if v_lost_run is not null then
    insert into private.lost_cluster_runs (external_job_id, job_id, reason, details)
    values (v_lost_run, v_job.id, v_lost_reason, jsonb_build_object('error', p_failure, 'run', v_job.attempt_count))
    on conflict (external_job_id) do nothing;
  end if;

  v_resume := private.resume_point(v_job.id);
  if p_failure ->> 'code' = 'LT414' then
    -- Retried only when there is somewhere else to start: a checkpoint the cluster may still
    -- have, or step 0 for a job that was not created from a checkpoint.
    v_failure := v_failure || jsonb_build_object('retryable',
      case when v_resume is null then v_job.resume_from_checkpoint_id is null
           else not (v_resume ->> 'cluster_lost')::boolean end);
  end if;

  if v_job.status = 'running' and coalesce((v_failure ->> 'retryable')::boolean, false)
     and v_failure ->> 'kind' = 'system' and v_job.attempt_count <= v_max then
    perform private.monitor_event(v_job.id, 'warning', 'training.retry_scheduled',
      format('Run %s failed: %s. Retrying automatically (retry %s of %s)%s%s', v_job.attempt_count, v_failure ->> 'message',
        v_job.attempt_count, v_max,
        case when v_resume is null then ' from the start (step 0)'
             else format(' from %s (step %s)', coalesce(v_resume ->> 'name', 'the latest checkpoint'), v_resume ->> 'step') end,
        case when v_lost_run is not null
             then format(': the GPU cluster no longer has the checkpoints of cluster job "%s", so the run falls back to %s',
               v_lost_run, case when v_resume is null then 'step 0' else 'the latest checkpoint it still has' end)
             else '' end),
      jsonb_build_object('run', v_job.attempt_count, 'retry', v_job.attempt_count, 'max_retries', v_max,
        'error', v_failure, 'resume_from', v_resume,
        'fallback', case when v_lost_run is not null then jsonb_build_object('lost_cluster_job', v_lost_run,
          'reason', v_lost_reason, 'resume_from', coalesce(v_resume ->> 'name', 'step 0')) end));
    update public.training_jobs set status = 'queued', error = null where id = v_job.id;
    return 'queued';
  end if;
  update public.training_jobs
     set status = 'failed',
         error = v_failure || jsonb_build_object('runs', v_job.attempt_count)
               || case when v_job.attempt_count > 1 and v_failure ->> 'kind' = 'system'
                    then jsonb_build_object('message', format('%s (after %s runs)', v_failure ->> 'message', v_job.attempt_count))
                    else '{}'::jsonb end
   where id = v_job.id;
  return 'failed';
end;
$$;
comment on function private.fail_or_retry(uuid, jsonb) is
  'Ends a failed run of a running or cancelling job. Records a cluster run whose checkpoints are gone (LT414: the run resumed from; LT411 after 404s: the run itself) in private.lost_cluster_runs. With a retryable system failure and retries left (attempt_count <= auto_retry_max) the job goes back to queued with a training.retry_scheduled event naming where the next run continues (private.resume_point: the latest checkpoint the cluster still has, else step 0) and any fallback; LT414 counts as retryable when such a fallback exists (never dropping a checkpoint the job was created from). Otherwise it fails with the failure (plus runs). Returns the new status.';
