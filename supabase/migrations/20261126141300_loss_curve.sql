-- The loss curve for charts: public.job_loss_curve(job_id, max_points).
--
-- A long run has up to hundreds of thousands of metric points; a chart needs
-- a few hundred, but a plain stride sample would hide exactly what a user
-- looks for (a spike, the minimum). This is M4 downsampling: the steps are
-- cut into equal-width buckets, and of each bucket the first and last point
-- and the points with the lowest and highest train loss and the lowest and
-- highest eval loss are kept, so every extreme survives and the result has
-- at most max_points rows (six per bucket). It is one pass over the job's
-- points: min/max over arrays [value, step, other columns] (arrays compare
-- element by element) give each extreme's step, hash-aggregated by bucket
-- with no sort of the series; the kept rows are then read through the
-- (job_id, step) index. Security
-- invoker: the caller's RLS decides, so another user's job is simply empty.

create function public.job_loss_curve(job_id uuid, max_points integer default 500)
returns table (
  step integer,
  epoch numeric,
  train_loss double precision,
  eval_loss double precision,
  learning_rate double precision,
  tokens_per_second double precision
)
language plpgsql
stable
security invoker
set search_path = ''
-- The right plan depends on the job's size; a cached generic plan was measured 4x slower.
set plan_cache_mode = 'force_custom_plan'
as $$
declare
  v_max integer := least(coalesce(max_points, 500), 10000);
  v_lo integer;
  v_hi integer;
  v_total bigint;
  v_steps integer[];
begin
  if v_max < 6 then
    raise exception 'max_points must be at least 6, got %', max_points using errcode = '22023',
      hint = 'Ask for as many points as the chart is wide in pixels, e.g. 500.';
  end if;
  -- Both ends through the (job_id, step) index.
  select m.step into v_lo from public.metrics_points m where m.job_id = job_loss_curve.job_id order by m.step limit 1;
  select m.step into v_hi from public.metrics_points m where m.job_id = job_loss_curve.job_id order by m.step desc limit 1;
  if v_lo is null then
    return;
  end if;
  if v_hi - v_lo < v_max then
    return query
      select m.step, m.epoch, m.train_loss, m.eval_loss, m.learning_rate, m.tokens_per_second
        from public.metrics_points m where m.job_id = job_loss_curve.job_id order by m.step;
    return;
  end if;
  -- One pass: per bucket, the steps of its extremes (min/max over [value, step] arrays: ties keep the
  -- earliest step), then the kept rows through the (job_id, step) index.
  select sum(b.n), array_agg(distinct s.step)
    into v_total, v_steps
    from (
      select count(*) as n, min(m.step) as first_step, max(m.step) as last_step,
             min(array[m.train_loss, m.step]) filter (where m.train_loss is not null) as t_min,
             max(array[m.train_loss, -m.step]) filter (where m.train_loss is not null) as t_max,
             min(array[m.eval_loss, m.step]) filter (where m.eval_loss is not null) as e_min,
             max(array[m.eval_loss, -m.step]) filter (where m.eval_loss is not null) as e_max
        from public.metrics_points m
       where m.job_id = job_loss_curve.job_id
       group by width_bucket(m.step, v_lo, v_hi + 1, greatest(1, v_max / 6))
    ) b
    cross join lateral (values (b.first_step), (b.last_step), (b.t_min[2]::integer), (-b.t_max[2]::integer),
                               (b.e_min[2]::integer), (-b.e_max[2]::integer)) as s(step)
   where s.step is not null;
  if v_total <= v_max then
    return query
      select m.step, m.epoch, m.train_loss, m.eval_loss, m.learning_rate, m.tokens_per_second
        from public.metrics_points m where m.job_id = job_loss_curve.job_id order by m.step;
    return;
  end if;
  return query
    select m.step, m.epoch, m.train_loss, m.eval_loss, m.learning_rate, m.tokens_per_second
      from public.metrics_points m
     where m.job_id = job_loss_curve.job_id and m.step = any(v_steps)
     order by m.step;
end;
$$;
comment on function public.job_loss_curve(uuid, integer) is
  'A job''s metrics series for charts, at most max_points rows (default 500, 6..10000): all points when there are few, else M4 downsampling over equal step buckets keeping each bucket''s first and last point and its train-loss and eval-loss minimum and maximum. Runs under the caller''s RLS.';
revoke all on function public.job_loss_curve(uuid, integer) from public, anon;
grant execute on function public.job_loss_curve(uuid, integer) to authenticated, service_role;
