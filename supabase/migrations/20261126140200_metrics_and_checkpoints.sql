-- Writing what a run reports: metric points and checkpoints.
--
-- Both arrive again and again (every poll returns the points after the last
-- stored step, webhooks are at least once and out of order, a retry re-runs
-- steps), so both are set-based upserts keyed by (job_id, step): one
-- statement per batch, no row rewritten with the values it already has, and
-- a re-run's values replace the failed run's for the same step. The best
-- checkpoint is the one with the lowest eval loss (ties: the earliest step;
-- without any eval loss: none), recomputed only when checkpoints change.

create function private.ingest_metrics(p_job_id uuid, p_user_id uuid, p_points jsonb)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_written integer;
  v_max integer;
begin
  if jsonb_typeof(p_points) is distinct from 'array' or jsonb_array_length(p_points) = 0 then
    return jsonb_build_object('written', 0, 'max_step', null);
  end if;
  with incoming as (
    -- The same step twice in one batch (an event and a poll overlap): the last one wins.
    select distinct on (p.step) p.step, p.epoch, p.train_loss, p.eval_loss, p.learning_rate, p.tokens_per_second, n
      from rows from (jsonb_to_recordset(p_points) as (step integer, epoch numeric, train_loss double precision,
             eval_loss double precision, learning_rate double precision, tokens_per_second double precision))
             with ordinality as p(step, epoch, train_loss, eval_loss, learning_rate, tokens_per_second, n)
     where p.step is not null and p.step >= 0
     order by p.step, n desc
  ), written as (
    insert into public.metrics_points as m (job_id, user_id, step, epoch, train_loss, eval_loss, learning_rate, tokens_per_second)
    select p_job_id, p_user_id, i.step, round(i.epoch, 3), i.train_loss, i.eval_loss, i.learning_rate, i.tokens_per_second
      from incoming i
    on conflict (job_id, step) do update
      set epoch = excluded.epoch, train_loss = excluded.train_loss, eval_loss = excluded.eval_loss,
          learning_rate = excluded.learning_rate, tokens_per_second = excluded.tokens_per_second,
          recorded_at = now()
      where (m.epoch, m.train_loss, m.eval_loss, m.learning_rate, m.tokens_per_second)
            is distinct from (excluded.epoch, excluded.train_loss, excluded.eval_loss, excluded.learning_rate, excluded.tokens_per_second)
    returning m.step
  )
  select count(*) into v_written from written;
  select max((p ->> 'step')::integer) into v_max from jsonb_array_elements(p_points) p;
  return jsonb_build_object('written', v_written, 'max_step', v_max);
end;
$$;
comment on function private.ingest_metrics(uuid, uuid, jsonb) is
  'Upserts a batch of cluster MetricPoints [{step, epoch, train_loss, eval_loss, learning_rate, tokens_per_second}] into public.metrics_points in one statement, deduplicated per step (unchanged rows are not rewritten); returns {written, max_step}.';
revoke all on function private.ingest_metrics(uuid, uuid, jsonb) from public;

create function private.ingest_checkpoints(p_job_id uuid, p_user_id uuid, p_checkpoints jsonb)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_new jsonb;
  v_best uuid;
begin
  if jsonb_typeof(p_checkpoints) is distinct from 'array' or jsonb_array_length(p_checkpoints) = 0 then
    return '[]'::jsonb;
  end if;
  with incoming as (
    select distinct on (c.step) c.step, c.name, c.epoch, c.train_loss, c.eval_loss, c.created_at
      from rows from (jsonb_to_recordset(p_checkpoints) as (name text, step integer, epoch numeric,
             train_loss double precision, eval_loss double precision, created_at text))
             with ordinality as c(name, step, epoch, train_loss, eval_loss, created_at, n)
     where c.step is not null and c.step >= 0
     order by c.step, n desc
  ), written as (
    insert into public.checkpoints as k (job_id, user_id, step, epoch, train_loss, eval_loss, metrics)
    select p_job_id, p_user_id, i.step, round(i.epoch, 3), i.train_loss, i.eval_loss,
           jsonb_strip_nulls(jsonb_build_object('name', i.name, 'saved_at', i.created_at))
      from incoming i
    on conflict (job_id, step) do update
      set epoch = excluded.epoch, train_loss = excluded.train_loss, eval_loss = excluded.eval_loss,
          metrics = k.metrics || excluded.metrics
      where (k.epoch, k.train_loss, k.eval_loss, k.metrics)
            is distinct from (excluded.epoch, excluded.train_loss, excluded.eval_loss, k.metrics || excluded.metrics)
    returning k.id, k.step, k.eval_loss, k.train_loss, k.metrics ->> 'name' as name, (xmax = 0) as inserted
  )
  select coalesce(jsonb_agg(jsonb_build_object('id', w.id, 'step', w.step, 'name', w.name, 'eval_loss', w.eval_loss,
           'train_loss', w.train_loss, 'inserted', w.inserted) order by w.step), '[]'::jsonb)
    into v_new from written w;
  if v_new = '[]'::jsonb then
    return v_new;
  end if;
  select k.id into v_best from public.checkpoints k
   where k.job_id = p_job_id and k.eval_loss is not null
   order by k.eval_loss, k.step limit 1;
  -- Two statements: the partial unique index allows one best per job at any moment.
  update public.checkpoints set is_best = false where job_id = p_job_id and is_best and id is distinct from v_best;
  update public.checkpoints set is_best = true where id = v_best and not is_best;
  return v_new;
end;
$$;
comment on function private.ingest_checkpoints(uuid, uuid, jsonb) is
  'Upserts cluster Checkpoints [{name, step, epoch, train_loss, eval_loss, created_at}] into public.checkpoints (name and time in metrics) and moves is_best to the lowest eval loss; returns the rows written [{id, step, name, eval_loss, train_loss, inserted}].';
revoke all on function private.ingest_checkpoints(uuid, uuid, jsonb) from public;

create function private.best_checkpoint(p_job_id uuid)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select jsonb_build_object('id', k.id, 'step', k.step, 'epoch', k.epoch, 'train_loss', k.train_loss,
           'eval_loss', k.eval_loss, 'name', k.metrics ->> 'name', 'storage_path', k.storage_path)
    from public.checkpoints k where k.job_id = p_job_id and k.is_best
$$;
comment on function private.best_checkpoint(uuid) is
  'The job''s best checkpoint (lowest eval loss) as JSON, or null.';
revoke all on function private.best_checkpoint(uuid) from public;

create function private.latest_checkpoint(p_job_id uuid)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select jsonb_build_object('id', k.id, 'step', k.step, 'epoch', k.epoch, 'train_loss', k.train_loss,
           'eval_loss', k.eval_loss, 'name', k.metrics ->> 'name', 'storage_path', k.storage_path)
    from public.checkpoints k where k.job_id = p_job_id
   order by k.step desc limit 1
$$;
comment on function private.latest_checkpoint(uuid) is
  'The job''s checkpoint with the highest step as JSON (what an automatic retry resumes from), or null.';
revoke all on function private.latest_checkpoint(uuid) from public;
