-- One source for the dataset size limit (issue 15.5). The validation engine
-- had its own 500 MiB constant besides the lora-datasets bucket's
-- file_size_limit, which docs tell operators to change: lowering the bucket
-- limit left the validator at 500 MiB, raising it made the validator reject
-- files Storage had accepted. The engine now gets the bucket's limit as
-- `maxFileBytes` in its options (fixed at the first claim of a generation,
-- like the other options) and has no limit of its own; a bucket without a
-- limit means none.

create or replace function private.dataset_validation_options(p_dataset_id uuid)
returns jsonb
language sql
stable
set search_path = ''
as $$
  -- EngineOptions (functions/_shared/dataset/state.ts): the owner's tolerance,
  -- the bucket's size limit, and every enabled base model whose tokenizer the
  -- engine can count for.
  select jsonb_build_object(
    'maxInvalidFraction', d.max_invalid_fraction::double precision,
    'models', coalesce((
      select jsonb_object_agg(b.id, jsonb_build_object(
        'family', private.tokenizer_family_of(b.tokenizer), 'contextLength', b.context_length))
      from public.base_models b
      where b.enabled and private.tokenizer_family_of(b.tokenizer) is not null), '{}'::jsonb))
    || coalesce((
      select jsonb_build_object('maxFileBytes', sb.file_size_limit)
      from storage.buckets sb
      where sb.id = 'lora-datasets' and sb.file_size_limit is not null), '{}'::jsonb)
  from public.datasets d
  where d.id = p_dataset_id
$$;
comment on function private.dataset_validation_options(uuid) is
  'Engine options for validating a dataset: {maxInvalidFraction, maxFileBytes (the lora-datasets bucket''s file_size_limit, absent when it has none), models: {id: {family, contextLength}}} from the dataset, the bucket and the enabled base models.';
revoke all on function private.dataset_validation_options(uuid) from public;
