-- For operators: validate a dataset's file again without a new upload, e.g.
-- after a system error (LT282) once its cause is fixed, or for a dataset
-- stuck in validating. The state machine allows error -> validating ("the
-- server: validate again"); a ready dataset never changes.

create function private.revalidate_dataset(p_dataset_id uuid)
returns bigint
language plpgsql
set search_path = ''
as $$
declare
  v_dataset record;
begin
  select d.id, d.status, d.deleted_at, d.storage_path into v_dataset
  from public.datasets d where d.id = p_dataset_id
  for update;
  if not found then
    raise exception 'Dataset "%" does not exist', p_dataset_id using errcode = 'P0002';
  end if;
  if v_dataset.deleted_at is not null or v_dataset.status not in ('error', 'validating') then
    raise exception 'Dataset "%" cannot be validated again from status "%"%', p_dataset_id, v_dataset.status,
        case when v_dataset.deleted_at is not null then ' (deleted)' else '' end
      using errcode = 'LT287',
            hint = 'Only failed datasets, or ones stuck in validating, are validated again; a ready dataset never changes.';
  end if;
  if not exists (select 1 from storage.objects o where o.bucket_id = 'lora-datasets' and o.name = v_dataset.storage_path) then
    raise exception 'Dataset "%" has no file in Storage', p_dataset_id
      using errcode = 'LT283',
            hint = 'Reopen the upload window (update public.datasets set status = ''uploading'') and have the owner upload the file.';
  end if;
  update public.datasets d
     set status = 'validating', format = null, stats = null, report = null, error = null, progress_pct = 0
   where d.id = p_dataset_id;
  return private.enqueue_dataset_validation(p_dataset_id);
end;
$$;
comment on function private.revalidate_dataset(uuid) is
  'Operators: validate a failed (or stuck validating) dataset''s stored file again as a new run generation; returns the message id. LT287 for other statuses, LT283 when the file is gone.';
revoke all on function private.revalidate_dataset(uuid) from public;
