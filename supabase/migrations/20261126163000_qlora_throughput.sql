-- 4-bit (QLoRA) runs are estimated at their real speed.
--
-- A QLoRA run dequantizes the frozen NF4 weights on every forward and
-- backward pass and trains about 20 % slower than 16-bit LoRA on the same
-- GPUs (the simulator models 0.8x, gpu-cluster/README.md). Estimates used the
-- catalog's bf16 throughput whatever the quantization, so QLoRA quotes, the
-- cost estimate charged against monthly caps, and the expected_tokens_per_second
-- sent to the cluster were 25 % optimistic. Now both use
--   private.training_throughput() = throughput_tokens_per_second
--                                   x qlora_throughput_factor (0.8) for "4bit".

insert into private.job_settings (name, value, description) values
  ('qlora_throughput_factor', 0.8,
    'Training speed of a 4-bit (QLoRA) run relative to the catalog''s throughput_tokens_per_second (measured for bf16 LoRA); estimates and the cluster''s expected_tokens_per_second use throughput x this factor.');

create function private.training_throughput(p_catalog_tokens_per_second numeric, p_config jsonb)
returns numeric
language sql
stable
set search_path = ''
as $$
  select case when p_config ->> 'quantization' = '4bit'
              then round(p_catalog_tokens_per_second * private.job_setting('qlora_throughput_factor'), 3)
              else p_catalog_tokens_per_second end
$$;
comment on function private.training_throughput(numeric, jsonb) is
  'Tokens per second a run of a resolved configuration trains at: the catalog throughput, times qlora_throughput_factor for quantization "4bit".';
revoke all on function private.training_throughput(numeric, jsonb) from public;

create or replace function private.training_estimate(
  p_base_model_id text, p_config jsonb, p_stats jsonb, p_now timestamptz default now())
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  m record;
  v_size jsonb;
  v_examples bigint;
  v_train bigint;
  v_total bigint;
  v_max bigint;
  v_seq bigint := (p_config ->> 'max_seq_length')::bigint;
  v_epoch_all numeric;
  v_epoch numeric;
  v_exact boolean;
  v_billable numeric;
  v_training numeric;
  v_overhead numeric := private.job_setting('estimate_overhead_seconds');
  v_wall numeric;
  v_gpu_seconds numeric;
begin
  select private.training_throughput(b.throughput_tokens_per_second, p_config) as throughput_tokens_per_second,
         b.gpu_type, b.gpu_count, b.price_per_gpu_hour, b.currency
    into m from public.base_models b where b.id = p_base_model_id;
  if not found or p_config is null then
    return null;
  end if;
  v_size := private.training_run_size(p_base_model_id, p_config, p_stats);
  v_examples := (v_size ->> 'examples')::bigint;
  v_train := (v_size ->> 'train_examples')::bigint;
  v_total := (v_size ->> 'total_tokens')::bigint;
  v_max := (v_size ->> 'max_tokens')::bigint;
  if v_examples is null or v_examples = 0 or v_total is null or v_max is null then
    return null; -- no statistics: nothing honest to say
  end if;
  v_exact := v_max <= v_seq;
  v_epoch_all := case when v_exact then v_total else least(v_total, v_examples * v_seq) end;
  v_epoch := case when v_train = v_examples then v_epoch_all else ceil(v_epoch_all * v_train / v_examples) end;
  v_billable := v_epoch * (p_config ->> 'epochs')::numeric;
  v_training := round(v_billable / m.throughput_tokens_per_second, 3);
  v_wall := v_training + v_overhead;
  v_gpu_seconds := round(v_wall * m.gpu_count, 3);
  return jsonb_build_object(
    'examples', v_examples,
    'train_examples', v_train,
    'validation_examples', (v_size ->> 'validation_examples')::bigint,
    'total_steps', (v_size ->> 'total_steps')::bigint,
    'warmup_steps', (v_size ->> 'warmup_steps')::bigint,
    'tokenizer_family', v_size ->> 'family',
    'max_seq_length', v_seq,
    'longest_example_tokens', v_max,
    'tokens_per_epoch', v_epoch,
    'tokens_exact', v_exact and v_train = v_examples,
    'epochs', (p_config ->> 'epochs')::integer,
    'billable_tokens', v_billable,
    'throughput_tokens_per_second', m.throughput_tokens_per_second,
    'training_seconds', v_training,
    'overhead_seconds', v_overhead,
    'wall_seconds', v_wall,
    'duration_hours', round(v_wall / 3600, 3),
    'gpu_type', m.gpu_type,
    'gpu_count', m.gpu_count,
    'gpu_seconds', v_gpu_seconds,
    'gpu_hours', round(v_gpu_seconds / 3600, 4),
    'price_per_gpu_hour', m.price_per_gpu_hour,
    'currency', m.currency,
    'cost', round(v_gpu_seconds * m.price_per_gpu_hour / 3600, 4),
    'finish_at', p_now + v_wall * interval '1 second'
  );
end;
$$;
comment on function private.training_estimate(text, jsonb, jsonb, timestamptz) is
  'Estimate of a run of a resolved configuration on a dataset with statistics p_stats: tokens, steps, GPU time, cost and finish time at the catalog throughput (times qlora_throughput_factor for 4-bit runs; arithmetic in docs/jobs.md); null without token statistics.';

create or replace function private.cluster_job_config(p_job_id uuid)
returns jsonb
language sql
stable
set search_path = ''
as $$
  -- TrainingConfig of gpu-cluster/openapi.yaml from the resolved config: PEFT names for LoRA,
  -- warmup as steps, "no intermediate checkpoints/evaluations" (null) as "at the last step".
  -- A validation dataset is not here: its signed URL is added by the dispatch worker.
  select jsonb_strip_nulls(jsonb_build_object(
    'base_model', b.hf_repo,
    'parameter_count', b.parameter_count,
    'r', (c #>> '{lora,rank}')::integer,
    'lora_alpha', (c #>> '{lora,alpha}')::numeric,
    'lora_dropout', (c #>> '{lora,dropout}')::numeric,
    'target_modules', c #> '{lora,target_modules}',
    'use_rslora', (c #>> '{lora,use_rslora}')::boolean,
    'use_dora', (c #>> '{lora,use_dora}')::boolean,
    'epochs', (c ->> 'epochs')::integer,
    'batch_size', (c ->> 'batch_size')::integer,
    'gradient_accumulation_steps', (c ->> 'gradient_accumulation_steps')::integer,
    'learning_rate', (c ->> 'learning_rate')::numeric,
    'lr_scheduler', c ->> 'lr_scheduler',
    'lr_scheduler_num_cycles', case when c ->> 'lr_scheduler' = 'cosine_with_restarts' then (c ->> 'epochs')::integer end,
    'warmup_steps', ceil(coalesce(j.total_steps, 0) * (c ->> 'warmup_ratio')::numeric)::integer,
    'max_seq_length', (c ->> 'max_seq_length')::integer,
    'seed', (c ->> 'seed')::bigint,
    'checkpoint_every_steps', coalesce((c ->> 'checkpoint_every_steps')::integer, j.total_steps, 1000000),
    'eval_every_steps', coalesce((c ->> 'eval_every_steps')::integer, j.total_steps),
    'quantization', coalesce(c ->> 'quantization', 'none'),
    'validation', case when c #> '{validation,split_fraction}' is not null
                       then jsonb_build_object('split_fraction', (c #>> '{validation,split_fraction}')::numeric) end,
    'early_stopping_patience', (c ->> 'early_stopping_patience')::integer,
    'expected_tokens_per_second', private.training_throughput(b.throughput_tokens_per_second, c),
    'gpu_type', private.cluster_gpu_type(b.gpu_type),
    'gpu_count', b.gpu_count))
  from public.training_jobs j
  join public.base_models b on b.id = j.base_model_id
  cross join lateral (select j.config as c) as cfg
  where j.id = p_job_id
$$;
comment on function private.cluster_job_config(uuid) is
  'The GPU cluster TrainingConfig (gpu-cluster/openapi.yaml) of a job: its resolved config in PEFT names, warmup_steps from warmup_ratio and total_steps, quantization, a validation split, early stopping, lr_scheduler_num_cycles = epochs for cosine_with_restarts, the catalog throughput (times qlora_throughput_factor for 4-bit runs, as the estimate) and GPUs. A validation dataset''s signed URL is added by the dispatch worker.';
