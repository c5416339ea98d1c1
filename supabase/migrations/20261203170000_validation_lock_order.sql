-- One lock order for a dataset and its validation run: the dataset row, then
-- the run. A re-upload's storage.objects trigger locks the dataset
-- (`for update`) and then the run (enqueue_dataset_validation); the worker
-- locked the run first (dataset_validation_leased) and the dataset after it
-- (the skipped-lines foreign key, the progress update), so a re-upload in the
-- middle of a chunk could deadlock (40P01) and the uploader got a 500.
-- Every leased step now takes the dataset row first; a re-upload then either
-- waits for the chunk to commit or voids the lease before the worker gets it
-- (LT286, as documented).

create or replace function private.dataset_validation_leased(p_dataset_id uuid, p_token uuid, p_seq integer default null)
returns private.dataset_validation_runs
language plpgsql
set search_path = ''
as $$
declare
  v_run private.dataset_validation_runs;
begin
  perform 1 from public.datasets d where d.id = p_dataset_id for no key update;
  select * into v_run from private.dataset_validation_runs r
   where r.dataset_id = p_dataset_id and r.lease_token = p_token
   for update;
  if not found or (p_seq is not null and v_run.seq <> p_seq) then
    raise exception 'The validation run of dataset "%" is no longer leased by this worker', p_dataset_id
      using errcode = 'LT286',
            hint = 'Another invocation took the run over, or the file was uploaded again; stop working on it.';
  end if;
  return v_run;
end;
$$;
comment on function private.dataset_validation_leased(uuid, uuid, integer) is
  'Locks the dataset row, then the run of p_dataset_id (the order the upload trigger uses), and returns the run if p_token holds its lease (and, when given, p_seq chunks are saved); raises LT286 otherwise.';
