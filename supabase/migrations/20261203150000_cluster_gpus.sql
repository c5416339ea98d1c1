-- The GPU cluster's GPU names as data, and no silent default GPU (issue 15.4).
--
-- private.cluster_gpu_type() mapped three catalog GPU types by a CASE and
-- answered null for anything else; private.cluster_job_config() then dropped
-- gpu_type and the cluster ran the job on its default A100-80GB. So
-- llama-3.2-3b-instruct, listed and quoted on nvidia-l4, trained on an A100.
--
-- Now:
--   private.cluster_gpus               the catalog GPU types the cluster offers
--                                      and its name for each (L4-24GB added);
--                                      operators insert a row when it offers more;
--   _300_check_cluster_gpu on          an enabled base model must run on a GPU
--   public.base_models                 the cluster offers (LT330);
--   private.cluster_job_config()       always sends gpu_type: the cluster's name,
--                                      or, should a mapping be removed after a
--                                      job was admitted, the catalog's own name,
--                                      which the cluster refuses (LT311) instead
--                                      of running the job on another GPU.

create table private.cluster_gpus (
  gpu_type text primary key check (gpu_type ~ '^[a-z0-9][a-z0-9-]*$'),
  cluster_gpu_type text not null unique check (length(cluster_gpu_type) between 1 and 64),
  memory_gb integer not null check (memory_gb > 0),
  created_at timestamptz not null default now()
);
comment on table private.cluster_gpus is
  'GPU types (public.base_models.gpu_type) the GPU cluster offers, with its name for each (TrainingConfig.gpu_type of gpu-cluster/openapi.yaml). An enabled base model must use one of them (LT330).';
comment on column private.cluster_gpus.gpu_type is 'The catalog''s GPU type, e.g. nvidia-l4.';
comment on column private.cluster_gpus.cluster_gpu_type is 'The GPU cluster''s name for it, e.g. L4-24GB.';
comment on column private.cluster_gpus.memory_gb is 'Memory of one GPU, in GB (for operators sizing models).';
comment on column private.cluster_gpus.created_at is 'When the mapping was added.';

revoke all on table private.cluster_gpus from public;
grant select on table private.cluster_gpus to service_role;

insert into private.cluster_gpus (gpu_type, cluster_gpu_type, memory_gb) values
  ('nvidia-a100-80gb', 'A100-80GB', 80),
  ('nvidia-h100-80gb', 'H100-80GB', 80),
  ('nvidia-l40s-48gb', 'L40S-48GB', 48),
  ('nvidia-l4', 'L4-24GB', 24);

create or replace function private.cluster_gpu_type(p_gpu_type text)
returns text
language sql
stable
set search_path = ''
as $$
  select g.cluster_gpu_type from private.cluster_gpus g where g.gpu_type = p_gpu_type
$$;
comment on function private.cluster_gpu_type(text) is
  'The GPU cluster''s name for a base_models.gpu_type (private.cluster_gpus), or null when the cluster does not offer it.';

create function private.tg_base_models__check_cluster_gpu()
returns trigger
language plpgsql
-- Definer: the mapping is private; writers of the catalog need not read it.
security definer
set search_path = ''
as $$
begin
  if new.enabled and private.cluster_gpu_type(new.gpu_type) is null then
    raise exception 'Base model "%" cannot be enabled on GPU type "%": the GPU cluster does not offer it', new.id, new.gpu_type
      using errcode = 'LT330',
            hint = format('Use one of %s, or add the cluster''s name for it to private.cluster_gpus first.',
              (select string_agg(format('"%s"', g.gpu_type), ', ' order by g.gpu_type) from private.cluster_gpus g));
  end if;
  return new;
end;
$$;
comment on function private.tg_base_models__check_cluster_gpu() is
  'Trigger: an enabled base model must run on a GPU type the GPU cluster offers (private.cluster_gpus; LT330), so no job is quoted for one GPU and run on another.';
revoke all on function private.tg_base_models__check_cluster_gpu() from public;

create trigger _300_check_cluster_gpu
  before insert or update of gpu_type, enabled on public.base_models
  for each row execute function private.tg_base_models__check_cluster_gpu();
comment on trigger _300_check_cluster_gpu on public.base_models is
  'Refuses an enabled model on a GPU the cluster does not offer (LT330).';

create function private.tg_cluster_gpus__keep_used()
returns trigger
language plpgsql
set search_path = ''
as $$
declare
  v_models text;
begin
  select string_agg(format('"%s"', b.id), ', ' order by b.id) into v_models
    from public.base_models b where b.gpu_type = old.gpu_type and b.enabled;
  if v_models is not null then
    raise exception 'GPU type "%" is used by enabled base models %', old.gpu_type, v_models
      using errcode = 'LT330', hint = 'Disable those models (or move them to another GPU type) first.';
  end if;
  return case when tg_op = 'DELETE' then old else new end;
end;
$$;
comment on function private.tg_cluster_gpus__keep_used() is
  'Trigger: a GPU type enabled base models use cannot be removed or renamed (LT330).';
revoke all on function private.tg_cluster_gpus__keep_used() from public;

create trigger _300_keep_used
  before delete or update of gpu_type on private.cluster_gpus
  for each row execute function private.tg_cluster_gpus__keep_used();

-- Enabled models on a GPU the cluster does not offer were running elsewhere: say so now.
do $$
declare
  v_model record;
begin
  for v_model in select b.id, b.gpu_type from public.base_models b
                  where b.enabled and private.cluster_gpu_type(b.gpu_type) is null loop
    raise warning 'Base model "%" runs on GPU type "%", which the GPU cluster does not offer; map it in private.cluster_gpus or disable the model',
      v_model.id, v_model.gpu_type;
  end loop;
end;
$$;

create or replace function private.cluster_job_config(p_job_id uuid)
returns jsonb
language sql
stable
set search_path = ''
as $$
  -- TrainingConfig of gpu-cluster/openapi.yaml from the resolved config: PEFT names for LoRA,
  -- warmup as steps, "no intermediate checkpoints/evaluations" (null) as "at the last step".
  -- A validation dataset is not here: its signed URL is added by the dispatch worker.
  -- gpu_type is never left out: without it the cluster would pick its default GPU.
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
    'gpu_type', coalesce(private.cluster_gpu_type(b.gpu_type), b.gpu_type),
    'gpu_count', b.gpu_count))
  from public.training_jobs j
  join public.base_models b on b.id = j.base_model_id
  cross join lateral (select j.config as c) as cfg
  where j.id = p_job_id
$$;
comment on function private.cluster_job_config(uuid) is
  'The GPU cluster TrainingConfig (gpu-cluster/openapi.yaml) of a job: its resolved config in PEFT names, warmup_steps from warmup_ratio and total_steps, quantization, a validation split, early stopping, lr_scheduler_num_cycles = epochs for cosine_with_restarts, the catalog throughput (times qlora_throughput_factor for 4-bit runs, as the estimate), the GPU count and always a gpu_type: the cluster''s name from private.cluster_gpus, else the catalog''s (which the cluster refuses rather than running the job on another GPU).';
