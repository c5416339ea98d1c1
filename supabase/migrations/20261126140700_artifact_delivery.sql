-- Model delivery: from the cluster's request for upload URLs to registered
-- artifacts and a finished job.
--
-- 1. The cluster asks gpu-upload-urls for signed upload URLs (a signed
--    callback). private.prepare_artifact_uploads() checks the request against
--    the job (known cluster job, still running, a known kind for every file),
--    records each declared file (size, SHA-256) in private.artifact_uploads
--    and returns the object paths, always lora-models/{user_id}/{job_id}/{file}
--    built here from the job, never from the request.
-- 2. The cluster PUTs each file; Storage writes the storage.objects row (as
--    service role). The trigger _500_register_model_artifact registers it in
--    public.model_artifacts (size from Storage, SHA-256 as declared), links a
--    checkpoint's files to its checkpoints row, and tries to complete the
--    delivery (private.complete_delivery). Deleting the object through the
--    Storage API removes its model_artifacts row.
-- 3. After success the backend writes README.md, the model card, beside the
--    adapter (functions/_shared/model-card.ts, from private.model_card_data()).

create function private.artifact_kind(p_path text)
returns public.artifact_kind
language sql
immutable
set search_path = ''
as $$
  select case
    when p_path ~ '^(checkpoint-[0-9]+|checkpoints/[A-Za-z0-9._-]+)/' then 'checkpoint'
    when p_path ~ '^adapter_model\.(safetensors|bin)$' then 'adapter_weights'
    when p_path = 'adapter_config.json' then 'adapter_config'
    when p_path ~ '^(README\.md|model_card\.md)$' then 'model_card'
    when p_path ~ '^(trainer_state\.json|training_metrics\.(json|jsonl|csv)|metrics\.(json|jsonl|csv)|all_results\.json|train_results\.json|eval_results\.json)$' then 'metrics'
  end::public.artifact_kind
$$;
comment on function private.artifact_kind(text) is
  'Artifact kind of a path relative to the job folder: checkpoint-N/... or checkpoints/<name>/... (checkpoint), adapter_model.safetensors|bin (adapter_weights), adapter_config.json, README.md (model_card), trainer_state.json / training_metrics.* / metrics.* / *_results.json (metrics); null for anything else (refused).';
revoke all on function private.artifact_kind(text) from public;

create table private.artifact_uploads (
  job_id uuid not null references public.training_jobs (id) on delete cascade,
  path text not null check (path !~ '(^|/)\.\.(/|$)' and path !~ '^/' and length(path) between 1 and 256),
  kind public.artifact_kind not null,
  content_type text,
  size_bytes bigint check (size_bytes >= 0),
  sha256 text check (sha256 ~ '^[0-9a-f]{64}$'),
  requested_at timestamptz not null default now(),
  primary key (job_id, path)
);
comment on table private.artifact_uploads is
  'Files the cluster (or the backend, for the model card) declared before uploading them: kind, content type, size and SHA-256; the registration trigger takes the checksum from here.';
comment on column private.artifact_uploads.job_id is 'The job the file belongs to.';
comment on column private.artifact_uploads.path is 'Path relative to lora-models/{user_id}/{job_id}/.';
comment on column private.artifact_uploads.kind is 'Artifact kind (private.artifact_kind).';
comment on column private.artifact_uploads.content_type is 'Declared content type.';
comment on column private.artifact_uploads.size_bytes is 'Declared size in bytes.';
comment on column private.artifact_uploads.sha256 is 'Declared lowercase hex SHA-256.';
comment on column private.artifact_uploads.requested_at is 'When the upload URL was last issued.';

revoke all on table private.artifact_uploads from public;
grant select, insert, update, delete on table private.artifact_uploads to service_role;

create function private.prepare_artifact_uploads(p_webhook_id text, p_external_job_id text, p_files jsonb)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_job public.training_jobs;
  v_bad jsonb;
begin
  insert into private.webhook_receipts (webhook_id, kind, external_job_id, outcome)
  values (p_webhook_id, 'upload_urls', p_external_job_id, 'pending')
  on conflict (webhook_id) do nothing;
  if not found then
    return jsonb_build_object('outcome', 'duplicate');
  end if;
  select * into v_job from public.training_jobs j where j.external_job_id = p_external_job_id for share;
  if not found or v_job.status not in ('running', 'cancelling') then
    delete from private.webhook_receipts where webhook_id = p_webhook_id;
    return jsonb_build_object('outcome', case when v_job.id is null then 'unknown_job' else 'not_accepting' end,
      'status', v_job.status);
  end if;
  select coalesce(jsonb_agg(f ->> 'path'), '[]'::jsonb) into v_bad
    from jsonb_array_elements(p_files) f where private.artifact_kind(f ->> 'path') is null;
  if v_bad <> '[]'::jsonb then
    delete from private.webhook_receipts where webhook_id = p_webhook_id;
    return jsonb_build_object('outcome', 'unknown_files', 'paths', v_bad);
  end if;
  insert into private.artifact_uploads as u (job_id, path, kind, content_type, size_bytes, sha256)
  select v_job.id, f ->> 'path', private.artifact_kind(f ->> 'path'), f ->> 'content_type',
         (f ->> 'size_bytes')::bigint, f ->> 'sha256'
    from jsonb_array_elements(p_files) f
  on conflict (job_id, path) do update
    set kind = excluded.kind, content_type = excluded.content_type, size_bytes = excluded.size_bytes,
        sha256 = excluded.sha256, requested_at = now();
  update private.webhook_receipts set outcome = 'urls_issued', job_id = v_job.id where webhook_id = p_webhook_id;
  perform private.monitor_event(v_job.id, 'info', 'delivery.upload_requested',
    format('The GPU cluster is uploading %s files', jsonb_array_length(p_files)),
    jsonb_build_object('files', p_files));
  return jsonb_build_object('outcome', 'ok', 'job_id', v_job.id, 'bucket', 'lora-models',
    'uploads', (select jsonb_agg(jsonb_build_object('path', f ->> 'path',
                  'object', v_job.user_id || '/' || v_job.id || '/' || (f ->> 'path')))
                  from jsonb_array_elements(p_files) f));
end;
$$;
comment on function private.prepare_artifact_uploads(text, text, jsonb) is
  'For a verified upload-URL request {webhook_id, cluster job id, files [{path, content_type, size_bytes, sha256}]}: refuses a reused webhook id (duplicate), an unknown cluster job (unknown_job), a job that is not running or cancelling (not_accepting) and files of no known kind (unknown_files); otherwise records the declared files and returns {outcome: ok, job_id, bucket, uploads: [{path, object}]} with object names built from the job.';
revoke all on function private.prepare_artifact_uploads(text, text, jsonb) from public;

create function private.tg_objects__register_model_artifact()
returns trigger
language plpgsql
-- Definer: Storage writes the row as service role (or a signed URL's signer); the registry is ours.
security definer
set search_path = ''
as $$
declare
  v_parts text[] := string_to_array(new.name, '/');
  v_job public.training_jobs;
  v_path text;
  v_kind public.artifact_kind;
  v_declared private.artifact_uploads;
  v_step integer;
begin
  if new.bucket_id <> 'lora-models' or cardinality(v_parts) < 3
     or v_parts[1] !~ '^[0-9a-f-]{36}$' or v_parts[2] !~ '^[0-9a-f-]{36}$' then
    return null;
  end if;
  select * into v_job from public.training_jobs j where j.id = v_parts[2]::uuid and j.user_id = v_parts[1]::uuid;
  v_path := array_to_string(v_parts[3:], '/');
  v_kind := private.artifact_kind(v_path);
  if v_job.id is null or v_kind is null then
    return null;
  end if;
  select * into v_declared from private.artifact_uploads u where u.job_id = v_job.id and u.path = v_path;
  insert into public.model_artifacts as a (job_id, user_id, kind, storage_path, size_bytes, sha256)
  values (v_job.id, v_job.user_id, v_kind, new.name, (new.metadata ->> 'size')::bigint, v_declared.sha256)
  on conflict (storage_path) do update
    set kind = excluded.kind, size_bytes = excluded.size_bytes, sha256 = excluded.sha256
    where (a.kind, a.size_bytes, a.sha256) is distinct from (excluded.kind, excluded.size_bytes, excluded.sha256);
  if v_kind = 'checkpoint' then
    v_step := substring(v_path from '^checkpoint-([0-9]+)/')::integer;
    update public.checkpoints k set storage_path = v_job.user_id || '/' || v_job.id || '/' || split_part(v_path, '/', 1) || '/'
     where k.job_id = v_job.id and k.step = v_step and k.storage_path is null;
  end if;
  perform private.complete_delivery(v_job.id);
  return null;
end;
$$;
comment on function private.tg_objects__register_model_artifact() is
  'Trigger on storage.objects: an object in lora-models at {user_id}/{job_id}/{path} of a known artifact kind is registered in public.model_artifacts (size from Storage metadata, SHA-256 as declared), checkpoint files set their checkpoint''s storage_path, and the job''s delivery is completed when it was the last file missing.';
revoke all on function private.tg_objects__register_model_artifact() from public;

create trigger _500_register_model_artifact
  after insert or update on storage.objects
  for each row execute function private.tg_objects__register_model_artifact();
comment on trigger _500_register_model_artifact on storage.objects is
  'Registers lora-models objects as model artifacts (private.tg_objects__register_model_artifact).';

create function private.tg_objects__unregister_model_artifact()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if old.bucket_id = 'lora-models' then
    delete from public.model_artifacts where storage_path = old.name;
  end if;
  return null;
end;
$$;
comment on function private.tg_objects__unregister_model_artifact() is
  'Trigger on storage.objects: deleting a lora-models object (through the Storage API) removes its model_artifacts row.';
revoke all on function private.tg_objects__unregister_model_artifact() from public;

create trigger _500_unregister_model_artifact
  after delete on storage.objects
  for each row execute function private.tg_objects__unregister_model_artifact();
comment on trigger _500_unregister_model_artifact on storage.objects is
  'Removes the model_artifacts row of a deleted lora-models object.';
