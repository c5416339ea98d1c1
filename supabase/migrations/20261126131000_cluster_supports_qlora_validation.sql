-- The GPU cluster contract now carries QLoRA, validation data, early stopping
-- and cosine with restarts (gpu-cluster/openapi.yaml, TrainingConfig), so jobs
-- asking for them are no longer refused at creation (LT305) but dispatched
-- with the matching cluster fields:
--
--   quantization "4bit"             -> quantization: "4bit" (QLoRA, NF4)
--   lr_scheduler cosine_with_restarts -> lr_scheduler_num_cycles = epochs
--                                      (one hard restart per epoch; the
--                                      cluster's default of 1 would be cosine)
--   validation.split_fraction       -> validation: {split_fraction}
--   validation_dataset_id           -> validation: {dataset_url}, a signed URL
--                                      the dispatch worker creates like the
--                                      dataset's (dispatch_next returns the path)
--   early_stopping_patience         -> early_stopping_patience
--
-- LT305 remains for what the cluster still cannot run: a validation split and
-- a validation dataset together (it takes one source), and early stopping
-- without validation data (nothing to stop on).

create or replace function private.training_config_cluster_gaps(p_config jsonb, p_validation_dataset_id uuid)
returns jsonb
language sql
immutable
set search_path = ''
as $$
  -- What the GPU cluster contract (gpu-cluster/openapi.yaml, TrainingConfig) cannot run.
  -- Refusing at creation is honest; forwarding anyway would silently train something else.
  select coalesce(jsonb_agg(e order by n), '[]'::jsonb) from (
    select 1 as n, jsonb_build_object('code', 'LT305', 'path', '["validation"]'::jsonb,
      'message', 'A validation split and a validation dataset cannot be used together; the GPU cluster evaluates on one',
      'hint', 'Remove "validation" from the configuration, or validation_dataset_id from the job.') as e
     where p_config ? 'validation' and p_validation_dataset_id is not null
    union all
    select 2, jsonb_build_object('code', 'LT305', 'path', '["early_stopping_patience"]'::jsonb,
      'message', 'Early stopping needs validation data to watch the eval loss',
      'hint', 'Add "validation": {"split_fraction": 0.1} to the configuration or a validation_dataset_id to the job, or remove early_stopping_patience.')
     where jsonb_typeof(p_config -> 'early_stopping_patience') = 'number'
       and not p_config ? 'validation' and p_validation_dataset_id is null
  ) as gaps
$$;
comment on function private.training_config_cluster_gaps(jsonb, uuid) is
  'LT305 for each combination of a resolved configuration and validation dataset the GPU cluster cannot run (a validation split and a validation dataset together; early stopping without validation data); [] when it can run it.';

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
    'expected_tokens_per_second', b.throughput_tokens_per_second,
    'gpu_type', private.cluster_gpu_type(b.gpu_type),
    'gpu_count', b.gpu_count))
  from public.training_jobs j
  join public.base_models b on b.id = j.base_model_id
  cross join lateral (select j.config as c) as cfg
  where j.id = p_job_id
$$;
comment on function private.cluster_job_config(uuid) is
  'The GPU cluster TrainingConfig (gpu-cluster/openapi.yaml) of a job: its resolved config in PEFT names, warmup_steps from warmup_ratio and total_steps, quantization, a validation split, early stopping, lr_scheduler_num_cycles = epochs for cosine_with_restarts, the catalog throughput and GPUs. A validation dataset''s signed URL is added by the dispatch worker.';

create or replace function private.dispatch_next(p_queue text default 'training_dispatch')
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_vt integer := private.job_setting('dispatch_visibility_timeout_seconds')::integer;
  v_msg record;
  v_job_id uuid;
  v_job public.training_jobs;
  v_state private.training_job_dispatch;
  v_key text;
  v_action text;
  v_path text;
  v_validation_path text;
begin
  select * into v_msg from pgmq.read(queue_name => p_queue, vt => v_vt, qty => 1);
  if not found then
    return null;
  end if;
  begin
    v_job_id := (v_msg.message ->> 'job_id')::uuid;
  exception when invalid_text_representation then
    v_job_id := null;
  end;
  if v_job_id is null then
    perform pgmq.archive(queue_name => p_queue, msg_id => v_msg.msg_id);
    return jsonb_build_object('action', 'discarded', 'msg_id', v_msg.msg_id, 'reason', 'The message has no job_id');
  end if;
  select * into v_job from public.training_jobs j where j.id = v_job_id for update;
  if not found then
    perform pgmq.delete(queue_name => p_queue, msg_id => v_msg.msg_id);
    return jsonb_build_object('action', 'gone', 'msg_id', v_msg.msg_id, 'job_id', v_job_id);
  end if;

  if v_msg.read_ct > private.job_setting('dispatch_max_deliveries') then
    perform pgmq.archive(queue_name => p_queue, msg_id => v_msg.msg_id);
    if v_job.status in ('queued', 'dispatching') then
      update public.training_jobs set status = 'failed', error = jsonb_build_object('code', 'LT314', 'kind', 'system',
        'message', format('Dispatch was attempted %s times without finishing; the job was stopped and an operator alerted', v_msg.read_ct - 1),
        'details', jsonb_build_object('msg_id', v_msg.msg_id, 'queue', p_queue))
       where id = v_job.id;
    end if;
    return jsonb_build_object('action', 'poisoned', 'msg_id', v_msg.msg_id, 'job_id', v_job.id, 'read_ct', v_msg.read_ct);
  end if;

  if v_job.status not in ('queued', 'dispatching') then
    -- Pending jobs get a message when admitted; later states need no dispatch (a redelivery).
    perform pgmq.delete(queue_name => p_queue, msg_id => v_msg.msg_id);
    return jsonb_build_object('action', case when v_job.status = 'pending' then 'not_admitted' else 'done' end,
      'msg_id', v_msg.msg_id, 'job_id', v_job.id, 'status', v_job.status);
  end if;

  v_key := private.cluster_idempotency_key(v_job.id, v_job.attempt_count + 1);
  select * into v_state from private.training_job_dispatch s where s.job_id = v_job.id for update;
  if v_job.status = 'dispatching' and v_state.lease_until > clock_timestamp() then
    -- Another worker holds this job through another message: look again when its lease ends.
    perform pgmq.set_vt(queue_name => p_queue, msg_id => v_msg.msg_id,
      vt => ceil(extract(epoch from v_state.lease_until - clock_timestamp()))::integer + 1);
    return jsonb_build_object('action', 'busy', 'msg_id', v_msg.msg_id, 'job_id', v_job.id);
  end if;

  if v_state.job_id is null or v_state.cluster_idempotency_key <> v_key then
    -- First claim of this run (a retry from running starts a new run, with a new key).
    insert into private.training_job_dispatch (job_id, cluster_idempotency_key)
    values (v_job.id, v_key)
    on conflict (job_id) do update
      set cluster_idempotency_key = excluded.cluster_idempotency_key, request = null,
          dataset_url_expires_at = null, submit_started_at = null
    returning * into v_state;
  end if;
  update private.training_job_dispatch set lease_until = clock_timestamp() + v_vt * interval '1 second'
   where job_id = v_job.id;
  if v_job.status = 'queued' then
    update public.training_jobs set status = 'dispatching' where id = v_job.id returning * into v_job;
  end if;
  -- A submit may have reached the cluster (a crash, or an unknown outcome): look before submitting.
  v_action := case when v_state.submit_started_at is not null then 'recover' else 'submit' end;
  select d.storage_path into v_path from public.datasets d where d.id = v_job.dataset_id;
  select d.storage_path into v_validation_path from public.datasets d where d.id = v_job.validation_dataset_id;
  return jsonb_build_object(
    'action', v_action,
    'msg_id', v_msg.msg_id,
    'read_ct', v_msg.read_ct,
    'job_id', v_job.id,
    'run', v_job.attempt_count + 1,
    'dispatch_attempt', v_job.dispatch_attempts,
    'max_attempts', private.job_setting('dispatch_max_attempts'),
    'cluster_idempotency_key', v_key,
    -- The saved body is reused while its signed URL stays valid long enough for the download.
    'request', case when v_state.dataset_url_expires_at > now()
                      + private.job_setting('dataset_url_min_remaining_seconds') * interval '1 second'
                    then v_state.request end,
    'dataset_bucket', 'lora-datasets',
    'dataset_path', v_path,
    'validation_dataset_path', v_validation_path,
    'dataset_url_ttl_seconds', private.job_setting('dataset_url_ttl_seconds'),
    'cluster_config', private.cluster_job_config(v_job.id));
end;
$$;
comment on function private.dispatch_next(text) is
  'Reads one dispatch message (visibility timeout dispatch_visibility_timeout_seconds) and returns what to do: submit or recover (job claimed: queued -> dispatching committed, with key, saved request, dataset and validation dataset paths and cluster config), busy, done, not_admitted, gone, discarded or poisoned (archived; LT314). Null when the queue is empty.';

revoke all on function private.training_config_cluster_gaps(jsonb, uuid) from public;
revoke all on function private.cluster_job_config(uuid) from public;
revoke all on function private.dispatch_next(text) from public;
