-- The base-model catalog: what a client can fine-tune, within which bounds,
-- on which hardware and at what price. Training-config validation, defaults
-- and cost estimates all read from here, so the catalog is the single place
-- an operator changes when a model, a GPU or a price changes.

-- Shape check for base_models.hyperparameters (see the column comment).
create or replace function private.base_model_hyperparameters_are_valid(hyperparameters jsonb, context_length integer)
returns boolean
language plpgsql
immutable
set search_path = ''
as $$
declare
  spec record;
  bound jsonb;
  lo numeric;
  hi numeric;
  dflt jsonb;
begin
  if jsonb_typeof(hyperparameters) is distinct from 'object' then
    return false;
  end if;
  for spec in
    select * from (values
      ('epochs', true, true),
      ('learning_rate', false, false),
      ('batch_size', true, false),
      ('gradient_accumulation_steps', true, false),
      ('warmup_ratio', false, false),
      ('max_seq_length', true, false),
      ('lora_alpha', true, true),
      ('lora_dropout', false, false)
    ) as s(name, is_integer, auto_allowed)
  loop
    bound := hyperparameters -> spec.name;
    if jsonb_typeof(bound) is distinct from 'object'
       or jsonb_typeof(bound -> 'min') is distinct from 'number'
       or jsonb_typeof(bound -> 'max') is distinct from 'number' then
      return false;
    end if;
    lo := (bound ->> 'min')::numeric;
    hi := (bound ->> 'max')::numeric;
    if lo > hi or lo < 0 or (spec.is_integer and (lo <> trunc(lo) or hi <> trunc(hi))) then
      return false;
    end if;
    dflt := bound -> 'default';
    if dflt = '"auto"'::jsonb then
      if not spec.auto_allowed then
        return false;
      end if;
    elsif jsonb_typeof(dflt) is distinct from 'number'
       or (dflt #>> '{}')::numeric not between lo and hi
       or (spec.is_integer and (dflt #>> '{}')::numeric <> trunc((dflt #>> '{}')::numeric)) then
      return false;
    end if;
  end loop;
  return (hyperparameters #>> '{max_seq_length,max}')::numeric <= context_length;
end;
$$;
comment on function private.base_model_hyperparameters_are_valid(jsonb, integer) is
  'True when a base_models.hyperparameters document has min/max/default for every tunable parameter, min <= default <= max, integers where required, "auto" only for epochs and lora_alpha, and max_seq_length.max <= context_length.';
revoke all on function private.base_model_hyperparameters_are_valid(jsonb, integer) from public;
-- The check constraint below calls it, and constraints run with the writer's privileges.
grant execute on function private.base_model_hyperparameters_are_valid(jsonb, integer) to service_role;

create table public.base_models (
  id text primary key check (id ~ '^[a-z0-9][a-z0-9.-]{1,63}$'),
  display_name text not null check (length(btrim(display_name)) between 1 and 100),
  family text not null check (family in ('llama', 'qwen', 'mistral', 'gemma')),
  hf_repo text not null check (hf_repo ~ '^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$'),
  parameter_count bigint not null check (parameter_count > 0),
  context_length integer not null check (context_length >= 512),
  tokenizer text not null check (tokenizer in ('llama3', 'qwen3', 'gemma3', 'mistral-v1')),
  lora_target_modules text[] not null check (cardinality(lora_target_modules) > 0),
  default_target_modules text[] not null
    check (cardinality(default_target_modules) > 0 and default_target_modules <@ lora_target_modules),
  max_lora_rank integer not null check (max_lora_rank between 1 and 1024),
  hyperparameters jsonb not null
    check (private.base_model_hyperparameters_are_valid(hyperparameters, context_length)),
  gpu_type text not null check (gpu_type ~ '^[a-z0-9][a-z0-9-]*$'),
  gpu_count integer not null default 1 check (gpu_count between 1 and 64),
  price_per_gpu_hour numeric(10, 4) not null check (price_per_gpu_hour >= 0),
  currency text not null default 'USD' check (currency ~ '^[A-Z]{3}$'),
  throughput_tokens_per_second numeric not null check (throughput_tokens_per_second > 0),
  enabled boolean not null default true,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

comment on table public.base_models is
  'Catalog of base models clients can fine-tune with LoRA, with per-model hyperparameter bounds, hardware and price. Signed-in users see enabled models; only the server writes.';
comment on column public.base_models.id is 'Stable slug clients reference, e.g. llama-3.1-8b-instruct.';
comment on column public.base_models.display_name is 'Human-readable name for pickers.';
comment on column public.base_models.family is 'Model family: llama, qwen, mistral or gemma.';
comment on column public.base_models.hf_repo is 'Hugging Face repository of the base weights (owner/name).';
comment on column public.base_models.parameter_count is 'Number of parameters of the base model.';
comment on column public.base_models.context_length is 'Maximum context length of the base model, in tokens.';
comment on column public.base_models.tokenizer is 'Tokenizer family key used to count tokens exactly (the validation engine''s families): llama3, qwen3, gemma3 or mistral-v1.';
comment on column public.base_models.lora_target_modules is 'Module names a LoRA adapter may target on this model.';
comment on column public.base_models.default_target_modules is 'Modules targeted when the client does not choose; a subset of lora_target_modules.';
comment on column public.base_models.max_lora_rank is 'Largest LoRA rank (r) allowed on this model.';
comment on column public.base_models.hyperparameters is
  'Per-hyperparameter bounds and defaults: {"<name>": {"min": n, "max": n, "default": n | "auto"}} for epochs, learning_rate, batch_size, gradient_accumulation_steps, warmup_ratio, max_seq_length (max <= context_length), lora_alpha and lora_dropout. "auto" (epochs, lora_alpha only) lets the server choose.';
comment on column public.base_models.gpu_type is 'GPU type a job on this model runs on, e.g. nvidia-a100-80gb.';
comment on column public.base_models.gpu_count is 'Number of GPUs a job on this model uses.';
comment on column public.base_models.price_per_gpu_hour is 'Price charged per GPU-hour, in currency.';
comment on column public.base_models.currency is 'ISO 4217 currency of price_per_gpu_hour.';
comment on column public.base_models.throughput_tokens_per_second is 'Expected training throughput across all gpu_count GPUs, in tokens per second; used for time and cost estimates.';
comment on column public.base_models.enabled is 'Whether new jobs may use this model. Disabled models are hidden from clients and never deleted (jobs reference them).';
comment on column public.base_models.created_at is 'When the model was added to the catalog.';
comment on column public.base_models.updated_at is 'When the catalog entry last changed.';

-- Backs the "enabled" filter of the select policy.
create index base_models_enabled_idx on public.base_models (id) where enabled;

create trigger _100_set_updated_at
  before update on public.base_models
  for each row execute function private.tg_any__set_updated_at();

alter table public.base_models enable row level security;

create policy "Signed-in users can browse enabled base models"
  on public.base_models for select to authenticated
  using (enabled);

revoke all on table public.base_models from anon, authenticated, service_role;
grant select on table public.base_models to authenticated;
grant select, insert, update, delete on table public.base_models to service_role;

insert into public.base_models (
  id, display_name, family, hf_repo, parameter_count, context_length, tokenizer,
  lora_target_modules, default_target_modules, max_lora_rank, hyperparameters,
  gpu_type, gpu_count, price_per_gpu_hour, throughput_tokens_per_second
)
select m.id, m.display_name, m.family, m.hf_repo, m.parameter_count, m.context_length, m.tokenizer,
  array['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
  array['q_proj', 'k_proj', 'v_proj', 'o_proj'],
  m.max_lora_rank,
  jsonb_build_object(
    'epochs', '{"min": 1, "max": 25, "default": "auto"}'::jsonb,
    'learning_rate', jsonb_build_object('min', 1e-6, 'max', 1e-3, 'default', m.learning_rate),
    'batch_size', jsonb_build_object('min', 1, 'max', m.max_batch_size, 'default', m.batch_size),
    'gradient_accumulation_steps', '{"min": 1, "max": 64, "default": 1}'::jsonb,
    'warmup_ratio', '{"min": 0, "max": 0.5, "default": 0.03}'::jsonb,
    'max_seq_length', jsonb_build_object('min', 128, 'max', m.max_seq_length, 'default', 4096),
    'lora_alpha', '{"min": 1, "max": 1024, "default": "auto"}'::jsonb,
    'lora_dropout', '{"min": 0, "max": 0.5, "default": 0.05}'::jsonb
  ),
  m.gpu_type, m.gpu_count, m.price_per_gpu_hour, m.throughput
from (values
  ('llama-3.2-3b-instruct', 'Llama 3.2 3B Instruct', 'llama', 'meta-llama/Llama-3.2-3B-Instruct',
    3212749824, 131072, 'llama3', 128, 2e-4, 64, 8, 16384, 'nvidia-l4', 1, 0.8000, 3500),
  ('llama-3.1-8b-instruct', 'Llama 3.1 8B Instruct', 'llama', 'meta-llama/Llama-3.1-8B-Instruct',
    8030261248, 131072, 'llama3', 128, 2e-4, 64, 8, 16384, 'nvidia-a100-80gb', 1, 1.8900, 4000),
  ('llama-3.3-70b-instruct', 'Llama 3.3 70B Instruct', 'llama', 'meta-llama/Llama-3.3-70B-Instruct',
    70553706496, 131072, 'llama3', 64, 1e-4, 16, 4, 8192, 'nvidia-h100-80gb', 4, 2.9900, 1800),
  ('qwen3-8b', 'Qwen3 8B', 'qwen', 'Qwen/Qwen3-8B',
    8190735360, 32768, 'qwen3', 128, 2e-4, 64, 8, 32768, 'nvidia-a100-80gb', 1, 1.8900, 4000),
  ('qwen3-14b', 'Qwen3 14B', 'qwen', 'Qwen/Qwen3-14B',
    14768307200, 32768, 'qwen3', 128, 2e-4, 32, 8, 16384, 'nvidia-a100-80gb', 1, 1.8900, 2200),
  ('mistral-7b-instruct-v0.2', 'Mistral 7B Instruct v0.2', 'mistral', 'mistralai/Mistral-7B-Instruct-v0.2',
    7241732096, 32768, 'mistral-v1', 128, 2e-4, 64, 8, 32768, 'nvidia-a100-80gb', 1, 1.8900, 4200),
  ('gemma-3-12b-it', 'Gemma 3 12B Instruct', 'gemma', 'google/gemma-3-12b-it',
    12187325040, 131072, 'gemma3', 128, 2e-4, 32, 8, 8192, 'nvidia-a100-80gb', 1, 1.8900, 2800)
) as m(id, display_name, family, hf_repo, parameter_count, context_length, tokenizer, max_lora_rank,
       learning_rate, max_batch_size, batch_size, max_seq_length, gpu_type, gpu_count, price_per_gpu_hour, throughput);
