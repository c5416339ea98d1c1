-- Artifacts are verified from the stored bytes before they are delivered
-- (issue 16.2).
--
-- Before: a signed upload URL (Storage's, valid 2 hours, upsert) still worked
-- after its job had failed, and the upload registered a model_artifacts row
-- with the SHA-256 the cluster declared, whatever the bytes were.
--
-- Now:
--   * uploads are refused by the database while Storage checks the write
--     (before the bytes are taken): the file must have been declared for the
--     job (gpu-upload-urls), the job must still be delivering (running or
--     cancelling; the model card also after success: LT463) and the upload
--     must come within artifact_upload_window_seconds (900) of the URL being
--     issued (LT464), whatever Storage's token says (writes through the
--     Storage API as the service role; clients are refused by RLS already);
--   * a registered artifact starts as verification = 'pending' and wakes the
--     verify-artifacts worker (pg_net after commit; pg_cron every minute as
--     the safety net), which reads the stored bytes through Storage, hashes
--     them and calls private.record_artifact_verification(): 'verified' when
--     size and SHA-256 match the declaration, else 'mismatch' with a
--     delivery.artifact_rejected event (LT465);
--   * only verified files complete a delivery, can be read or signed by the
--     owner (a restrictive Storage policy) and are listed by list-artifacts.
-- Files the backend uploads itself (the model card) are hashed by the
-- backend from the bytes it sends and registered verified.

alter table public.model_artifacts
  add column verification text not null default 'pending' check (verification in ('pending', 'verified', 'mismatch')),
  add column verified_at timestamptz;
comment on column public.model_artifacts.verification is
  'pending: stored, its bytes not yet checked; verified: the stored bytes have the declared size and SHA-256 (only these are delivered); mismatch: they do not, and the file is never delivered (server-owned).';
comment on column public.model_artifacts.verified_at is 'When the stored bytes were checked.';
comment on column public.model_artifacts.sha256 is
  'Lowercase hex SHA-256 of the object: the declared one until verified, then the one computed from the stored bytes.';
create index model_artifacts_pending_idx on public.model_artifacts (created_at) where verification = 'pending';
comment on index public.model_artifacts_pending_idx is 'The verify-artifacts worker finds pending artifacts through this index only.';

alter table private.artifact_uploads
  add column declared_by text not null default 'cluster' check (declared_by in ('cluster', 'backend'));
comment on column private.artifact_uploads.declared_by is
  'cluster: declared in a gpu-upload-urls request (verified from the stored bytes); backend: a file the backend writes itself (the model card).';

insert into private.job_settings (name, value, description) values
  ('artifact_upload_window_seconds', 900,
    'How long after gpu-upload-urls issued a file''s upload URL the database accepts its upload (Storage''s own token lives 2 hours).')
on conflict (name) do nothing;

create function private.tg_objects__guard_model_artifact_upload()
returns trigger
language plpgsql
-- Definer: Storage checks the write as the signer (service role); jobs and declarations are ours.
security definer
set search_path = ''
as $$
declare
  v_parts text[] := string_to_array(new.name, '/');
  v_job public.training_jobs;
  v_path text;
  v_declared private.artifact_uploads;
begin
  if new.bucket_id <> 'lora-models' or cardinality(v_parts) < 3
     or v_parts[1] !~ '^[0-9a-f-]{36}$' or v_parts[2] !~ '^[0-9a-f-]{36}$' then
    return new;
  end if;
  if tg_op = 'UPDATE' and (new.version, new.metadata) is not distinct from (old.version, old.metadata) then
    return new;
  end if;
  -- Artifacts reach lora-models through Storage as the service role (signed upload URLs, the backend);
  -- clients are refused by RLS, and a database administrator's own SQL passes.
  if coalesce(current_setting('role', true), 'none') <> 'service_role' then
    return new;
  end if;
  select * into v_job from public.training_jobs j where j.id = v_parts[2]::uuid and j.user_id = v_parts[1]::uuid;
  v_path := array_to_string(v_parts[3:], '/');
  if v_job.id is null or private.artifact_kind(v_path) is null then
    return new;
  end if;
  select * into v_declared from private.artifact_uploads u where u.job_id = v_job.id and u.path = v_path;
  if v_declared.job_id is null
     or v_job.status not in ('running', 'cancelling')
        and not (v_declared.declared_by = 'backend' and v_job.status = 'succeeded') then
    raise exception 'Job "%" takes no upload of "%": it is %', v_job.id, v_path,
      v_job.status || case when v_declared.job_id is null then ' and the file was never declared' else '' end
      using errcode = 'LT463', hint = 'Artifacts are accepted only while the job is running or cancelling, for files declared through gpu-upload-urls.';
  end if;
  if v_declared.declared_by = 'cluster'
     and v_declared.requested_at < now() - private.job_setting('artifact_upload_window_seconds') * interval '1 second' then
    raise exception 'The upload URL for "%" of job "%" expired at %', v_path, v_job.id,
      v_declared.requested_at + private.job_setting('artifact_upload_window_seconds') * interval '1 second'
      using errcode = 'LT464', hint = 'Ask gpu-upload-urls for a new URL (valid artifact_upload_window_seconds) and upload again.';
  end if;
  return new;
end;
$$;
comment on function private.tg_objects__guard_model_artifact_upload() is
  'Trigger on storage.objects: refuses writing a lora-models artifact of a job that is no longer delivering or that was never declared (LT463), or after its upload window (LT464).';
revoke all on function private.tg_objects__guard_model_artifact_upload() from public;

create trigger _400_guard_model_artifact_upload
  before insert or update on storage.objects
  for each row execute function private.tg_objects__guard_model_artifact_upload();
comment on trigger _400_guard_model_artifact_upload on storage.objects is
  'Refuses lora-models uploads outside a job''s delivery (private.tg_objects__guard_model_artifact_upload).';

-- Registration: pending until the bytes are checked (otherwise as in 20261126140700).
create or replace function private.tg_objects__register_model_artifact()
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
  v_trusted boolean;
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
  -- The backend hashed the bytes it uploaded itself; anything else is checked from the stored bytes.
  v_trusted := v_declared.declared_by = 'backend' and v_declared.size_bytes = (new.metadata ->> 'size')::bigint;
  insert into public.model_artifacts as a (job_id, user_id, kind, storage_path, size_bytes, sha256, verification, verified_at)
  values (v_job.id, v_job.user_id, v_kind, new.name, (new.metadata ->> 'size')::bigint, v_declared.sha256,
    case when v_trusted then 'verified' else 'pending' end, case when v_trusted then now() end)
  on conflict (storage_path) do update
    set kind = excluded.kind, size_bytes = excluded.size_bytes, sha256 = excluded.sha256,
        verification = excluded.verification, verified_at = excluded.verified_at
    where (a.kind, a.size_bytes, a.sha256) is distinct from (excluded.kind, excluded.size_bytes, excluded.sha256)
       or tg_op = 'UPDATE' and new.version is distinct from old.version;
  if v_kind = 'checkpoint' then
    v_step := substring(v_path from '^checkpoint-([0-9]+)/')::integer;
    update public.checkpoints k set storage_path = v_job.user_id || '/' || v_job.id || '/' || split_part(v_path, '/', 1) || '/'
     where k.job_id = v_job.id and k.step = v_step and k.storage_path is null;
  end if;
  if v_trusted then
    perform private.complete_delivery(v_job.id);
  else
    perform private.invoke_worker('verify-artifacts', jsonb_build_object('job_id', v_job.id));
  end if;
  return null;
end;
$$;
comment on function private.tg_objects__register_model_artifact() is
  'Trigger on storage.objects: an object in lora-models at {user_id}/{job_id}/{path} of a known artifact kind is registered in public.model_artifacts (size from Storage metadata, SHA-256 as declared, verification pending, which wakes verify-artifacts; the backend''s own files verified), and checkpoint files set their checkpoint''s storage_path.';
revoke all on function private.tg_objects__register_model_artifact() from public;

-- Delivery counts verified files only (otherwise as in 20261126140300).
create or replace function private.complete_delivery(p_job_id uuid)
returns boolean
language plpgsql
set search_path = ''
as $$
declare
  v_job public.training_jobs;
  v_expected jsonb;
  v_missing jsonb;
  v_delivered jsonb;
begin
  select * into v_job from public.training_jobs j where j.id = p_job_id for update;
  if v_job.status not in ('running', 'cancelling') then
    return false;
  end if;
  select m.expected_artifacts into v_expected from private.job_monitor m where m.job_id = p_job_id;
  if v_expected is null then
    return false;
  end if;
  select coalesce(jsonb_agg(e ->> 'path'), '[]'::jsonb) into v_missing
    from jsonb_array_elements(v_expected) e
   where not exists (
     select 1 from public.model_artifacts a
      where a.storage_path = v_job.user_id || '/' || v_job.id || '/' || (e ->> 'path')
        and a.verification = 'verified'
        and (e ->> 'size_bytes' is null or a.size_bytes = (e ->> 'size_bytes')::bigint)
        and (e ->> 'sha256' is null or a.sha256 = e ->> 'sha256'));
  if v_missing <> '[]'::jsonb then
    return false;
  end if;
  select jsonb_agg(jsonb_build_object('kind', a.kind, 'storage_path', a.storage_path, 'size_bytes', a.size_bytes, 'sha256', a.sha256)
           order by a.storage_path)
    into v_delivered from public.model_artifacts a where a.job_id = p_job_id and a.verification = 'verified';
  perform private.monitor_event(p_job_id, 'info', 'delivery.completed',
    format('%s artifacts delivered to lora-models/%s/%s/', jsonb_array_length(v_delivered), v_job.user_id, v_job.id),
    jsonb_build_object('artifacts', v_delivered));
  update private.job_monitor set model_card_status = 'pending', next_poll_at = now() where job_id = p_job_id;
  update public.training_jobs set status = 'succeeded', error = null, progress_pct = 100 where id = p_job_id;
  return true;
end;
$$;
comment on function private.complete_delivery(uuid) is
  'When every artifact the cluster listed on success is registered and verified with its size and SHA-256: a delivery.completed event, the model card is due, and the job becomes succeeded. Returns whether it completed now.';
revoke all on function private.complete_delivery(uuid) from public;

create function private.artifact_verification_claim()
returns table (id uuid, job_id uuid, storage_path text)
language sql
set search_path = ''
as $$
  select a.id, a.job_id, a.storage_path from public.model_artifacts a
   where a.verification = 'pending'
   order by a.created_at
   limit 1
   for update skip locked
$$;
comment on function private.artifact_verification_claim() is
  'The oldest pending artifact nobody is verifying, locked until the caller''s transaction ends (the verify-artifacts worker hashes its bytes meanwhile).';
revoke all on function private.artifact_verification_claim() from public;

create function private.record_artifact_verification(p_artifact_id uuid, p_size_bytes bigint, p_sha256 text)
returns text
language plpgsql
set search_path = ''
as $$
declare
  v_art public.model_artifacts;
  v_declared private.artifact_uploads;
  v_ok boolean;
begin
  select * into v_art from public.model_artifacts a where a.id = p_artifact_id for update;
  if not found or v_art.verification <> 'pending' then
    return coalesce(v_art.verification, 'gone');
  end if;
  select * into v_declared from private.artifact_uploads u
   where u.job_id = v_art.job_id and v_art.storage_path = v_art.user_id || '/' || v_art.job_id || '/' || u.path;
  v_ok := v_declared.sha256 is not null and v_declared.sha256 = p_sha256
      and (v_declared.size_bytes is null or v_declared.size_bytes = p_size_bytes)
      and v_art.size_bytes is not distinct from p_size_bytes;
  update public.model_artifacts
     set verification = case when v_ok then 'verified' else 'mismatch' end, verified_at = now(),
         sha256 = case when v_ok then p_sha256 else sha256 end
   where id = p_artifact_id;
  if v_ok then
    return case when private.complete_delivery(v_art.job_id) then 'delivered' else 'verified' end;
  end if;
  perform private.monitor_event(v_art.job_id, 'error', 'delivery.artifact_rejected',
    format('The stored bytes of "%s" are not what the GPU cluster declared (%s bytes, SHA-256 %s; stored: %s bytes, %s): not delivered',
      v_declared.path, coalesce(v_declared.size_bytes::text, '?'), coalesce(v_declared.sha256, 'none'), p_size_bytes, p_sha256),
    jsonb_build_object('code', 'LT465', 'storage_path', v_art.storage_path,
      'declared', jsonb_build_object('size_bytes', v_declared.size_bytes, 'sha256', v_declared.sha256),
      'stored', jsonb_build_object('size_bytes', p_size_bytes, 'sha256', p_sha256)));
  return 'mismatch';
end;
$$;
comment on function private.record_artifact_verification(uuid, bigint, text) is
  'Records what verify-artifacts computed from an artifact''s stored bytes: verified (and the delivery completed if it was the last file) when size and SHA-256 match the declaration, else mismatch with a delivery.artifact_rejected event (LT465). Returns delivered (verified, and the job just succeeded: its model card is due), verified, mismatch, or the state it already had.';
revoke all on function private.record_artifact_verification(uuid, bigint, text) from public;

create function private.artifact_verification_safety_net()
returns bigint
language plpgsql
set search_path = ''
as $$
begin
  if exists (select 1 from public.model_artifacts a where a.verification = 'pending') then
    return private.invoke_worker('verify-artifacts', '{"source": "cron"}'::jsonb);
  end if;
  return null;
end;
$$;
comment on function private.artifact_verification_safety_net() is
  'What pg_cron runs every minute: wakes verify-artifacts when an artifact waits for verification.';
revoke all on function private.artifact_verification_safety_net() from public;

do $$
begin
  if exists (select 1 from pg_catalog.pg_extension where extname = 'pg_cron') then
    perform cron.schedule('verify-artifacts', '* * * * *', 'select private.artifact_verification_safety_net()');
  end if;
end;
$$;

create policy "LoRA model files are readable only once verified"
  on storage.objects as restrictive for select to authenticated
  using (
    bucket_id <> 'lora-models'
    or not exists (select 1 from public.model_artifacts a where a.storage_path = objects.name and a.verification <> 'verified')
  );

-- The backend's own files are marked as such (otherwise as in 20261126140800).
create or replace function private.declare_backend_artifact(p_job_id uuid, p_path text, p_content_type text, p_size_bytes bigint, p_sha256 text)
returns text
language sql
set search_path = ''
as $$
  insert into private.artifact_uploads as u (job_id, path, kind, content_type, size_bytes, sha256, declared_by)
  values (p_job_id, p_path, private.artifact_kind(p_path), p_content_type, p_size_bytes, p_sha256, 'backend')
  on conflict (job_id, path) do update
    set content_type = excluded.content_type, size_bytes = excluded.size_bytes, sha256 = excluded.sha256,
        requested_at = now(), declared_by = 'backend';
  select j.user_id || '/' || j.id || '/' || p_path from public.training_jobs j where j.id = p_job_id
$$;
comment on function private.declare_backend_artifact(uuid, text, text, bigint, text) is
  'Declares a file the backend itself uploads for a job (the model card) with its size and SHA-256, computed from the bytes it uploads, and returns its object name in lora-models.';
revoke all on function private.declare_backend_artifact(uuid, text, text, bigint, text) from public;

-- The upload window ends when the database stops accepting the files (otherwise as in 20261126140700).
create or replace function private.prepare_artifact_uploads(p_webhook_id text, p_external_job_id text, p_files jsonb)
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
        sha256 = excluded.sha256, requested_at = now(), declared_by = 'cluster';
  update private.webhook_receipts set outcome = 'urls_issued', job_id = v_job.id where webhook_id = p_webhook_id;
  perform private.monitor_event(v_job.id, 'info', 'delivery.upload_requested',
    format('The GPU cluster is uploading %s files', jsonb_array_length(p_files)),
    jsonb_build_object('files', p_files));
  return jsonb_build_object('outcome', 'ok', 'job_id', v_job.id, 'bucket', 'lora-models',
    'expires_at', now() + private.job_setting('artifact_upload_window_seconds') * interval '1 second',
    'uploads', (select jsonb_agg(jsonb_build_object('path', f ->> 'path',
                  'object', v_job.user_id || '/' || v_job.id || '/' || (f ->> 'path')))
                  from jsonb_array_elements(p_files) f));
end;
$$;
comment on function private.prepare_artifact_uploads(text, text, jsonb) is
  'For a verified upload-URL request {webhook_id, cluster job id, files [{path, content_type, size_bytes, sha256}]}: refuses a reused webhook id (duplicate), an unknown cluster job (unknown_job), a job that is not running or cancelling (not_accepting) and files of no known kind (unknown_files); otherwise records the declared files and returns {outcome: ok, job_id, bucket, expires_at (the end of the upload window), uploads: [{path, object}]} with object names built from the job.';
revoke all on function private.prepare_artifact_uploads(text, text, jsonb) from public;
