-- The one idempotent path from what the GPU cluster says to our rows.
--
-- The poller (a GET /v1/jobs/{id} snapshot) and the webhook receiver (an
-- event) both normalise what they got into one update document
-- (functions/_shared/job-updates.ts) and call private.apply_cluster_update().
-- Under the job's row lock it:
--   1. accrues usage (cost_records in chunks, actual_gpu_seconds/actual_cost);
--   2. upserts metric points and checkpoints (deduplicated per step);
--   3. unless the update is stale (a webhook sequence not newer than the last
--      one applied), moves progress forward (never back within a run) and
--      applies the cluster status through the state machine: failures are
--      translated and retried or failed, success waits for the artifacts,
--      a cancel confirms the owner's cancel;
--   4. records the run's state in private.job_monitor.
-- Applying the same update twice, or an older one after a newer one,
-- changes nothing. Updates about a cluster job we do not know, or about a
-- job other than the one the caller expects, change nothing at all.

create function private.apply_cluster_update(
  p_external_job_id text, p_update jsonb, p_expected_job_id uuid default null, p_from_poll boolean default false)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_job public.training_jobs;
  v_mon private.job_monitor;
  v_price numeric;
  v_seq integer := (p_update ->> 'sequence')::integer;
  v_cluster text := p_update ->> 'status';
  v_progress jsonb := coalesce(p_update -> 'progress', '{}'::jsonb);
  v_step integer := (v_progress ->> 'step')::integer;
  v_eta numeric := (v_progress ->> 'eta_seconds')::numeric;
  v_terminal boolean := v_cluster in ('succeeded', 'failed', 'cancelled');
  v_active boolean;
  v_stale boolean;
  v_gpu numeric;
  v_billed numeric;
  v_actual numeric;
  v_metrics jsonb;
  v_ckpts jsonb;
  v_first_metrics boolean := false;
  v_advanced boolean;
  v_failure jsonb;
  v_status_after text;
  v_new_succeeded boolean := false;
  v_delivered boolean := false;
  v_interval interval := private.job_setting('poll_interval_seconds') * interval '1 second';
begin
  select * into v_job from public.training_jobs j where j.external_job_id = p_external_job_id for update;
  if not found then
    return jsonb_build_object('outcome', 'unknown_job');
  end if;
  if p_expected_job_id is not null and p_expected_job_id <> v_job.id then
    return jsonb_build_object('outcome', 'job_mismatch');
  end if;
  select * into v_mon from private.job_monitor m where m.job_id = v_job.id for update;
  if not found or v_mon.external_job_id is distinct from p_external_job_id then
    return jsonb_build_object('outcome', 'inactive', 'job_id', v_job.id, 'status', v_job.status);
  end if;
  v_active := v_mon.active and v_job.status in ('running', 'cancelling');
  v_stale := v_seq is not null and v_seq <= v_mon.last_sequence;

  -- 1. Usage of this run, whatever our status (a stopped job's last GPU seconds still count).
  select b.price_per_gpu_hour into v_price from public.base_models b where b.id = v_job.base_model_id;
  v_gpu := round(greatest(v_mon.reported_gpu_seconds, coalesce((p_update ->> 'gpu_seconds')::numeric, 0)), 3);
  v_billed := v_mon.billed_gpu_seconds;
  if v_gpu > v_billed and (v_terminal or not v_active
      or v_gpu - v_billed >= private.job_setting('usage_accrual_min_gpu_seconds')) then
    insert into public.cost_records (job_id, user_id, kind, gpu_seconds, amount, currency, description, idempotency_key)
    values (v_job.id, v_job.user_id, 'usage', v_gpu - v_billed,
      round(v_gpu * v_price / 3600, 4) - round(v_billed * v_price / 3600, 4), v_job.currency,
      format('GPU time of cluster job "%s": %s to %s GPU-seconds at %s %s per GPU-hour',
        p_external_job_id, v_billed, v_gpu, v_price, v_job.currency),
      format('usage:%s:%s', p_external_job_id, v_gpu))
    on conflict (job_id, idempotency_key) do nothing;
    v_billed := v_gpu;
  end if;
  -- The job's running totals; written below with the progress, in one row update.
  v_actual := coalesce(v_job.actual_gpu_seconds, 0) + greatest(v_gpu - v_mon.reported_gpu_seconds, 0);

  if not v_active then
    if v_gpu > v_mon.reported_gpu_seconds then
      update public.training_jobs set actual_gpu_seconds = v_actual, actual_cost = round(v_actual * v_price / 3600, 4)
       where id = v_job.id;
    end if;
    update private.job_monitor
       set reported_gpu_seconds = v_gpu, billed_gpu_seconds = v_billed, last_report_at = now(),
           lease_until = case when p_from_poll then null else lease_until end,
           next_poll_at = case when p_from_poll then now() + v_interval else next_poll_at end
     where job_id = v_job.id;
    return jsonb_build_object('outcome', 'inactive', 'job_id', v_job.id, 'status', v_job.status);
  end if;

  -- 2. Metrics and checkpoints: data, never stale (a late event still carries points we lack).
  v_metrics := private.ingest_metrics(v_job.id, v_job.user_id,
    coalesce(p_update -> 'metrics', '[]'::jsonb)
      || case when jsonb_typeof(p_update -> 'final_metrics') = 'object' then jsonb_build_array(p_update -> 'final_metrics') else '[]'::jsonb end);
  if (v_metrics ->> 'written')::integer > 0 and v_mon.first_metrics_at is null then
    v_first_metrics := true;
    insert into public.notifications (user_id, kind, job_id, payload)
    values (v_job.user_id, 'job.first_metrics', v_job.id, jsonb_build_object('job_id', v_job.id, 'name', v_job.name,
      'step', (v_metrics ->> 'max_step')::integer));
    perform private.monitor_event(v_job.id, 'info', 'training.first_metrics',
      format('First metrics received (up to step %s)', v_metrics ->> 'max_step'), v_metrics);
  end if;
  v_ckpts := private.ingest_checkpoints(v_job.id, v_job.user_id, p_update -> 'checkpoints');
  insert into public.job_events (job_id, level, type, message, data)
  select v_job.id, 'info', 'training.checkpoint_saved',
         format('Checkpoint %s saved at step %s (eval loss %s)', coalesce(c ->> 'name', c ->> 'step'), c ->> 'step', coalesce(c ->> 'eval_loss', 'n/a')),
         jsonb_build_object('checkpoint_id', c ->> 'id', 'step', (c ->> 'step')::integer, 'eval_loss', c -> 'eval_loss',
           'train_loss', c -> 'train_loss', 'name', c ->> 'name')
    from jsonb_array_elements(v_ckpts) c where (c ->> 'inserted')::boolean;

  -- 3. Progress and status, from updates newer than what we applied.
  v_advanced := not v_stale and v_step is not null and v_step > v_mon.last_step;
  if not v_stale and v_step is not null and v_step >= v_mon.last_step then
    update public.training_jobs j
       set current_step = v_step,
           total_steps = coalesce((v_progress ->> 'total_steps')::integer, j.total_steps),
           current_epoch = coalesce(round((v_progress ->> 'epoch')::numeric, 3), j.current_epoch),
           progress_pct = least(100, round(100 * coalesce((v_progress ->> 'fraction')::numeric, 0), 2)),
           estimated_finish_at = case when v_eta is not null and v_cluster = 'running'
                                      then now() + v_eta * interval '1 second' else j.estimated_finish_at end,
           actual_gpu_seconds = v_actual,
           actual_cost = round(v_actual * v_price / 3600, 4),
           last_polled_at = case when p_from_poll then now() else j.last_polled_at end
     where j.id = v_job.id;
  elsif p_from_poll or v_gpu > v_mon.reported_gpu_seconds then
    update public.training_jobs j
       set actual_gpu_seconds = v_actual, actual_cost = round(v_actual * v_price / 3600, 4),
           last_polled_at = case when p_from_poll then now() else j.last_polled_at end
     where j.id = v_job.id;
  end if;

  if not v_stale then
    if v_cluster = 'running' and v_mon.cluster_status is distinct from 'running' then
      perform private.monitor_event(v_job.id, 'info', 'training.started',
        format('Training started on the GPU cluster: %s examples, %s steps',
          coalesce(p_update ->> 'examples', '?'), coalesce(v_progress ->> 'total_steps', '?')),
        jsonb_build_object('external_job_id', p_external_job_id, 'examples', p_update -> 'examples',
          'total_steps', v_progress -> 'total_steps', 'run', v_job.attempt_count));
    elsif v_cluster = 'running' and p_from_poll and not v_advanced
          and v_mon.last_progress_at < now() - private.job_setting('monitor_stall_after_seconds') * interval '1 second' then
      v_status_after := private.end_run(v_job.id, private.monitor_failure('LT412',
        format('The run made no progress for %s minutes (still at step %s)',
          round(extract(epoch from now() - v_mon.last_progress_at) / 60), v_mon.last_step),
        jsonb_build_object('step', v_mon.last_step, 'last_progress_at', v_mon.last_progress_at)), 'stalled');
    elsif v_cluster = 'succeeded' and v_mon.cluster_succeeded_at is null then
      v_new_succeeded := true;
      perform private.monitor_event(v_job.id, 'info', 'training.completed',
        format('Training finished after %s steps; %s artifacts uploaded',
          coalesce(v_step::text, '?'), jsonb_array_length(coalesce(p_update -> 'artifacts', '[]'::jsonb))),
        jsonb_build_object('final_metrics', p_update -> 'final_metrics', 'artifacts', p_update -> 'artifacts',
          'gpu_seconds', v_gpu));
    elsif v_cluster = 'succeeded' and p_from_poll
          and v_mon.cluster_succeeded_at < now() - private.job_setting('delivery_timeout_seconds') * interval '1 second' then
      v_status_after := private.end_run(v_job.id, private.monitor_failure('LT413',
        'The GPU cluster reported success but not every artifact it listed arrived in Storage',
        jsonb_build_object('expected', v_mon.expected_artifacts)));
    elsif v_cluster = 'failed' then
      v_failure := private.cluster_failure(p_update -> 'error', v_job.config);
      perform private.monitor_event(v_job.id, 'error', 'training.failed', v_failure ->> 'message',
        jsonb_build_object('error', v_failure, 'external_job_id', p_external_job_id, 'run', v_job.attempt_count));
      v_status_after := private.fail_or_retry(v_job.id, v_failure);
    elsif v_cluster = 'cancelled' and v_job.status = 'cancelling' then
      update public.training_jobs set status = 'cancelled' where id = v_job.id;
      update private.cluster_stops set done_at = coalesce(done_at, now()), outcome = coalesce(outcome, 'cancelled'), lease_until = null
       where external_job_id = p_external_job_id;
      v_status_after := 'cancelled';
    elsif v_cluster = 'cancelled' then
      v_status_after := private.fail_or_retry(v_job.id, private.monitor_failure('LT407',
        format('The GPU cluster cancelled the run at step %s without a request from us', coalesce(v_step, 0)),
        jsonb_build_object('external_job_id', p_external_job_id)));
    end if;
  end if;

  -- 4. The run's state.
  update private.job_monitor
     set last_sequence = greatest(last_sequence, coalesce(v_seq, 0)),
         last_step = case when v_advanced then v_step else last_step end,
         last_progress_at = case when v_advanced then now() else last_progress_at end,
         last_metrics_step = case when p_from_poll then greatest(last_metrics_step, coalesce((v_metrics ->> 'max_step')::integer, 0))
                                  else last_metrics_step end,
         cluster_status = case when v_stale then cluster_status else v_cluster end,
         reported_gpu_seconds = v_gpu,
         billed_gpu_seconds = v_billed,
         last_report_at = now(),
         poll_failures = 0,
         not_found_since = null,
         first_metrics_at = case when v_first_metrics then now() else first_metrics_at end,
         expected_artifacts = case when v_new_succeeded then coalesce(p_update -> 'artifacts', '[]'::jsonb) else expected_artifacts end,
         cluster_succeeded_at = case when v_new_succeeded then now() else cluster_succeeded_at end,
         lease_until = case when p_from_poll then null else lease_until end,
         next_poll_at = case when p_from_poll then now() + v_interval else next_poll_at end
   where job_id = v_job.id;
  if v_new_succeeded then
    v_delivered := private.complete_delivery(v_job.id);
  end if;

  select j.status::text into v_status_after from public.training_jobs j where j.id = v_job.id;
  return jsonb_build_object(
    'outcome', case when v_stale then 'stale' else 'applied' end,
    'job_id', v_job.id,
    'status_before', v_job.status,
    'status', v_status_after,
    'metrics_written', (v_metrics ->> 'written')::integer,
    'checkpoints_written', jsonb_array_length(v_ckpts),
    'delivered', v_delivered,
    'model_card_pending', v_delivered);
end;
$$;
comment on function private.apply_cluster_update(text, jsonb, uuid, boolean) is
  'Applies one normalised cluster report {status, sequence?, progress, gpu_seconds, examples?, metrics, checkpoints, artifacts?, final_metrics?, error?} about cluster job p_external_job_id: usage, metrics, checkpoints, progress and status through the state machine, idempotently. p_expected_job_id: refuse (job_mismatch) if the cluster job belongs to another job. p_from_poll: also releases the poll lease and advances the poll cursor. Returns {outcome: applied|stale|inactive|unknown_job|job_mismatch, job_id, status_before, status, metrics_written, checkpoints_written, delivered, model_card_pending}.';
revoke all on function private.apply_cluster_update(text, jsonb, uuid, boolean) from public;
