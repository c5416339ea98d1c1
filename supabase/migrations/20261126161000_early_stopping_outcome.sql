-- Early stopping, visible to the job's owner.
--
-- A configuration with early_stopping_patience makes the GPU cluster report
-- Job.early_stopping {patience, stopped_early, best_step, best_eval_loss,
-- best_checkpoint} in every poll snapshot and in the job.succeeded event.
-- This stores the latest report on the job (public.training_jobs.early_stopping,
-- server-owned: clients have no column grant on it) through the one update
-- path, private.apply_cluster_update(), with the same rules as progress: a
-- stale webhook or an older snapshot never overwrites it, and a new run's
-- first report replaces the previous run's. When the cluster reports success
-- after stopping early, the job gets one training.stopped_early event; the
-- job.succeeded notification and the model card say so.
--
-- The best checkpoint: checkpoints.is_best is the lowest eval loss (ties: the
-- earliest step), the same rule the cluster uses for best_checkpoint, so for
-- a run's checkpoints they name the same row; the event links it by id.

alter table public.training_jobs
  add column early_stopping jsonb check (
    early_stopping is null or (
      jsonb_typeof(early_stopping) = 'object'
      and jsonb_typeof(early_stopping -> 'stopped_early') = 'boolean'
    )
  );
comment on column public.training_jobs.early_stopping is
  'Early stopping as the GPU cluster last reported it for the current run, when the configuration sets early_stopping_patience: {patience, stopped_early, best_step, best_eval_loss, best_checkpoint}; null until reported or without early stopping (server-owned).';

create function private.early_stopping_event(p_job_id uuid, p_early_stopping jsonb)
returns void
language plpgsql
set search_path = ''
as $$
declare
  v_job public.training_jobs;
  v_ckpt uuid;
begin
  if not coalesce((p_early_stopping ->> 'stopped_early')::boolean, false) then
    return;
  end if;
  select * into v_job from public.training_jobs j where j.id = p_job_id;
  select k.id into v_ckpt from public.checkpoints k
   where k.job_id = p_job_id and k.metrics ->> 'name' = p_early_stopping ->> 'best_checkpoint'
   order by k.step desc limit 1;
  perform private.monitor_event(p_job_id, 'info', 'training.stopped_early',
    format('Training stopped early at step %s of %s: eval loss did not improve for %s evaluations in a row. Best eval loss %s at step %s; best checkpoint %s',
      coalesce(v_job.current_step::text, '?'), coalesce(v_job.total_steps::text, '?'), coalesce(p_early_stopping ->> 'patience', '?'),
      coalesce(p_early_stopping ->> 'best_eval_loss', 'n/a'), coalesce(p_early_stopping ->> 'best_step', 'n/a'),
      coalesce(p_early_stopping ->> 'best_checkpoint', 'none saved')),
    p_early_stopping || jsonb_build_object('step', v_job.current_step, 'total_steps', v_job.total_steps,
      'best_checkpoint_id', v_ckpt));
end;
$$;
comment on function private.early_stopping_event(uuid, jsonb) is
  'Writes the training.stopped_early event (step, total steps, patience, best step, eval loss and checkpoint) when p_early_stopping says the run stopped early; called once per run, when the cluster reports success.';
revoke all on function private.early_stopping_event(uuid, jsonb) from public;

-- The update path, now carrying early_stopping (otherwise as in 20261126140400).
create or replace function private.apply_cluster_update(
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
  v_es jsonb;
  v_es_write boolean;
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
  -- Early stopping: only the contract's fields; written with the progress (same staleness and step rules),
  -- and by a run's first report even without it, so a retried run never shows the previous run's.
  if jsonb_typeof(p_update -> 'early_stopping') = 'object' then
    v_es := jsonb_build_object(
      'patience', (p_update #>> '{early_stopping,patience}')::integer,
      'stopped_early', coalesce((p_update #>> '{early_stopping,stopped_early}')::boolean, false),
      'best_step', (p_update #>> '{early_stopping,best_step}')::integer,
      'best_eval_loss', (p_update #>> '{early_stopping,best_eval_loss}')::double precision,
      'best_checkpoint', p_update #>> '{early_stopping,best_checkpoint}');
  end if;
  v_es_write := not v_stale and v_step is not null and v_step >= v_mon.last_step
    and (v_es is not null or v_mon.cluster_status is null);

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
           last_polled_at = case when p_from_poll then now() else j.last_polled_at end,
           early_stopping = case when v_es_write then v_es else j.early_stopping end
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
      perform private.early_stopping_event(v_job.id, case when v_es_write then v_es else v_job.early_stopping end);
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
  'Applies one normalised cluster report {status, sequence?, progress, gpu_seconds, examples?, metrics, checkpoints, artifacts?, final_metrics?, error?, early_stopping?} about cluster job p_external_job_id: usage, metrics, checkpoints, progress, early stopping and status through the state machine, idempotently. p_expected_job_id: refuse (job_mismatch) if the cluster job belongs to another job. p_from_poll: also releases the poll lease and advances the poll cursor. Returns {outcome: applied|stale|inactive|unknown_job|job_mismatch, job_id, status_before, status, metrics_written, checkpoints_written, delivered, model_card_pending}.';
revoke all on function private.apply_cluster_update(text, jsonb, uuid, boolean) from public;

-- The success notification mentions an early stop (otherwise as in 20261126140500).
create or replace function private.tg_training_jobs__notify_finished()
returns trigger
language plpgsql
-- Definer: a client's cancel RPC ends jobs too, and clients cannot insert notifications.
security definer
set search_path = ''
as $$
declare
  v_best jsonb;
begin
  if new.status not in ('succeeded', 'failed', 'cancelled', 'timed_out') or old.status = new.status then
    return null;
  end if;
  if new.status = 'succeeded' then
    v_best := private.best_checkpoint(new.id);
  end if;
  insert into public.notifications (user_id, kind, job_id, payload)
  values (new.user_id, 'job.' || new.status, new.id, jsonb_strip_nulls(jsonb_build_object(
    'job_id', new.id,
    'name', new.name,
    'status', new.status,
    'base_model_id', new.base_model_id,
    'message', case
      when new.status = 'succeeded' and (new.early_stopping ->> 'stopped_early')::boolean then
        format('Training stopped early at step %s of %s (eval loss stopped improving; best %s at step %s); the adapter is ready to download',
          coalesce(new.current_step, 0), coalesce(new.total_steps::text, '?'),
          coalesce(new.early_stopping ->> 'best_eval_loss', 'n/a'), coalesce(new.early_stopping ->> 'best_step', 'n/a'))
      when new.status = 'succeeded' then format('Training finished: %s steps; the adapter is ready to download', coalesce(new.current_step, 0))
      when new.status = 'cancelled' then 'Training was cancelled'
      else new.error ->> 'message' end,
    'error', new.error,
    'actual_cost', new.actual_cost,
    'currency', new.currency,
    'best_checkpoint', v_best,
    'early_stopping', case when new.status = 'succeeded' then new.early_stopping end,
    'finished_at', new.finished_at)));
  return null;
end;
$$;
comment on function private.tg_training_jobs__notify_finished() is
  'Trigger: one notification (kind job.succeeded, job.failed, job.cancelled or job.timed_out) when a job enters a terminal status, with its message, error, cost, best checkpoint and, for a success, the early-stopping outcome (the message says when training stopped early).';
revoke all on function private.tg_training_jobs__notify_finished() from public;

-- The model card data gains the early-stopping outcome (otherwise as in 20261126140800).
create or replace function private.model_card_data(p_job_id uuid)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select jsonb_build_object(
    'job', jsonb_build_object('id', j.id, 'user_id', j.user_id, 'name', j.name, 'suffix', j.suffix,
      'status', j.status, 'created_at', j.created_at, 'started_at', j.started_at, 'finished_at', j.finished_at,
      'runs', j.attempt_count, 'parent_job_id', j.parent_job_id, 'resume_from_checkpoint_id', j.resume_from_checkpoint_id,
      'total_steps', j.total_steps, 'current_step', j.current_step, 'current_epoch', j.current_epoch),
    'base_model', jsonb_build_object('id', b.id, 'display_name', b.display_name, 'hf_repo', b.hf_repo,
      'family', b.family, 'parameter_count', b.parameter_count, 'gpu_type', b.gpu_type, 'gpu_count', b.gpu_count),
    'config', j.config,
    'dataset', jsonb_build_object('id', d.id, 'name', d.name, 'file_name', d.file_name, 'format', d.format,
      'size_bytes', d.size_bytes, 'stats', d.stats),
    'final_metrics', (select to_jsonb(m) - 'id' - 'job_id' - 'user_id' - 'created_at'
                        from public.metrics_points m where m.job_id = j.id order by m.step desc limit 1),
    'min_train_loss', (select min(m.train_loss) from public.metrics_points m where m.job_id = j.id),
    'min_eval_loss', (select min(m.eval_loss) from public.metrics_points m where m.job_id = j.id),
    'best_checkpoint', private.best_checkpoint(j.id),
    'early_stopping', j.early_stopping,
    'checkpoints', (select count(*) from public.checkpoints k where k.job_id = j.id),
    'cost', jsonb_build_object('gpu_seconds', j.actual_gpu_seconds, 'amount', j.actual_cost, 'currency', j.currency,
      'estimated_amount', j.estimated_cost, 'price_per_gpu_hour', b.price_per_gpu_hour),
    'artifacts', (select coalesce(jsonb_agg(jsonb_build_object('kind', a.kind, 'path', a.storage_path,
                    'size_bytes', a.size_bytes, 'sha256', a.sha256) order by a.storage_path), '[]'::jsonb)
                    from public.model_artifacts a where a.job_id = j.id and a.kind <> 'model_card'))
  from public.training_jobs j
  join public.base_models b on b.id = j.base_model_id
  join public.datasets d on d.id = j.dataset_id
  where j.id = p_job_id
$$;
comment on function private.model_card_data(uuid) is
  'Everything the model card shows for a job: job, base model, resolved config, dataset and its statistics, final and best metrics, best checkpoint, early-stopping outcome, cost and the delivered artifacts.';
revoke all on function private.model_card_data(uuid) from public;
