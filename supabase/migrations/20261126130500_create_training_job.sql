-- The creation RPC: the insert a client would make, but a double submit
-- returns the job that already exists instead of failing.
--
-- A plain insert into public.training_jobs is fully supported (RLS, column
-- grants and the admission triggers do the work); its double submits fail
-- with 23505 (same idempotency_key) or LT304 (same dataset and configuration
-- within the window, naming the existing job). public.create_training_job()
-- takes the same per-user lock as the admission trigger, looks for the job a
-- retry means, and returns it; reusing a key for a different job is LT306.

create function public.create_training_job(
  dataset_id uuid,
  base_model_id text,
  config jsonb default '{}'::jsonb,
  validation_dataset_id uuid default null,
  name text default null,
  suffix text default null,
  idempotency_key text default null,
  parent_job_id uuid default null,
  resume_from_checkpoint_id uuid default null)
returns public.training_jobs
language plpgsql
-- Definer: the lock and the duplicate lookup use private helpers. The row is always the
-- caller's (user_id = auth.uid()), and composite foreign keys keep its references inside
-- the caller's rows, as RLS and the column grants do for a plain insert.
security definer
set search_path = ''
as $$
declare
  v_uid uuid := auth.uid();
  v_new public.training_jobs;
  v_existing public.training_jobs;
begin
  if v_uid is null then
    raise exception 'Sign in to create training jobs' using errcode = '42501';
  end if;
  perform pg_advisory_xact_lock(private.training_jobs_user_lock(v_uid));

  v_new.user_id := v_uid;
  v_new.dataset_id := dataset_id;
  v_new.validation_dataset_id := validation_dataset_id;
  v_new.base_model_id := base_model_id;
  v_new.requested_config := coalesce(config, '{}'::jsonb);
  v_new.suffix := suffix;
  v_new.parent_job_id := parent_job_id;
  v_new.resume_from_checkpoint_id := resume_from_checkpoint_id;

  if idempotency_key is not null then
    select j.* into v_existing from public.training_jobs j
     where j.user_id = v_uid and j.idempotency_key = create_training_job.idempotency_key;
    if found then
      if (v_existing.dataset_id, v_existing.validation_dataset_id, v_existing.base_model_id, v_existing.requested_config,
          v_existing.suffix, v_existing.parent_job_id, v_existing.resume_from_checkpoint_id)
         is distinct from
         (v_new.dataset_id, v_new.validation_dataset_id, v_new.base_model_id, v_new.requested_config,
          v_new.suffix, v_new.parent_job_id, v_new.resume_from_checkpoint_id) then
        raise exception 'Idempotency key "%" was already used for job "%" with different parameters',
          idempotency_key, v_existing.id
          using errcode = 'LT306', detail = jsonb_build_object('existing_job_id', v_existing.id)::text,
                hint = 'Use a new idempotency key for a different job.';
      end if;
      return v_existing;
    end if;
  else
    v_existing := private.find_duplicate_training_job(v_new);
    if v_existing.id is not null then
      return v_existing;
    end if;
  end if;

  insert into public.training_jobs (user_id, dataset_id, validation_dataset_id, base_model_id, name, suffix,
    requested_config, idempotency_key, parent_job_id, resume_from_checkpoint_id)
  values (v_uid, v_new.dataset_id, v_new.validation_dataset_id, v_new.base_model_id, name, v_new.suffix,
    v_new.requested_config, idempotency_key, v_new.parent_job_id, v_new.resume_from_checkpoint_id)
  returning * into v_new;
  return v_new;
end;
$$;
comment on function public.create_training_job(uuid, text, jsonb, uuid, text, text, text, uuid, uuid) is
  'Creates a training job for the caller as an insert would (same validation, admission and dispatch), but a double submit returns the existing job: the one with the same idempotency_key (LT306 if its parameters differ), or without a key the same dataset and configuration created within duplicate_window_seconds.';

revoke all on function public.create_training_job(uuid, text, jsonb, uuid, text, text, text, uuid, uuid) from public, anon;
grant execute on function public.create_training_job(uuid, text, jsonb, uuid, text, text, text, uuid, uuid) to authenticated;
