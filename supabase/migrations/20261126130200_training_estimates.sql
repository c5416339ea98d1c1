-- Estimates of a training run: billable tokens, GPU time, cost and finish.
--
-- Arithmetic (docs/jobs.md, "Quote arithmetic"), for a resolved configuration
-- on a dataset with statistics:
--   tokens per epoch = the dataset's total tokens for the model's tokenizer
--     when its longest example fits max_seq_length (exact), else the upper
--     bound min(total, examples x max_seq_length) (tokens_exact = false);
--     a validation split keeps train_examples / examples of it (rounded up);
--   billable tokens  = tokens per epoch x epochs;
--   training seconds = billable tokens / the catalog's throughput;
--   wall seconds     = training seconds + estimate_overhead_seconds;
--   GPU seconds      = wall seconds x gpu_count (rounded to 3 decimals);
--   cost             = GPU seconds / 3600 x price_per_gpu_hour (4 decimals).

create function private.training_estimate(
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
  select b.throughput_tokens_per_second, b.gpu_type, b.gpu_count, b.price_per_gpu_hour, b.currency
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
  'Estimate of a run of a resolved configuration on a dataset with statistics p_stats: tokens, steps, GPU time, cost and finish time (arithmetic in the migration header and docs/jobs.md); null without token statistics.';

create function private.training_job_quota_status(p_user_id uuid, p_exclude_job_id uuid default null)
returns jsonb
language sql
stable
set search_path = ''
as $$
  -- Active jobs now, and this calendar month's (UTC) spend in the cap's currency: for an active
  -- job the larger of its estimate and what it was charged, for a finished one what it was charged.
  with q as (
    select coalesce(u.max_active_jobs, private.job_setting('max_active_jobs_per_user')) as max_active_jobs,
           coalesce(u.monthly_spend_cap, private.job_setting('monthly_spend_cap')) as monthly_spend_cap,
           coalesce(u.currency, 'USD') as currency
      from (select 1) as one left join private.user_quotas u on u.user_id = p_user_id
  ), jobs as (
    select j.status in ('pending', 'queued', 'dispatching', 'running', 'cancelling') as active,
           j.currency, j.created_at, coalesce(j.estimated_cost, 0) as estimate,
           coalesce((select sum(c.amount) from public.cost_records c
                      where c.job_id = j.id and c.kind in ('usage', 'refund')), 0) as charged
      from public.training_jobs j
     where j.user_id = p_user_id and j.id is distinct from p_exclude_job_id
  )
  select jsonb_build_object(
    'active_jobs', (select count(*) from jobs where active),
    'max_active_jobs', q.max_active_jobs,
    'max_training_duration_hours', private.job_setting('max_training_duration_hours'),
    'monthly_spend_cap', q.monthly_spend_cap,
    'spent_this_month', (select coalesce(sum(case when active then greatest(estimate, charged) else charged end), 0)
                           from jobs
                          where jobs.currency = q.currency
                            and jobs.created_at >= date_trunc('month', now() at time zone 'UTC') at time zone 'UTC'),
    'currency', q.currency)
  from q
$$;
comment on function private.training_job_quota_status(uuid, uuid) is
  'A user''s limits and usage: active_jobs, max_active_jobs, max_training_duration_hours, monthly_spend_cap (null = none), spent_this_month (jobs created this UTC month: active ones at max(estimate, charged), finished ones at what was charged) and currency. p_exclude_job_id leaves one job out (the one being admitted).';

create function private.training_job_quota_errors(p_user_id uuid, p_exclude_job_id uuid, p_estimate jsonb)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  v_q jsonb := private.training_job_quota_status(p_user_id, p_exclude_job_id);
  v_errors jsonb := '[]'::jsonb;
  v_hours numeric := (p_estimate ->> 'duration_hours')::numeric;
  v_cost numeric := (p_estimate ->> 'cost')::numeric;
  v_cap numeric := (v_q ->> 'monthly_spend_cap')::numeric;
  v_spent numeric := (v_q ->> 'spent_this_month')::numeric;
  v_cur text := v_q ->> 'currency';
begin
  if (v_q ->> 'max_active_jobs') is not null and (v_q ->> 'active_jobs')::bigint >= (v_q ->> 'max_active_jobs')::bigint then
    v_errors := v_errors || jsonb_build_object('code', 'LT301',
      'message', format('You already have %s active training jobs; the limit is %s', v_q ->> 'active_jobs', v_q ->> 'max_active_jobs'),
      'hint', 'Wait for one of your jobs to finish, or cancel one, then try again.');
  end if;
  if v_hours > (v_q ->> 'max_training_duration_hours')::numeric then
    v_errors := v_errors || jsonb_build_object('code', 'LT302',
      'message', format('Estimated training time %s h is above the maximum %s h', round(v_hours, 1), v_q ->> 'max_training_duration_hours'),
      'hint', 'Lower epochs or max_seq_length, or train on a smaller dataset; public.quote_training_job() shows the estimate.');
  end if;
  if v_cap is not null and p_estimate is null then
    v_errors := v_errors || jsonb_build_object('code', 'LT308',
      'message', 'Cannot estimate the cost of this job: the dataset has no token statistics, and your account has a spend cap',
      'hint', 'Validate the dataset again so that it gets statistics, or ask an operator.');
  elsif v_cap is not null and p_estimate ->> 'currency' <> v_cur then
    v_errors := v_errors || jsonb_build_object('code', 'LT303',
      'message', format('This job is priced in %s but your spend cap is in %s', p_estimate ->> 'currency', v_cur),
      'hint', 'Ask an operator to set your spend cap in the currency of the model''s price.');
  elsif v_cap is not null and v_spent + v_cost > v_cap then
    v_errors := v_errors || jsonb_build_object('code', 'LT303',
      'message', format('Estimated cost %s %s would bring this month''s spend to %s %s, above your cap of %s %s',
        v_cost, v_cur, v_spent + v_cost, v_cur, v_cap, v_cur),
      'hint', 'Choose a cheaper configuration (fewer epochs, a shorter max_seq_length, a smaller model) or wait for next month.');
  end if;
  return v_errors;
end;
$$;
comment on function private.training_job_quota_errors(uuid, uuid, jsonb) is
  'Quota problems of a new job of p_user_id with estimate p_estimate: LT301 active jobs, LT302 estimated duration, LT303 spend cap, LT308 no estimate under a cap; each {code, message, hint}. [] when within quota.';

revoke all on function private.training_estimate(text, jsonb, jsonb, timestamptz) from public;
revoke all on function private.training_job_quota_status(uuid, uuid) from public;
revoke all on function private.training_job_quota_errors(uuid, uuid, jsonb) from public;
