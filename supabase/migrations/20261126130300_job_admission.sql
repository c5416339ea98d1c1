-- Admission of a new training job: one client insert does it all.
--
-- Before insert (_350_resolve_config): the resolved configuration, planned
-- steps and the estimate are written into the row. After insert, once RLS,
-- foreign keys and the reference checks have accepted it (_300_admit): the
-- GPU cluster must be able to run the configuration (LT305), the suffix must
-- not be given twice (LT307), the insert must not be a double submit (LT304)
-- and the user's quotas must allow it (LT301-LT303, LT308); the first problem
-- is raised with every problem as JSON in the detail, else the estimate is
-- written to cost_records. A per-user advisory lock serialises a user's
-- admissions, so concurrent double submits and quota races see each other.
--
-- Double submits: a unique (user_id, idempotency_key) already makes a second
-- insert with the same key fail with 23505. Without a key, a job repeating
-- the dataset and configuration of one created within duplicate_window_seconds
-- fails with LT304, naming the existing job in the message and detail.
-- Rows created earlier in the same transaction never count: a double submit
-- is two requests, and PostgREST runs each in its own transaction.

create function private.training_jobs_user_lock(p_user_id uuid)
returns bigint
language sql
immutable
set search_path = ''
as $$
  select hashtextextended('lora.training_jobs.admission:' || p_user_id::text, 0)
$$;
comment on function private.training_jobs_user_lock(uuid) is
  'Advisory lock key that serialises job admissions of one user (pg_advisory_xact_lock).';

create function private.training_config_cluster_gaps(p_config jsonb, p_validation_dataset_id uuid)
returns jsonb
language sql
immutable
set search_path = ''
as $$
  -- What the GPU cluster contract (gpu-cluster/openapi.yaml, TrainingConfig) cannot express yet.
  -- Refusing at creation is honest; forwarding without them would silently train something else.
  select coalesce(jsonb_agg(e order by n), '[]'::jsonb) from (
    select 1 as n, jsonb_build_object('code', 'LT305', 'path', '["lr_scheduler"]'::jsonb,
      'message', 'LR scheduler "cosine_with_restarts" is not supported by the GPU cluster yet',
      'hint', 'Use "linear", "cosine" or "constant".') as e
     where p_config ->> 'lr_scheduler' = 'cosine_with_restarts'
    union all
    select 2, jsonb_build_object('code', 'LT305', 'path', '["quantization"]'::jsonb,
      'message', 'Quantization "4bit" (QLoRA) is not supported by the GPU cluster yet',
      'hint', 'Use "none" (16-bit LoRA); the price does not depend on it.')
     where p_config ->> 'quantization' = '4bit'
    union all
    select 3, jsonb_build_object('code', 'LT305', 'path', '["validation"]'::jsonb,
      'message', 'Validation data (a split fraction or a validation dataset) is not supported by the GPU cluster yet',
      'hint', 'Remove "validation" from the configuration and validation_dataset_id from the job.')
     where p_config ? 'validation' or p_validation_dataset_id is not null
    union all
    select 4, jsonb_build_object('code', 'LT305', 'path', '["early_stopping_patience"]'::jsonb,
      'message', 'Early stopping is not supported by the GPU cluster yet',
      'hint', 'Remove early_stopping_patience (or set it to null).')
     where jsonb_typeof(p_config -> 'early_stopping_patience') = 'number'
  ) as gaps
$$;
comment on function private.training_config_cluster_gaps(jsonb, uuid) is
  'LT305 for each setting of a resolved configuration the GPU cluster contract cannot carry yet (cosine_with_restarts, 4-bit quantization, validation data, early stopping); [] when it can run it.';

create function private.training_job_suffix_error(p_requested_config jsonb, p_suffix text)
returns jsonb
language sql
immutable
set search_path = ''
as $$
  select case when p_requested_config ->> 'suffix' is distinct from p_suffix
                   and p_requested_config ? 'suffix' and p_suffix is not null
    then jsonb_build_array(jsonb_build_object('code', 'LT307', 'path', '["suffix"]'::jsonb,
      'message', format('Suffix given twice with different values: %s in the configuration, %s as the job''s suffix',
        p_requested_config -> 'suffix', to_jsonb(p_suffix)),
      'hint', 'Set the suffix in one place only.'))
    else '[]'::jsonb end
$$;
comment on function private.training_job_suffix_error(jsonb, text) is
  'LT307 when requested_config.suffix and training_jobs.suffix are both set and differ; [] otherwise.';

create function private.find_duplicate_training_job(p_job public.training_jobs)
returns public.training_jobs
language sql
stable
set search_path = ''
as $$
  -- Same owner, dataset(s), model, requested configuration, suffix and continuation, created within
  -- the window, not failed or cancelled, and not created by the current transaction.
  select j.* from public.training_jobs j
   where j.user_id = p_job.user_id
     and j.id is distinct from p_job.id
     and j.dataset_id = p_job.dataset_id
     and j.validation_dataset_id is not distinct from p_job.validation_dataset_id
     and j.base_model_id = p_job.base_model_id
     and j.requested_config = p_job.requested_config
     and j.suffix is not distinct from p_job.suffix
     and j.parent_job_id is not distinct from p_job.parent_job_id
     and j.resume_from_checkpoint_id is not distinct from p_job.resume_from_checkpoint_id
     and j.status not in ('failed', 'cancelled')
     and j.created_at > now() - private.job_setting('duplicate_window_seconds') * interval '1 second'
     and j.id::text <> all (string_to_array(coalesce(current_setting('lora.jobs_created_in_transaction', true), ''), ','))
   order by j.created_at desc
   limit 1
$$;
comment on function private.find_duplicate_training_job(public.training_jobs) is
  'The most recent job that p_job would double-submit (same owner, datasets, model, requested config, suffix and continuation; created within duplicate_window_seconds by another transaction; not failed or cancelled), or null.';

create function private.tg_training_jobs__resolve_config()
returns trigger
language plpgsql
-- Definer: reads the dataset statistics and private settings for a client's insert.
security definer
set search_path = ''
as $$
declare
  v_stats jsonb;
  v_estimate jsonb;
begin
  -- Only the owner's dataset: a foreign one fails its foreign key right after this trigger.
  select d.stats into v_stats from public.datasets d where d.id = new.dataset_id and d.user_id = new.user_id;
  new.config := private.training_config_resolve(new.base_model_id, new.requested_config, v_stats, new.suffix);
  if new.config is null then
    return new; -- unknown model: the foreign key answers
  end if;
  new.currency := (select b.currency from public.base_models b where b.id = new.base_model_id);
  new.total_steps := (private.training_run_size(new.base_model_id, new.config, v_stats) ->> 'total_steps')::integer;
  v_estimate := private.training_estimate(new.base_model_id, new.config, v_stats);
  new.estimated_gpu_seconds := (v_estimate ->> 'gpu_seconds')::numeric;
  new.estimated_cost := (v_estimate ->> 'cost')::numeric;
  new.estimated_finish_at := (v_estimate ->> 'finish_at')::timestamptz;
  return new;
end;
$$;
comment on function private.tg_training_jobs__resolve_config() is
  'Trigger: fills config (private.training_config_resolve), total_steps, currency and the estimate columns of a new job from its base model and dataset statistics.';

create function private.tg_training_jobs__admit()
returns trigger
language plpgsql
-- Definer: reads quotas and settings, writes the estimate to cost_records (clients cannot).
security definer
set search_path = ''
as $$
declare
  v_stats jsonb;
  v_estimate jsonb;
  v_duplicate public.training_jobs;
  v_errors jsonb;
  v_first jsonb;
begin
  perform set_config('lora.jobs_created_in_transaction',
    coalesce(current_setting('lora.jobs_created_in_transaction', true), '') || ',' || new.id::text, true);
  perform pg_advisory_xact_lock(private.training_jobs_user_lock(new.user_id));

  select d.stats into v_stats from public.datasets d where d.id = new.dataset_id;
  v_estimate := private.training_estimate(new.base_model_id, new.config, v_stats, new.created_at);
  v_errors := private.training_config_cluster_gaps(new.config, new.validation_dataset_id)
    || private.training_job_suffix_error(new.requested_config, new.suffix);
  if new.idempotency_key is null then
    v_duplicate := private.find_duplicate_training_job(new);
    if v_duplicate.id is not null then
      v_errors := v_errors || jsonb_build_object('code', 'LT304', 'existing_job_id', v_duplicate.id,
        'message', format('Job "%s" with the same dataset and configuration was created %s s ago',
          v_duplicate.id, round(extract(epoch from now() - v_duplicate.created_at))),
        'hint', 'This looks like a double submit: use the existing job, or send an idempotency_key (public.create_training_job() returns the existing job instead of failing).');
    end if;
  end if;
  v_errors := v_errors || private.training_job_quota_errors(new.user_id, new.id, v_estimate);

  v_first := v_errors -> 0;
  if v_first is not null then
    raise exception using errcode = v_first ->> 'code', message = v_first ->> 'message',
      detail = v_errors::text, hint = v_first ->> 'hint';
  end if;

  if v_estimate is not null then
    insert into public.cost_records (job_id, user_id, kind, gpu_seconds, amount, currency, description, idempotency_key)
    values (new.id, new.user_id, 'estimate', (v_estimate ->> 'gpu_seconds')::numeric, (v_estimate ->> 'cost')::numeric,
      v_estimate ->> 'currency',
      format('Estimate at creation: %s billable tokens, %s GPU-hours on %s x %s at %s %s per GPU-hour',
        v_estimate ->> 'billable_tokens', v_estimate ->> 'gpu_hours', v_estimate ->> 'gpu_count',
        v_estimate ->> 'gpu_type', v_estimate ->> 'price_per_gpu_hour', v_estimate ->> 'currency'),
      'estimate');
  end if;
  return null;
end;
$$;
comment on function private.tg_training_jobs__admit() is
  'Trigger: refuses a new job the GPU cluster cannot run (LT305), with a doubled suffix (LT307), that double-submits a recent job (LT304) or exceeds a quota (LT301-LT303, LT308), raising the first problem with all of them as JSON in the detail; otherwise records the estimate in cost_records.';

create trigger _350_resolve_config
  before insert on public.training_jobs
  for each row execute function private.tg_training_jobs__resolve_config();
comment on trigger _350_resolve_config on public.training_jobs is
  'Resolves config and writes the estimate columns (private.training_config_resolve, private.training_estimate).';

create trigger _300_admit
  after insert on public.training_jobs
  for each row execute function private.tg_training_jobs__admit();
comment on trigger _300_admit on public.training_jobs is
  'Admission: cluster support, suffix, double submits and quotas (LT301-LT308); records the estimate in cost_records.';

revoke all on function private.training_jobs_user_lock(uuid) from public;
revoke all on function private.training_config_cluster_gaps(jsonb, uuid) from public;
revoke all on function private.training_job_suffix_error(jsonb, text) from public;
revoke all on function private.find_duplicate_training_job(public.training_jobs) from public;
revoke all on function private.tg_training_jobs__resolve_config() from public;
revoke all on function private.tg_training_jobs__admit() from public;
