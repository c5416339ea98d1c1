-- Resolving a requested training configuration into the one a job runs.
--
-- private.training_config_resolve() fills every key the client left out and
-- every "auto" from the base model's catalog entry and the dataset's exact
-- statistics (types/dataset.ts, stored in datasets.stats). The rule, for
-- every key: absent means the catalog default; "auto" (asked for, or the
-- catalog default itself) means derived from the data. The result has every
-- key of the configuration contract, passes private.training_config_errors()
-- unchanged, and contains no "auto". docs/jobs.md lists each rule.
--
-- Input is assumed valid (the _300_validate_config trigger runs first).

create function private.recommended_epochs(p_examples bigint)
returns integer
language sql
immutable
set search_path = ''
as $$
  -- OpenAI's default-epochs heuristic, with the integer divisions of its cookbook
  -- (functions/_shared/dataset/epochs.ts): aim for 3 epochs, keep examples x epochs
  -- within 100..25000 and epochs within 1..25.
  select case
    when p_examples is null or p_examples <= 0 then null
    when p_examples * 3 < 100 then least(25, 100 / p_examples)::integer
    when p_examples * 3 > 25000 then greatest(1, 25000 / p_examples)::integer
    else 3
  end
$$;
comment on function private.recommended_epochs(bigint) is
  'OpenAI''s default epoch count for a dataset of p_examples training examples (3, kept so that examples x epochs is 100..25000, epochs 1..25); null without examples. Twin of recommendedEpochs() in functions/_shared/dataset/epochs.ts.';

create function private.dataset_token_figures(p_stats jsonb, p_base_model_id text, p_tokenizer text)
returns jsonb
language sql
immutable
set search_path = ''
as $$
  -- The figures estimates need, for the base model's tokenizer: example count, total tokens (the
  -- rendered template, special tokens included) and the longest example. Nulls when unknown.
  with f as (
    select coalesce(p_stats #>> array['models', p_base_model_id, 'family'], private.tokenizer_family_of(p_tokenizer)) as family
  )
  select jsonb_build_object(
    'examples', (p_stats ->> 'examples')::bigint,
    'family', f.family,
    'total_tokens', (p_stats #>> array['tokens', f.family, 'totalTokens'])::bigint,
    'max_tokens', (p_stats #>> array['tokens', f.family, 'total', 'max'])::bigint
  )
  from f
$$;
comment on function private.dataset_token_figures(jsonb, text, text) is
  'From datasets.stats: {examples, family, total_tokens, max_tokens} for the tokenizer of a base model (each null when the statistics lack it).';

create function private.training_config_resolve(
  p_base_model_id text, p_request jsonb, p_stats jsonb, p_suffix text default null)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  m record;
  v_req jsonb := case when jsonb_typeof(p_request) = 'object' then p_request else '{}'::jsonb end;
  v_lora jsonb;
  v_figures jsonb;
  v_examples bigint;
  v_split numeric;
  v_train bigint;
  v_max_tokens bigint;
  v_value jsonb;
  v_epochs integer;
  v_lr numeric;
  v_seq integer;
  v_batch integer;
  v_accum integer;
  v_rank integer;
  v_alpha numeric;
  v_steps bigint;
  v_pow integer := 1;
  v_out jsonb;
begin
  select b.id, b.hyperparameters as hp, b.max_lora_rank, b.default_target_modules, b.tokenizer
    into m from public.base_models b where b.id = p_base_model_id;
  if not found then
    return null;
  end if;
  v_lora := case when jsonb_typeof(v_req -> 'lora') = 'object' then v_req -> 'lora' else '{}'::jsonb end;
  v_figures := private.dataset_token_figures(p_stats, m.id, m.tokenizer);
  v_examples := (v_figures ->> 'examples')::bigint;
  v_max_tokens := (v_figures ->> 'max_tokens')::bigint;
  v_split := (v_req #>> '{validation,split_fraction}')::numeric;
  -- A split holds out ceil(examples x fraction) examples, as train_test_split(test_size=...) does.
  v_train := v_examples - coalesce(ceil(v_examples * v_split)::bigint, 0);

  -- epochs: a number, else the catalog default; "auto" = OpenAI's heuristic on the training examples.
  v_value := coalesce(v_req -> 'epochs', m.hp #> '{epochs,default}');
  v_epochs := case when jsonb_typeof(v_value) = 'number' then (v_value #>> '{}')::numeric::integer
    else least(greatest(coalesce(private.recommended_epochs(v_train), 3),
                        (m.hp #>> '{epochs,min}')::integer), (m.hp #>> '{epochs,max}')::integer) end;

  v_value := v_req -> 'learning_rate';
  v_lr := case when jsonb_typeof(v_value) = 'number' then (v_value #>> '{}')::numeric
    else (m.hp #>> '{learning_rate,default}')::numeric end;

  -- max_seq_length "auto": the smallest power of two holding the longest example, within the bounds.
  v_value := coalesce(v_req -> 'max_seq_length', m.hp #> '{max_seq_length,default}');
  if jsonb_typeof(v_value) = 'number' then
    v_seq := (v_value #>> '{}')::numeric::integer;
  elsif v_max_tokens is null then
    v_seq := (m.hp #>> '{max_seq_length,default}')::integer;
  else
    while v_pow < v_max_tokens loop
      v_pow := v_pow * 2;
    end loop;
    v_seq := least(greatest(v_pow, (m.hp #>> '{max_seq_length,min}')::integer), (m.hp #>> '{max_seq_length,max}')::integer);
  end if;

  -- batch_size "auto": keep the catalog default's tokens per micro-batch at the resolved sequence
  -- length, and never more examples than the training set has.
  v_value := coalesce(v_req -> 'batch_size', m.hp #> '{batch_size,default}');
  if jsonb_typeof(v_value) = 'number' then
    v_batch := (v_value #>> '{}')::numeric::integer;
  else
    v_batch := floor((m.hp #>> '{batch_size,default}')::numeric * (m.hp #>> '{max_seq_length,default}')::numeric / v_seq)::integer;
    v_batch := least(v_batch, greatest(coalesce(v_train, v_batch), 1));
    v_batch := least(greatest(v_batch, (m.hp #>> '{batch_size,min}')::integer), (m.hp #>> '{batch_size,max}')::integer);
  end if;

  v_accum := coalesce((v_req ->> 'gradient_accumulation_steps')::numeric,
                      (m.hp #>> '{gradient_accumulation_steps,default}')::numeric)::integer;

  -- lora.rank (no catalog default): "auto" grows with the training set: 8, 16, 32.
  v_value := v_lora -> 'rank';
  v_rank := case when jsonb_typeof(v_value) = 'number' then (v_value #>> '{}')::numeric::integer
    else least(m.max_lora_rank, case when v_train is null then 16 when v_train < 1000 then 8
                                     when v_train < 10000 then 16 else 32 end) end;

  -- lora.alpha "auto": 2 x rank, within the catalog bounds.
  v_value := coalesce(v_lora -> 'alpha', m.hp #> '{lora_alpha,default}');
  v_alpha := case when jsonb_typeof(v_value) = 'number' then (v_value #>> '{}')::numeric
    else least(greatest(2 * v_rank, (m.hp #>> '{lora_alpha,min}')::numeric), (m.hp #>> '{lora_alpha,max}')::numeric) end;

  v_out := jsonb_build_object(
    'method', coalesce(v_req ->> 'method', 'sft'),
    'epochs', v_epochs,
    'learning_rate', v_lr,
    'batch_size', v_batch,
    'gradient_accumulation_steps', v_accum,
    'warmup_ratio', coalesce((v_req ->> 'warmup_ratio')::numeric, (m.hp #>> '{warmup_ratio,default}')::numeric),
    'lr_scheduler', coalesce(v_req ->> 'lr_scheduler', 'linear'),
    'max_seq_length', v_seq,
    'seed', coalesce((v_req ->> 'seed')::numeric::bigint, 42),
    'lora', jsonb_build_object(
      'rank', v_rank,
      'alpha', v_alpha,
      'dropout', coalesce((v_lora ->> 'dropout')::numeric, (m.hp #>> '{lora_dropout,default}')::numeric),
      'target_modules', case when jsonb_typeof(v_lora -> 'target_modules') = 'array' then v_lora -> 'target_modules'
                             else to_jsonb(m.default_target_modules) end,
      'use_rslora', coalesce((v_lora ->> 'use_rslora')::boolean, false),
      'use_dora', coalesce((v_lora ->> 'use_dora')::boolean, false)),
    'quantization', coalesce(v_req ->> 'quantization', 'none'),
    'early_stopping_patience', coalesce(v_req -> 'early_stopping_patience', 'null'::jsonb)
  );
  if v_split is not null then
    v_out := v_out || jsonb_build_object('validation', jsonb_build_object('split_fraction', v_split));
  end if;
  -- Absent: about 20 evaluations and 10 checkpoints per run (null without statistics); null stays null.
  v_steps := (private.training_run_size(m.id, v_out, p_stats) ->> 'total_steps')::bigint;
  v_out := v_out || jsonb_build_object(
    'eval_every_steps', case when v_req ? 'eval_every_steps' then v_req -> 'eval_every_steps'
                             else to_jsonb(ceil(v_steps / 20.0)::bigint) end,
    'checkpoint_every_steps', case when v_req ? 'checkpoint_every_steps' then v_req -> 'checkpoint_every_steps'
                                   else to_jsonb(ceil(v_steps / 10.0)::bigint) end);
  if coalesce(v_req ->> 'suffix', p_suffix) is not null then
    v_out := v_out || jsonb_build_object('suffix', coalesce(v_req ->> 'suffix', p_suffix));
  end if;
  return v_out;
end;
$$;
comment on function private.training_config_resolve(text, jsonb, jsonb, text) is
  'The configuration a job runs: p_request (already valid) with every absent key set to the catalog default and every "auto" derived from the base model and the dataset statistics p_stats (docs/jobs.md, "Defaults"). Null for an unknown model. p_suffix is the training_jobs.suffix column, used when the configuration has none.';

create function private.training_run_size(p_base_model_id text, p_config jsonb, p_stats jsonb)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  v_tokenizer text;
  v_figures jsonb;
  v_examples bigint;
  v_train bigint;
  v_steps bigint;
begin
  select b.tokenizer into v_tokenizer from public.base_models b where b.id = p_base_model_id;
  v_figures := private.dataset_token_figures(p_stats, p_base_model_id, v_tokenizer);
  v_examples := (v_figures ->> 'examples')::bigint;
  v_train := v_examples - coalesce(ceil(v_examples * (p_config #>> '{validation,split_fraction}')::numeric)::bigint, 0);
  v_steps := case when v_train > 0 then greatest(1, ceil(v_train * (p_config ->> 'epochs')::numeric
    / ((p_config ->> 'batch_size')::numeric * (p_config ->> 'gradient_accumulation_steps')::numeric)))::bigint end;
  return v_figures || jsonb_build_object(
    'train_examples', v_train,
    'validation_examples', v_examples - v_train,
    'total_steps', v_steps,
    'warmup_steps', ceil(coalesce(v_steps, 0) * (p_config ->> 'warmup_ratio')::numeric)::bigint
  );
end;
$$;
comment on function private.training_run_size(text, jsonb, jsonb) is
  'Size of a run of a resolved configuration on a dataset: the token figures plus train_examples, validation_examples, total_steps = ceil(train_examples x epochs / (batch_size x gradient_accumulation_steps)) and warmup_steps = ceil(total_steps x warmup_ratio); counts are null without statistics.';

revoke all on function private.recommended_epochs(bigint) from public;
revoke all on function private.dataset_token_figures(jsonb, text, text) from public;
revoke all on function private.training_config_resolve(text, jsonb, jsonb, text) from public;
revoke all on function private.training_run_size(text, jsonb, jsonb) from public;
