-- What a failed run means for the job's owner.
--
-- The GPU cluster reports failures as {code, message, retryable, category,
-- step} (gpu-cluster/openapi.yaml, JobError). private.cluster_failure()
-- turns one into the job's error: a stable LT4xx code, a message that says
-- what happened in the owner's terms and what to change, the kind (user:
-- the job or its data must change; system: ours or the cluster's, retrying
-- may help) and whether an automatic retry is worth it. Failures we detect
-- ourselves (timeout, lost or stalled runs, missing artifacts) have their
-- own codes and go through private.end_run(). Codes: docs/ERRORS.md (LT4xx).

create function private.cluster_failure(p_error jsonb, p_config jsonb default '{}'::jsonb)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
declare
  v_code text := coalesce(nullif(p_error ->> 'code', ''), 'unknown');
  v_msg text := coalesce(p_error ->> 'message', '');
  v_step text := coalesce(p_error ->> 'step', 'an unknown step');
  v_category text := case when p_error ->> 'category' in ('user', 'system') then p_error ->> 'category' else 'system' end;
  v_retryable boolean := coalesce((p_error ->> 'retryable')::boolean, false);
  v_cfg jsonb := coalesce(p_config, '{}'::jsonb);
  v_out jsonb;
begin
  v_out := case v_code
    when 'oom' then jsonb_build_object('code', 'LT401', 'kind', 'system', 'retryable', v_retryable,
      'message', format('The GPU ran out of memory at step %s (batch_size %s, max_seq_length %s, LoRA rank %s)',
        v_step, coalesce(v_cfg ->> 'batch_size', '?'), coalesce(v_cfg ->> 'max_seq_length', '?'), coalesce(v_cfg #>> '{lora,rank}', '?')),
      'hint', 'Halve batch_size and double gradient_accumulation_steps (same effective batch), or lower max_seq_length or the LoRA rank, then retry.')
    when 'dataset_unreachable' then jsonb_build_object('code', 'LT402', 'kind', 'system', 'retryable', true,
      'message', format('The GPU cluster could not download the dataset: %s', v_msg),
      'hint', 'Usually an expired or revoked download link; a retry signs a new one. If the dataset was deleted, create the job again with another dataset.')
    when 'dataset_invalid' then jsonb_build_object('code', 'LT403', 'kind', 'user', 'retryable', false,
      'message', format('The GPU cluster could not read the dataset: %s', v_msg),
      'hint', 'Fix the file (one JSON object per line), upload it as a new dataset and start a new job.')
    when 'invalid_config' then jsonb_build_object('code', 'LT404', 'kind', 'user', 'retryable', false,
      'message', format('The GPU cluster refused the training configuration: %s', v_msg),
      'hint', 'Check the configuration with public.quote_training_job() and start a new job with the values it accepts.')
    when 'node_failure' then jsonb_build_object('code', 'LT405', 'kind', 'system', 'retryable', true,
      'message', format('The GPU node running the job failed at step %s: %s', v_step, v_msg),
      'hint', 'Not caused by the job. It is retried automatically; if retries are used up, retry it from its last checkpoint.')
    when 'internal_error' then jsonb_build_object('code', 'LT405', 'kind', 'system', 'retryable', v_retryable,
      'message', format('The GPU cluster failed internally at step %s: %s', v_step, v_msg),
      'hint', 'Not caused by the job. It is retried automatically when the cluster allows; otherwise retry it later.')
    when 'artifact_upload_failed' then jsonb_build_object('code', 'LT406', 'kind', 'system', 'retryable', true,
      'message', format('Training finished but the trained adapter could not be delivered: %s', v_msg),
      'hint', 'Not caused by the job. It is retried automatically; if it keeps failing, an operator should check Storage and the gpu-upload-urls function.')
    else jsonb_build_object('code', 'LT409', 'kind', v_category, 'retryable', v_retryable,
      'message', format('The GPU cluster reported "%s" at step %s: %s', v_code, v_step, v_msg),
      'hint', case when v_category = 'user' then 'Change the job or its data as the message says and start a new job.'
                   else 'Not caused by the job; retry it later.' end)
  end;
  return v_out || jsonb_build_object('details', jsonb_build_object('cluster_error', p_error));
end;
$$;
comment on function private.cluster_failure(jsonb, jsonb) is
  'Translates a cluster JobError {code, message, retryable, category, step} into the job error {code (LT401-LT409), message, hint, kind (user|system), retryable, details.cluster_error}, naming the configuration values an out-of-memory failure depends on.';
revoke all on function private.cluster_failure(jsonb, jsonb) from public;

-- Failures the monitor detects itself.
create function private.monitor_failure(p_code text, p_message text, p_details jsonb default '{}'::jsonb)
returns jsonb
language sql
immutable
set search_path = ''
as $$
  select jsonb_build_object(
    'code', p_code,
    'kind', 'system',
    'retryable', p_code in ('LT411', 'LT412', 'LT413'),
    'message', p_message,
    'hint', case p_code
      when 'LT407' then 'The GPU cluster stopped the job on its own (operator action or maintenance); retry it from its last checkpoint.'
      when 'LT410' then 'The job ran longer than MAX_TRAINING_DURATION_HOURS. Train on fewer examples or epochs, or continue it from its last checkpoint.'
      when 'LT411' then 'The GPU cluster lost track of the run. It is retried automatically; if retries are used up, retry it from its last checkpoint.'
      when 'LT412' then 'The run stopped making progress. It is retried automatically; if retries are used up, retry it from its last checkpoint.'
      when 'LT413' then 'The cluster reported success but the adapter never arrived in Storage. It is retried automatically; an operator should check gpu-upload-urls.'
      else 'Retry the job later.' end,
    'details', coalesce(p_details, '{}'::jsonb))
$$;
comment on function private.monitor_failure(text, text, jsonb) is
  'The job error {code, kind: system, retryable, message, hint, details} for a failure the monitor detects itself: LT407 cancelled by the cluster, LT410 timed out, LT411 lost, LT412 stalled, LT413 artifacts missing.';
revoke all on function private.monitor_failure(text, text, jsonb) from public;
