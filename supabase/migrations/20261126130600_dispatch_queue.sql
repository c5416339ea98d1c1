-- Dispatch plumbing: the pgmq queue, the message sent when a job becomes
-- queued, the worker's wake-up, and what the worker sends to the GPU cluster.
--
-- A job enters status queued on insert, on admission (pending -> queued) or
-- for an automatic retry (running -> queued); each time one message
-- {"job_id"} goes to pgmq queue training_dispatch and pg_net wakes the
-- dispatch-training-job Edge Function after commit (pg_cron is the safety
-- net: 20261126130800). Transient-failure retries (dispatching -> queued) send
-- their own delayed message from private.dispatch_record_retry().
--
-- The cluster's idempotency key is per job and run, never the client's key:
-- client keys are unique per user only, and two users' jobs must never meet
-- under one key at the cluster.

do $$
begin
  if not exists (select 1 from pgmq.list_queues() q where q.queue_name = 'training_dispatch') then
    perform pgmq.create(queue_name => 'training_dispatch');
  end if;
end;
$$;

create table private.training_job_dispatch (
  job_id uuid primary key references public.training_jobs (id) on delete cascade,
  cluster_idempotency_key text not null check (cluster_idempotency_key ~ '^[\x21-\x7e]{1,255}$'),
  request jsonb check (request is null or jsonb_typeof(request) = 'object'),
  dataset_url_expires_at timestamptz,
  submit_started_at timestamptz,
  lease_until timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table private.training_job_dispatch is
  'Dispatch state per job for the current run: the cluster idempotency key, the exact submit body (so a resubmission is byte-identical and the cluster replays instead of refusing), and the worker lease.';
comment on column private.training_job_dispatch.job_id is 'The job being dispatched.';
comment on column private.training_job_dispatch.cluster_idempotency_key is 'Idempotency-Key sent to the GPU cluster: private.cluster_idempotency_key(job, run).';
comment on column private.training_job_dispatch.request is 'The POST /v1/jobs body last saved before a submit, including the signed dataset URL (a bearer secret: never exposed).';
comment on column private.training_job_dispatch.dataset_url_expires_at is 'When the signed dataset URL in request expires.';
comment on column private.training_job_dispatch.submit_started_at is 'When a submit for this run was first about to be sent; from then on every attempt looks the job up by key first.';
comment on column private.training_job_dispatch.lease_until is 'Until when the worker that claimed the job owns it; a claim after that takes over.';
comment on column private.training_job_dispatch.created_at is 'When the run was first claimed.';
comment on column private.training_job_dispatch.updated_at is 'When the state last changed.';

create trigger _100_set_updated_at
  before update on private.training_job_dispatch
  for each row execute function private.tg_any__set_updated_at();

revoke all on table private.training_job_dispatch from public;

create function private.cluster_idempotency_key(p_job_id uuid, p_run integer)
returns text
language sql
immutable
set search_path = ''
as $$
  select format('lora-job-%s-run-%s', p_job_id, p_run)
$$;
comment on function private.cluster_idempotency_key(uuid, integer) is
  'The GPU cluster Idempotency-Key of a job''s run (run = attempt_count + 1 while it is being dispatched): globally unique, stable across dispatch attempts and worker crashes.';

create function private.cluster_gpu_type(p_gpu_type text)
returns text
language sql
immutable
set search_path = ''
as $$
  select case p_gpu_type
    when 'nvidia-a100-80gb' then 'A100-80GB'
    when 'nvidia-h100-80gb' then 'H100-80GB'
    when 'nvidia-l40s-48gb' then 'L40S-48GB'
  end
$$;
comment on function private.cluster_gpu_type(text) is
  'The GPU cluster''s name for a base_models.gpu_type, or null when the cluster has no such GPU (it then uses its default).';

create function private.cluster_job_config(p_job_id uuid)
returns jsonb
language sql
stable
set search_path = ''
as $$
  -- TrainingConfig of gpu-cluster/openapi.yaml from the resolved config: PEFT names for LoRA,
  -- warmup as steps, "no intermediate checkpoints/evaluations" (null) as "at the last step".
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
    'warmup_steps', ceil(coalesce(j.total_steps, 0) * (c ->> 'warmup_ratio')::numeric)::integer,
    'max_seq_length', (c ->> 'max_seq_length')::integer,
    'seed', (c ->> 'seed')::bigint,
    'checkpoint_every_steps', coalesce((c ->> 'checkpoint_every_steps')::integer, j.total_steps, 1000000),
    'eval_every_steps', coalesce((c ->> 'eval_every_steps')::integer, j.total_steps),
    'expected_tokens_per_second', b.throughput_tokens_per_second,
    'gpu_type', private.cluster_gpu_type(b.gpu_type),
    'gpu_count', b.gpu_count))
  from public.training_jobs j
  join public.base_models b on b.id = j.base_model_id
  cross join lateral (select j.config as c) as cfg
  where j.id = p_job_id
$$;
comment on function private.cluster_job_config(uuid) is
  'The GPU cluster TrainingConfig (gpu-cluster/openapi.yaml) of a job: its resolved config in PEFT names, warmup_steps from warmup_ratio and total_steps, the catalog throughput and GPUs.';

create function private.tg_training_jobs__enqueue_dispatch()
returns trigger
language plpgsql
-- Definer: a client's insert sends to pgmq and wakes the worker, which clients cannot do.
security definer
set search_path = ''
as $$
begin
  if new.status = 'queued' and (tg_op = 'INSERT' or old.status in ('pending', 'running')) then
    perform pgmq.send(queue_name => 'training_dispatch', msg => jsonb_build_object('job_id', new.id));
    perform private.invoke_worker('dispatch-training-job', jsonb_build_object('job_id', new.id));
  end if;
  return null;
end;
$$;
comment on function private.tg_training_jobs__enqueue_dispatch() is
  'Trigger: when a job becomes queued (inserted queued, admitted from pending, or retried from running) sends {"job_id"} to pgmq queue training_dispatch and wakes the dispatch-training-job worker after commit.';

create trigger _500_enqueue_dispatch
  after insert or update of status on public.training_jobs
  for each row execute function private.tg_training_jobs__enqueue_dispatch();
comment on trigger _500_enqueue_dispatch on public.training_jobs is
  'Enqueues dispatch when a job becomes queued (private.tg_training_jobs__enqueue_dispatch).';

revoke all on function private.cluster_idempotency_key(uuid, integer) from public;
revoke all on function private.cluster_gpu_type(text) from public;
revoke all on function private.cluster_job_config(uuid) from public;
revoke all on function private.tg_training_jobs__enqueue_dispatch() from public;
