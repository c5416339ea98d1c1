-- Re-upload after a failed validation (issue 15.2). docs/API.md promises that
-- a re-upload while a dataset is `uploading` or `error` starts a new verdict,
-- and the worker's LT283 hint says "Upload the file again", but the Storage
-- policies let clients write only while `uploading`, and no client-callable
-- path moved `error -> uploading`. The upload trigger already turns an upload
-- over a failed dataset into a new generation (`error -> validating`, old
-- verdict cleared), so the owner only needs the policies to let the write in.
-- `validating` and `ready` stay closed to clients: a run in flight is the
-- server's, and jobs rely on a ready dataset not changing.

drop policy "LoRA owners can upload the file of a dataset awaiting upload" on storage.objects;
drop policy "LoRA owners can replace the file of a dataset awaiting upload" on storage.objects;

create policy "LoRA owners upload the file of an uploading or failed dataset"
  on storage.objects for insert to authenticated
  with check (
    bucket_id = 'lora-datasets'
    and (storage.foldername(name))[1] = (select auth.uid())::text
    and exists (
      select 1 from public.datasets d
      where d.storage_path = objects.name
        and d.user_id = (select auth.uid())
        and d.status in ('uploading', 'error')
        and d.deleted_at is null
    )
  );

create policy "LoRA owners replace the file of an uploading or failed dataset"
  on storage.objects for update to authenticated
  using (
    bucket_id = 'lora-datasets'
    and (storage.foldername(name))[1] = (select auth.uid())::text
    and exists (
      select 1 from public.datasets d
      where d.storage_path = objects.name
        and d.user_id = (select auth.uid())
        and d.status in ('uploading', 'error')
        and d.deleted_at is null
    )
  )
  with check (
    bucket_id = 'lora-datasets'
    and (storage.foldername(name))[1] = (select auth.uid())::text
    and exists (
      select 1 from public.datasets d
      where d.storage_path = objects.name
        and d.user_id = (select auth.uid())
        and d.status in ('uploading', 'error')
        and d.deleted_at is null
    )
  );
