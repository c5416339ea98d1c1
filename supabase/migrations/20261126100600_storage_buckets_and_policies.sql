-- Storage for the pipeline: two private buckets and the storage.objects
-- policies that confine clients to their own files.
--
-- lora-datasets: the owner uploads exactly one object per dataset, at the
--   dataset's storage_path ({user_id}/{dataset_id}/{file_name}), and only
--   while the dataset is awaiting upload (status uploading, not deleted).
--   Any other path (another user's folder, a dataset that is not the
--   caller's or not awaiting upload, "..", backslashes, percent-encoded
--   separators, empty segments) matches no policy and is refused (42501).
--   The owner can read and delete objects in their own folder.
-- lora-models: written only by the server (service role, signed upload
--   URLs); the owner can read objects under their own folder.
--
-- Size limit: MAX_DATASET_SIZE_MB (500 MiB). To change it on a live project:
--   update storage.buckets set file_size_limit = <mb> * 1024 * 1024 where id = 'lora-datasets';
--
-- MIME types: Storage compares the whole "type/subtype" string, parameters
-- included, against each allowed entry. supabase-js uploads a File/Blob as
-- multipart with the browser's type for it, which is empty for .jsonl, so the
-- part is sent as application/octet-stream; a string, ArrayBuffer or Buffer
-- body is sent with the default contentType "text/plain;charset=UTF-8". Both
-- are allowed, with the JSON Lines and JSON types that explicit clients use.
-- The MIME type is only a first filter: validation parses every line.

insert into storage.buckets (id, name, public, file_size_limit, allowed_mime_types)
values
  ('lora-datasets', 'lora-datasets', false, 500 * 1024 * 1024, array[
    'application/jsonl', 'application/x-ndjson', 'application/x-jsonlines', 'application/json',
    'text/plain', 'text/plain;charset=UTF-8', 'application/octet-stream'
  ]),
  ('lora-models', 'lora-models', false, null, null)
on conflict (id) do update
  set public = excluded.public,
      file_size_limit = excluded.file_size_limit,
      allowed_mime_types = excluded.allowed_mime_types;

create policy "LoRA owners can read their dataset files and model artifacts"
  on storage.objects for select to authenticated
  using (
    bucket_id in ('lora-datasets', 'lora-models')
    and (storage.foldername(name))[1] = (select auth.uid())::text
    and name !~ '\.\.|\\|%|//'
  );

create policy "LoRA owners can upload the file of a dataset awaiting upload"
  on storage.objects for insert to authenticated
  with check (
    bucket_id = 'lora-datasets'
    and (storage.foldername(name))[1] = (select auth.uid())::text
    and exists (
      select 1 from public.datasets d
      where d.storage_path = objects.name
        and d.user_id = (select auth.uid())
        and d.status = 'uploading'
        and d.deleted_at is null
    )
  );

create policy "LoRA owners can replace the file of a dataset awaiting upload"
  on storage.objects for update to authenticated
  using (
    bucket_id = 'lora-datasets'
    and (storage.foldername(name))[1] = (select auth.uid())::text
    and exists (
      select 1 from public.datasets d
      where d.storage_path = objects.name
        and d.user_id = (select auth.uid())
        and d.status = 'uploading'
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
        and d.status = 'uploading'
        and d.deleted_at is null
    )
  );

create policy "LoRA owners can delete their dataset files"
  on storage.objects for delete to authenticated
  using (
    bucket_id = 'lora-datasets'
    and (storage.foldername(name))[1] = (select auth.uid())::text
    and name !~ '\.\.|\\|%|//'
  );
