-- An upload to lora-datasets starts validation, with no further client action.
--
-- The trigger on storage.objects fires on insert and on update (re-uploads
-- are upserts) for bucket lora-datasets. Storage checks an upload by running
-- the write as the caller in a transaction it rolls back, then commits the
-- real row as the service role; the trigger runs in both (as definer), and
-- only the committed run survives: the dataset moves to validating with the
-- object's size and MIME type, a run generation starts, one message goes to
-- pgmq queue dataset_validation, and pg_net wakes validate-dataset after
-- commit. The committed write carries no auth.uid(), so ownership is checked
-- on the row's owner_id.
--
-- An object that matches no dataset awaiting a file is refused, never
-- silently kept: LT280 (no undeleted dataset at that path, or another
-- owner's), LT281 (the dataset is ready: jobs rely on its file). The Storage
-- policies refuse clients first (42501); these codes are the backstop for
-- service-role writes. The refused write and its error are in the Postgres
-- log (SQLSTATE LT280/LT281); private.unmatched_dataset_objects lists any
-- object that got in some other way (before this migration, triggers
-- disabled, a dataset hard-deleted later).
--
-- Accepted: a dataset awaiting upload (uploading), one being validated (the
-- new file replaces the old and the in-flight run is voided) and one whose
-- validation failed (error -> validating: the new verdict replaces the old).

create function private.tokenizer_family_of(p_tokenizer text)
returns text
language sql
immutable
set search_path = ''
as $$
  -- base_models.tokenizer uses the engine's family names (types/dataset.ts TOKENIZER_FAMILIES).
  select case when p_tokenizer in ('llama3', 'qwen3', 'gemma3', 'mistral-v1') then p_tokenizer end
$$;
comment on function private.tokenizer_family_of(text) is
  'The validation engine''s tokenizer family (types/dataset.ts TOKENIZER_FAMILIES) for a base_models.tokenizer, or null when the engine has none.';
revoke all on function private.tokenizer_family_of(text) from public;

create function private.dataset_validation_options(p_dataset_id uuid)
returns jsonb
language sql
stable
set search_path = ''
as $$
  -- EngineOptions (functions/_shared/dataset/state.ts): the owner's tolerance,
  -- and every enabled base model whose tokenizer the engine can count for.
  select jsonb_build_object(
    'maxInvalidFraction', d.max_invalid_fraction::double precision,
    'models', coalesce((
      select jsonb_object_agg(b.id, jsonb_build_object(
        'family', private.tokenizer_family_of(b.tokenizer), 'contextLength', b.context_length))
      from public.base_models b
      where b.enabled and private.tokenizer_family_of(b.tokenizer) is not null), '{}'::jsonb))
  from public.datasets d
  where d.id = p_dataset_id
$$;
comment on function private.dataset_validation_options(uuid) is
  'Engine options for validating a dataset: {maxInvalidFraction, models: {id: {family, contextLength}}} from the dataset and the enabled base models.';
revoke all on function private.dataset_validation_options(uuid) from public;

create function private.enqueue_dataset_validation(p_dataset_id uuid, p_queue text default 'dataset_validation')
returns bigint
language plpgsql
set search_path = ''
as $$
declare
  v_old private.dataset_validation_runs;
  v_generation integer;
  v_msg_id bigint;
begin
  select * into v_old from private.dataset_validation_runs r where r.dataset_id = p_dataset_id for update;
  if found and v_old.msg_id is not null and v_old.finished_at is null then
    -- The old generation's message is void; drop it now rather than when it is read.
    perform pgmq.delete(queue_name => v_old.queue_name, msg_id => v_old.msg_id);
  end if;
  insert into private.dataset_validation_runs as r (dataset_id, queue_name, object_name, size_bytes, mime_type)
  select d.id, p_queue, d.storage_path, d.size_bytes, d.mime_type
  from public.datasets d where d.id = p_dataset_id
  on conflict (dataset_id) do update set
    generation = r.generation + 1, queue_name = excluded.queue_name, object_name = excluded.object_name,
    size_bytes = excluded.size_bytes, mime_type = excluded.mime_type, msg_id = null, options = null,
    cursor = null, seq = 0, bytes_done = 0, lease_token = null, lease_msg_id = null, lease_until = null,
    lease_seq = null, failed_attempts = 0, invocations = 0, last_error = null, outcome = null,
    enqueued_at = now(), started_at = null, finished_at = null
  returning r.generation into v_generation;
  if v_generation is null then
    raise exception 'Dataset "%" does not exist', p_dataset_id using errcode = 'P0002';
  end if;
  select s.id into v_msg_id from pgmq.send(
    queue_name => p_queue,
    msg => jsonb_build_object('dataset_id', p_dataset_id, 'generation', v_generation)) as s(id);
  update private.dataset_validation_runs r set msg_id = v_msg_id where r.dataset_id = p_dataset_id;
  if p_queue = 'dataset_validation' then
    perform private.invoke_worker('validate-dataset', jsonb_build_object('dataset_id', p_dataset_id));
  end if;
  return v_msg_id;
end;
$$;
comment on function private.enqueue_dataset_validation(uuid, text) is
  'Starts a new validation generation for a dataset (voiding any run in flight), sends {"dataset_id", "generation"} to p_queue and, for the dataset_validation queue, wakes the validate-dataset worker after commit. Returns the message id. The dataset row must already say validating.';
revoke all on function private.enqueue_dataset_validation(uuid, text) from public;

create function private.tg_storage_objects__enqueue_dataset_validation()
returns trigger
language plpgsql
-- Definer: the committed write runs as service_role and the probe as the
-- uploader; neither may update server-owned dataset columns or use pgmq.
security definer
set search_path = ''
as $$
declare
  v_dataset record;
  v_size bigint;
begin
  if tg_op = 'UPDATE' and new.bucket_id = old.bucket_id and new.name = old.name
     and new.version is not distinct from old.version then
    return null; -- metadata edited, bytes unchanged: not an upload
  end if;
  select d.id, d.user_id, d.status, d.deleted_at into v_dataset
  from public.datasets d where d.storage_path = new.name
  for update;
  if not found or v_dataset.deleted_at is not null
     or (new.owner_id is not null and new.owner_id is distinct from v_dataset.user_id::text) then
    raise exception 'No dataset awaits a file at "lora-datasets/%"', new.name
      using errcode = 'LT280',
            detail = jsonb_build_object('bucket_id', new.bucket_id, 'name', new.name, 'owner_id', new.owner_id,
              'reason', case when not found then 'no dataset has this storage_path'
                             when v_dataset.deleted_at is not null then 'the dataset is deleted'
                             else 'the uploader does not own the dataset' end)::text,
            hint = 'Insert the datasets row first, then upload to its storage_path ({user_id}/{dataset_id}/{file_name}) as its owner.';
  end if;
  if v_dataset.status = 'ready' then
    raise exception 'Dataset "%" is validated already; its file cannot be replaced', v_dataset.id
      using errcode = 'LT281',
            detail = jsonb_build_object('bucket_id', new.bucket_id, 'name', new.name, 'owner_id', new.owner_id)::text,
            hint = 'Create a new dataset for the new file; jobs rely on a ready dataset not changing.';
  end if;
  v_size := case when jsonb_typeof(new.metadata -> 'size') = 'number' then (new.metadata ->> 'size')::numeric::bigint end;
  update public.datasets d
     set status = 'validating', size_bytes = v_size, mime_type = new.metadata ->> 'mimetype',
         format = null, stats = null, report = null, error = null, progress_pct = 0
   where d.id = v_dataset.id;
  perform private.enqueue_dataset_validation(v_dataset.id);
  return null;
end;
$$;
comment on function private.tg_storage_objects__enqueue_dataset_validation() is
  'Trigger: an upload (insert, or update with a new version) to lora-datasets moves its dataset to validating, records size and MIME type, and enqueues validation; refuses objects matching no undeleted dataset of the uploader (LT280) or a ready dataset (LT281).';
revoke all on function private.tg_storage_objects__enqueue_dataset_validation() from public;

create trigger _500_enqueue_dataset_validation
  after insert or update on storage.objects
  for each row
  when (new.bucket_id = 'lora-datasets')
  execute function private.tg_storage_objects__enqueue_dataset_validation();
comment on trigger _500_enqueue_dataset_validation on storage.objects is
  'Starts validation of dataset uploads (private.tg_storage_objects__enqueue_dataset_validation).';

create view private.unmatched_dataset_objects
with (security_invoker = true)
as
  select o.id, o.name, o.owner_id,
         case when jsonb_typeof(o.metadata -> 'size') = 'number' then (o.metadata ->> 'size')::numeric::bigint end as size_bytes,
         o.created_at, o.updated_at,
         case when d.id is null then 'no dataset has this storage_path'
              when d.deleted_at is not null then 'the dataset is deleted'
              else 'the object''s owner does not own the dataset' end as reason
  from storage.objects o
  left join public.datasets d on d.storage_path = o.name
  where o.bucket_id = 'lora-datasets'
    and (d.id is null or d.deleted_at is not null or (o.owner_id is not null and o.owner_id <> d.user_id::text));
comment on view private.unmatched_dataset_objects is
  'For operators: objects in lora-datasets that belong to no undeleted dataset of their owner (uploaded before the trigger existed or with triggers disabled, or whose dataset was deleted). Remove them with the Storage API.';
revoke all on table private.unmatched_dataset_objects from public;
grant select on table private.unmatched_dataset_objects to service_role;
