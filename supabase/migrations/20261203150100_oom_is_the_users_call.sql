-- An out-of-memory failure while training is the user's to decide (issue 15.3).
--
-- LT401 was kind system and retryable as the cluster reported it, so a
-- repeatable out-of-memory failure was retried twice with the same
-- configuration, on the user's bill, while its hint asked the user to change
-- batch_size. A run that ran out of memory at a step runs out again with the
-- same micro-batch, sequence length and rank; which one to give up is the
-- user's choice. So LT401 is now kind user and never retried automatically:
-- the job fails after the one run, and the error names the values and a
-- ready configuration (`suggested_config`: half the batch_size,
-- twice the gradient_accumulation_steps, so the same effective batch and
-- total_steps) to continue from the last checkpoint with
-- public.retry_training_job(). Only the LT401 branch changes; the rest is
-- the definition of 20261126162000_resume_from_checkpoint.sql.

create or replace function private.cluster_failure(p_error jsonb, p_config jsonb default '{}'::jsonb)
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
  -- Half the micro-batch, twice the accumulation: same effective batch, so the same total_steps.
  v_smaller jsonb := case when (v_cfg ->> 'batch_size')::integer > 1 then jsonb_build_object(
    'batch_size', (v_cfg ->> 'batch_size')::integer / 2,
    'gradient_accumulation_steps', coalesce((v_cfg ->> 'gradient_accumulation_steps')::integer, 1) * 2) end;
begin
  v_out := case
    -- Out of memory loading the model (the cluster's user error at step 0): no batch size helps.
    when v_code = 'oom' and (v_category = 'user' or (p_error ->> 'step' = '0' and not v_retryable)) then
      jsonb_build_object('code', 'LT408', 'kind', 'user', 'retryable', false,
      'message', format('The base model does not fit in the GPUs'' memory: %s', v_msg),
      'hint', 'Set "quantization": "4bit" in the configuration (QLoRA: about a quarter of the weight memory), or pick a smaller base model.')
  else case v_code
    -- Out of memory while training: the same configuration runs out again, so retrying it would
    -- bill the user for nothing. Only the user can choose what to give up (micro-batch, sequence
    -- length, rank), so it is theirs to decide, with the concrete values to try.
    when 'oom' then jsonb_build_object('code', 'LT401', 'kind', 'user', 'retryable', false,
      'message', format('The GPU ran out of memory at step %s (batch_size %s, gradient_accumulation_steps %s, max_seq_length %s, LoRA rank %s); the job was not retried with the same configuration',
        v_step, coalesce(v_cfg ->> 'batch_size', '?'), coalesce(v_cfg ->> 'gradient_accumulation_steps', '?'),
        coalesce(v_cfg ->> 'max_seq_length', '?'), coalesce(v_cfg #>> '{lora,rank}', '?')),
      'hint', case when v_smaller is not null
        then format('Continue with a smaller micro-batch and the same effective batch and steps: public.retry_training_job(job_id, checkpoint_id, config => ''%s''); or lower max_seq_length or the LoRA rank.', v_smaller)
        else 'batch_size is already 1: lower max_seq_length or the LoRA rank, or set "quantization": "4bit", then continue with public.retry_training_job(job_id, checkpoint_id, config => ...).' end,
      'suggested_config', v_smaller)
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
    when 'checkpoint_unavailable' then jsonb_build_object('code', 'LT414', 'kind', 'system', 'retryable', false,
      'message', format('The GPU cluster no longer has the checkpoint this run was to continue from: %s', v_msg),
      'hint', 'Clusters keep checkpoints for a limited time (at least 30 days). Retry the job from a more recent checkpoint, or without one to start at step 0: public.retry_training_job(job_id).')
    else jsonb_build_object('code', 'LT409', 'kind', v_category, 'retryable', v_retryable,
      'message', format('The GPU cluster reported "%s" at step %s: %s', v_code, v_step, v_msg),
      'hint', case when v_category = 'user' then 'Change the job or its data as the message says and start a new job.'
                   else 'Not caused by the job; retry it later.' end)
  end end;
  return v_out || jsonb_build_object('details', jsonb_build_object('cluster_error', p_error));
end;
$$;
comment on function private.cluster_failure(jsonb, jsonb) is
  'Translates a cluster JobError {code, message, retryable, category, step} into the job error {code (LT401-LT409, LT414), message, hint, kind (user|system), retryable, details.cluster_error}: an out-of-memory failure while training is the user''s to fix (LT401, never retried; suggested_config halves batch_size and doubles gradient_accumulation_steps), one loading the model asks for 4-bit quantization (LT408).';
