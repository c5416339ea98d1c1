-- Trust nothing the cluster says about usage (issue 16.1) and fix the price at
-- admission (issue 15.4).
--
-- Before: a signed report for a job that had already succeeded still billed
-- (gpu_seconds 1e7 raised actual_cost to 2222 and wrote a usage row), a
-- report could claim any amount of GPU time, gpu_seconds 1e308 overflowed
-- numeric(14, 3) into a 500, and every report was priced at the catalog's
-- current price, so a catalog change re-priced running jobs.
--
-- Now, in private.apply_cluster_update() (the one path for polls and webhooks):
--   * a run's usage is frozen once the cluster reported it ended (succeeded,
--     failed, cancelled): later claims bill nothing (LT461);
--   * a run's usage is at most private.usage_bound(): wall time since the run
--     started (plus usage_grace_seconds) x the job's GPUs x
--     usage_wall_clock_factor; a claim above it is billed up to the bound (LT460);
--     both write one billing.usage_refused warning event per higher claim;
--   * gpu_seconds outside 0..private.max_reported_gpu_seconds() (1e9, the
--     contract's maximum) is refused before anything is written (LT462);
--   * costs use training_jobs.price_per_gpu_hour, fixed when the job is created.

alter table public.training_jobs
  add column price_per_gpu_hour numeric(10, 4) check (price_per_gpu_hour >= 0),
  add column billed_gpu_count integer check (billed_gpu_count > 0);
comment on column public.training_jobs.price_per_gpu_hour is
  'Price per GPU-hour of this job, in currency: the base model''s price when the job was created; every usage cost uses it, whatever the catalog says later (server-owned).';
comment on column public.training_jobs.billed_gpu_count is
  'GPUs the job runs on, fixed at creation from the base model; bounds the GPU time a run can be billed (server-owned).';

update public.training_jobs j
   set price_per_gpu_hour = b.price_per_gpu_hour, billed_gpu_count = b.gpu_count
  from public.base_models b
 where b.id = j.base_model_id and j.price_per_gpu_hour is null;

create function private.tg_training_jobs__fix_price()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  select b.price_per_gpu_hour, b.gpu_count into new.price_per_gpu_hour, new.billed_gpu_count
    from public.base_models b where b.id = new.base_model_id;
  return new;
end;
$$;
comment on function private.tg_training_jobs__fix_price() is
  'Trigger: fixes a new job''s price_per_gpu_hour and billed_gpu_count from its base model, whatever the insert said.';
revoke all on function private.tg_training_jobs__fix_price() from public;

create trigger _360_fix_price
  before insert on public.training_jobs
  for each row execute function private.tg_training_jobs__fix_price();
comment on trigger _360_fix_price on public.training_jobs is
  'Fixes the job''s price and GPU count at creation (private.tg_training_jobs__fix_price).';

insert into private.job_settings (name, value, description) values
  ('usage_wall_clock_factor', 1,
    'GPU-seconds a run may report per wall-clock second and GPU: 1 on a real cluster; the embedded stack sets its simulator''s time scale (an hour of training in six seconds).'),
  ('usage_grace_seconds', 60,
    'Wall-clock seconds added to a run''s age when bounding its usage: submit latency and clock skew between us and the cluster.')
on conflict (name) do nothing;

alter table private.job_monitor
  add column usage_refused_run text,
  add column usage_refused_gpu_seconds numeric not null default 0 check (usage_refused_gpu_seconds >= 0);
comment on column private.job_monitor.usage_refused_run is 'Cluster job whose usage claim was last refused (LT460/LT461).';
comment on column private.job_monitor.usage_refused_gpu_seconds is
  'Highest GPU-seconds claim of usage_refused_run that was refused or capped; a billing.usage_refused event is written only for a higher one.';

create function private.max_reported_gpu_seconds()
returns numeric
language sql
immutable
set search_path = ''
as $$
  select 1e9::numeric
$$;
comment on function private.max_reported_gpu_seconds() is
  'Largest gpu_seconds the GPU cluster contract allows in a report (1e9, about 31 GPU-years); anything above is a contract error (LT462).';
revoke all on function private.max_reported_gpu_seconds() from public;

create function private.usage_bound(p_job public.training_jobs, p_monitor private.job_monitor)
returns numeric
language sql
stable
set search_path = ''
as $$
  select round((greatest(extract(epoch from now() - p_monitor.run_started_at), 0) + private.job_setting('usage_grace_seconds'))
    * coalesce(p_job.billed_gpu_count, 1) * private.job_setting('usage_wall_clock_factor'), 3)
$$;
comment on function private.usage_bound(public.training_jobs, private.job_monitor) is
  'Most GPU-seconds the current run of a job can have used by now: (seconds since the run started + usage_grace_seconds) x billed_gpu_count x usage_wall_clock_factor.';
revoke all on function private.usage_bound(public.training_jobs, private.job_monitor) from public;

-- The update path with bounded usage and the price of the job (otherwise as in 20261126161000).
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
  v_claim numeric;
  v_bound numeric;
  v_refused numeric;
  v_refusal text;
begin
  -- A report the contract forbids is refused before anything is read or written (LT462).
  if coalesce(jsonb_typeof(p_update -> 'gpu_seconds'), 'null') <> 'null'
     and not (case when jsonb_typeof(p_update -> 'gpu_seconds') = 'number'
                   then (p_update ->> 'gpu_seconds')::numeric between 0 and private.max_reported_gpu_seconds()
                   else false end) then
    raise exception 'GPU cluster report about "%" has gpu_seconds % outside 0..%', p_external_job_id,
      left(p_update ->> 'gpu_seconds', 40), private.max_reported_gpu_seconds()
      using errcode = 'LT462', hint = 'gpu_seconds is the run''s GPU time so far (seconds x GPUs), a number within the contract''s bounds (gpu-cluster/openapi.yaml).';
  end if;
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

  -- 1. Usage of this run, whatever our status (a stopped job's last GPU seconds still count), but
  -- never after the cluster said the run ended, and never more than wall time x GPUs allows.
  v_price := coalesce(v_job.price_per_gpu_hour,
    (select b.price_per_gpu_hour from public.base_models b where b.id = v_job.base_model_id));
  v_claim := round(coalesce((p_update ->> 'gpu_seconds')::numeric, 0), 3);
  v_refused := case when v_mon.usage_refused_run is not distinct from p_external_job_id
                    then v_mon.usage_refused_gpu_seconds else 0 end;
  v_gpu := v_mon.reported_gpu_seconds;
  if v_claim > v_gpu then
    if v_mon.cluster_status in ('succeeded', 'failed', 'cancelled') then
      v_refusal := 'LT461';
    else
      v_bound := private.usage_bound(v_job, v_mon);
      v_gpu := greatest(v_gpu, least(v_claim, v_bound));
      if v_claim > v_bound then
        v_refusal := 'LT460';
      end if;
    end if;
  end if;
  if v_refusal is not null and v_claim > v_refused then
    perform private.monitor_event(v_job.id, 'warning', 'billing.usage_refused',
      case v_refusal
        when 'LT461' then format('The GPU cluster reported %s GPU-seconds for run "%s" after it had ended at %s: not billed',
          v_claim, p_external_job_id, v_mon.reported_gpu_seconds)
        else format('The GPU cluster reported %s GPU-seconds for run "%s", more than its %s GPUs can have used since it started (%s): billed %s',
          v_claim, p_external_job_id, coalesce(v_job.billed_gpu_count, 1), v_bound, v_gpu) end,
      jsonb_build_object('code', v_refusal, 'external_job_id', p_external_job_id, 'claimed_gpu_seconds', v_claim,
        'bound_gpu_seconds', v_bound, 'billed_gpu_seconds', v_gpu, 'run_started_at', v_mon.run_started_at,
        'cluster_status', v_mon.cluster_status));
    v_refused := v_claim;
  end if;
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
  if v_refused > 0 then
    update private.job_monitor set usage_refused_run = p_external_job_id, usage_refused_gpu_seconds = v_refused
     where job_id = v_job.id and (usage_refused_run, usage_refused_gpu_seconds) is distinct from (p_external_job_id, v_refused);
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
  'Applies one normalised cluster report {status, sequence?, progress, gpu_seconds, examples?, metrics, checkpoints, artifacts?, final_metrics?, error?, early_stopping?} about cluster job p_external_job_id: usage (at the job''s fixed price; frozen once the run ended, LT461; at most private.usage_bound(), LT460; gpu_seconds outside the contract raises LT462), metrics, checkpoints, progress, early stopping and status through the state machine, idempotently. p_expected_job_id: refuse (job_mismatch) if the cluster job belongs to another job. p_from_poll: also releases the poll lease and advances the poll cursor. Returns {outcome: applied|stale|inactive|unknown_job|job_mismatch, job_id, status_before, status, metrics_written, checkpoints_written, delivered, model_card_pending}.';
revoke all on function private.apply_cluster_update(text, jsonb, uuid, boolean) from public;

-- The model card shows the price of the job (otherwise as in 20261126161000).
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
      'estimated_amount', j.estimated_cost, 'price_per_gpu_hour', coalesce(j.price_per_gpu_hour, b.price_per_gpu_hour)),
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
