-- The model card: what the backend knows about a trained adapter, written
-- as README.md beside it (lora-models/{user_id}/{job_id}/README.md) when the
-- job succeeds. The cluster does not write it; the worker that completes
-- the delivery (webhook or poller), or the poller later as a chore
-- (job_monitor.model_card_status = 'pending'), renders this data
-- (functions/_shared/model-card.ts) and uploads it with the service key.

create function private.model_card_data(p_job_id uuid)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select jsonb_build_object(
    'job', jsonb_build_object('id', j.id, 'user_id', j.user_id, 'name', j.name, 'suffix', j.suffix,
      'status', j.status, 'created_at', j.created_at, 'started_at', j.started_at, 'finished_at', j.finished_at,
      'runs', j.attempt_count, 'parent_job_id', j.parent_job_id, 'resume_from_checkpoint_id', j.resume_from_checkpoint_id,
      'total_steps', j.total_steps, 'current_epoch', j.current_epoch),
    'base_model', jsonb_build_object('id', b.id, 'display_name', b.display_name, 'hf_repo', b.hf_repo,
      'family', b.family, 'parameter_count', b.parameter_count, 'gpu_type', b.gpu_type, 'gpu_count', b.gpu_count),
    'config', j.config,
    'dataset', jsonb_build_object('id', d.id, 'name', d.name, 'file_name', d.file_name, 'format', d.format,
      'size_bytes', d.size_bytes, 'stats', d.stats),
    'final_metrics', (select to_jsonb(m) - 'id' - 'job_id' - 'user_id' - 'created_at'
                        from public.metrics_points m where m.job_id = j.id order by m.step desc limit 1),
    'min_train_loss', (select min(m.train_loss) from public.metrics_points m where m.job_id = j.id),
    'min_eval_loss', (select min(m.eval_loss) from public.metrics_points m where m.job_id = j.id),
    'best_checkpoint', private.best_checkpoint(j.id),
    'checkpoints', (select count(*) from public.checkpoints k where k.job_id = j.id),
    'cost', jsonb_build_object('gpu_seconds', j.actual_gpu_seconds, 'amount', j.actual_cost, 'currency', j.currency,
      'estimated_amount', j.estimated_cost, 'price_per_gpu_hour', b.price_per_gpu_hour),
    'artifacts', (select coalesce(jsonb_agg(jsonb_build_object('kind', a.kind, 'path', a.storage_path,
                    'size_bytes', a.size_bytes, 'sha256', a.sha256) order by a.storage_path), '[]'::jsonb)
                    from public.model_artifacts a where a.job_id = j.id and a.kind <> 'model_card'))
  from public.training_jobs j
  join public.base_models b on b.id = j.base_model_id
  join public.datasets d on d.id = j.dataset_id
  where j.id = p_job_id
$$;
comment on function private.model_card_data(uuid) is
  'Everything the model card shows for a job: job, base model, resolved config, dataset and its statistics, final and best metrics, best checkpoint, cost and the delivered artifacts.';
revoke all on function private.model_card_data(uuid) from public;

create function private.declare_backend_artifact(p_job_id uuid, p_path text, p_content_type text, p_size_bytes bigint, p_sha256 text)
returns text
language sql
set search_path = ''
as $$
  insert into private.artifact_uploads as u (job_id, path, kind, content_type, size_bytes, sha256)
  values (p_job_id, p_path, private.artifact_kind(p_path), p_content_type, p_size_bytes, p_sha256)
  on conflict (job_id, path) do update
    set content_type = excluded.content_type, size_bytes = excluded.size_bytes, sha256 = excluded.sha256, requested_at = now();
  select j.user_id || '/' || j.id || '/' || p_path from public.training_jobs j where j.id = p_job_id
$$;
comment on function private.declare_backend_artifact(uuid, text, text, bigint, text) is
  'Declares a file the backend itself uploads for a job (the model card) with its size and SHA-256, and returns its object name in lora-models.';
revoke all on function private.declare_backend_artifact(uuid, text, text, bigint, text) from public;

create function private.model_card_done(p_job_id uuid, p_storage_path text)
returns void
language plpgsql
set search_path = ''
as $$
begin
  update private.job_monitor set model_card_status = 'done', lease_until = null
   where job_id = p_job_id and model_card_status is distinct from 'done';
  if found then
    perform private.monitor_event(p_job_id, 'info', 'delivery.model_card_written',
      format('Model card written to lora-models/%s', p_storage_path), jsonb_build_object('storage_path', p_storage_path));
  end if;
end;
$$;
comment on function private.model_card_done(uuid, text) is
  'Records that the job''s model card was uploaded (a delivery.model_card_written event, once).';
revoke all on function private.model_card_done(uuid, text) from public;

create function private.model_card_failed(p_job_id uuid, p_error text)
returns void
language sql
set search_path = ''
as $$
  update private.job_monitor
     set lease_until = null, next_poll_at = now() + interval '1 minute',
         last_poll_error = jsonb_build_object('kind', 'model_card', 'message', left(p_error, 500))
   where job_id = p_job_id
$$;
comment on function private.model_card_failed(uuid, text) is
  'Records a failed model card upload; the poller tries again a minute later.';
revoke all on function private.model_card_failed(uuid, text) from public;
