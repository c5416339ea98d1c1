-- The quote (dry run) RPC: what a job would be and cost, and whether it would
-- be admitted, without creating anything.
--
-- public.quote_training_job() runs the same functions as the insert triggers
-- (validation, resolution, estimate, cluster support, quotas) and returns
-- every problem an insert would raise, in the order it would raise them, so
-- a client can show all of them at once. Double submits (LT304) are not
-- reported: a quote is not a submission.

create function public.quote_training_job(
  dataset_id uuid,
  base_model_id text,
  config jsonb default '{}'::jsonb,
  validation_dataset_id uuid default null,
  suffix text default null)
returns jsonb
language plpgsql
stable
-- Definer: reads private settings and quotas; every user row it reads is filtered by auth.uid().
security definer
set search_path = ''
as $$
declare
  v_uid uuid := auth.uid();
  v_errors jsonb := '[]'::jsonb;
  v_stats jsonb;
  v_config jsonb;
  v_estimate jsonb;
  v_ds record;
  v_id uuid;
begin
  if v_uid is null then
    raise exception 'Sign in to quote training jobs' using errcode = '42501';
  end if;
  v_errors := coalesce(private.training_config_errors(base_model_id, config), '[]'::jsonb);
  foreach v_id in array array_remove(array[dataset_id, validation_dataset_id], null) loop
    select d.status, d.deleted_at, d.stats into v_ds from public.datasets d where d.id = v_id and d.user_id = v_uid;
    if not found then
      v_errors := v_errors || jsonb_build_object('code', '23503',
        'message', format('Dataset "%s" does not exist', v_id),
        'hint', 'Pick one of your datasets: select id from public.datasets where status = ''ready''.');
    elsif v_ds.status <> 'ready' or v_ds.deleted_at is not null then
      v_errors := v_errors || jsonb_build_object('code', 'LT007',
        'message', format('Dataset "%s" is not ready for training (status "%s"%s)', v_id, v_ds.status,
          case when v_ds.deleted_at is not null then ', deleted' else '' end),
        'hint', 'Wait until the dataset status is "ready"; deleted datasets cannot be used.');
    elsif v_id = dataset_id then
      v_stats := v_ds.stats;
    end if;
  end loop;
  if v_errors = '[]'::jsonb then
    v_config := private.training_config_resolve(base_model_id, config, v_stats, suffix);
    v_estimate := private.training_estimate(base_model_id, v_config, v_stats);
    v_errors := private.training_config_cluster_gaps(v_config, validation_dataset_id)
      || private.training_job_suffix_error(config, suffix);
  end if;
  v_errors := v_errors || private.training_job_quota_errors(v_uid, null, v_estimate);
  return jsonb_build_object(
    'allowed', v_errors = '[]'::jsonb,
    'errors', v_errors,
    'config', v_config,
    'estimate', v_estimate,
    'quotas', private.training_job_quota_status(v_uid));
end;
$$;
comment on function public.quote_training_job(uuid, text, jsonb, uuid, text) is
  'Dry run of creating a training job: {allowed, errors: [{code, message, hint?, path?}] (every problem an insert would raise, in order), config (resolved), estimate (tokens, steps, GPU time, cost, finish_at; null without dataset statistics), quotas}. Creates nothing. docs/jobs.md.';

revoke all on function public.quote_training_job(uuid, text, jsonb, uuid, text) from public, anon;
grant execute on function public.quote_training_job(uuid, text, jsonb, uuid, text) to authenticated;
