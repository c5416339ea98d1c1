-- Train on what was validated (issue 15.1). With max_invalid_fraction a file
-- with bad lines becomes `ready` and docs say those lines "are skipped", but
-- dispatch sent the original file and the cluster fails a job on any bad
-- line. The validation worker now stores every invalid line number of a run
-- (in the transaction that saves the chunk's cursor, so redelivery cannot
-- lose or double them), and dispatch sends the lines of the current
-- generation to the cluster as `dataset_spec.skip_lines` together with the
-- line format, chat template and prompt-masking rule the statistics were
-- computed with (issue 15.6; gpu-cluster/openapi.yaml, DatasetSpec).

create table private.dataset_skipped_lines (
  dataset_id uuid not null references public.datasets (id) on delete cascade,
  generation integer not null,
  line integer not null check (line >= 1),
  primary key (dataset_id, generation, line)
);
comment on table private.dataset_skipped_lines is
  'Invalid lines of a dataset''s validation runs (1-based physical lines): a tolerated file (max_invalid_fraction) is trained without them (dispatch sends them as dataset_spec.skip_lines). Only the current generation is kept.';
comment on column private.dataset_skipped_lines.dataset_id is 'The dataset.';
comment on column private.dataset_skipped_lines.generation is 'The upload generation (private.dataset_validation_runs.generation) that found the line invalid.';
comment on column private.dataset_skipped_lines.line is 'The invalid line, 1-based, counting every physical line of the file (split on "\n").';
alter table private.dataset_skipped_lines enable row level security;
revoke all on table private.dataset_skipped_lines from public, anon, authenticated;

create function private.record_dataset_skipped_lines(p_dataset_id uuid, p_token uuid, p_seq integer, p_lines jsonb)
returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_run private.dataset_validation_runs := private.dataset_validation_leased(p_dataset_id, p_token, p_seq);
  v_count integer;
begin
  -- Older generations' lines say nothing about the file now stored.
  delete from private.dataset_skipped_lines s
   where s.dataset_id = p_dataset_id and s.generation <> v_run.generation;
  insert into private.dataset_skipped_lines (dataset_id, generation, line)
  select p_dataset_id, v_run.generation, l.line::integer
  from jsonb_array_elements_text(coalesce(p_lines, '[]'::jsonb)) as l(line)
  on conflict do nothing;
  get diagnostics v_count = row_count;
  return v_count;
end;
$$;
comment on function private.record_dataset_skipped_lines(uuid, uuid, integer, jsonb) is
  'Stores the invalid lines of chunk p_seq + 1 (p_lines: a JSON array of line numbers) for the run''s generation; the lease holder only (LT286). Idempotent: a redelivered chunk inserts nothing new. Call in the transaction that saves the cursor.';
revoke all on function private.record_dataset_skipped_lines(uuid, uuid, integer, jsonb) from public, anon, authenticated;

create function private.dataset_skip_lines(p_dataset_id uuid)
returns integer[]
language sql
stable
set search_path = ''
as $$
  select coalesce(array_agg(s.line order by s.line), '{}')
  from private.dataset_skipped_lines s
  join private.dataset_validation_runs r on r.dataset_id = s.dataset_id and r.generation = s.generation
  where s.dataset_id = p_dataset_id
$$;
comment on function private.dataset_skip_lines(uuid) is
  'The lines of a dataset''s current file that validation rejected (ascending; empty when none): what the cluster must not train on.';
revoke all on function private.dataset_skip_lines(uuid) from public, anon, authenticated;

create function private.dispatch_dataset_spec(p_job_id uuid)
returns jsonb
language sql
stable
set search_path = ''
as $$
  -- DatasetSpec of gpu-cluster/openapi.yaml. The masking rule is the one the
  -- validation engine counts trainable tokens with (docs/ingestion.md,
  -- Statistics): loss on assistant messages whose weight is not 0 (on the
  -- completion for prompt_completion), never on the prompt side.
  select jsonb_build_object(
    'line_format', d.format,
    'chat_template', case when d.format = 'prompt_completion' then null
                          else private.tokenizer_family_of(b.tokenizer) end,
    'train_on_inputs', false,
    'message_weights', true,
    'skip_lines', to_jsonb(private.dataset_skip_lines(d.id)))
    || case when j.validation_dataset_id is null then '{}'::jsonb
            else jsonb_build_object('validation_skip_lines', to_jsonb(private.dataset_skip_lines(j.validation_dataset_id))) end
  from public.training_jobs j
  join public.datasets d on d.id = j.dataset_id
  join public.base_models b on b.id = j.base_model_id
  where j.id = p_job_id and d.format is not null
$$;
comment on function private.dispatch_dataset_spec(uuid) is
  'What dispatch sends as dataset_spec for a job: the line format, the chat template (tokenizer family; null = raw text), the prompt-masking rule (train_on_inputs false, per-message weight honoured) and the training (and validation) file''s skipped lines.';
revoke all on function private.dispatch_dataset_spec(uuid) from public, anon, authenticated;
