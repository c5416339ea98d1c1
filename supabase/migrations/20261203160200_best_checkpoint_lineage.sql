-- The best model can be had, and is_best agrees with the cluster across
-- retries (issue 15.7).
--
-- With early stopping the cluster now delivers the best checkpoint's adapter
-- (Hugging Face's load_best_model_at_end, which EarlyStoppingCallback needs;
-- gpu-cluster/README.md), and a resumed run carries the best so far from the
-- checkpoint's trainer state. Here: checkpoints of an earlier run after the
-- step a later run resumed from are no longer in the delivered adapter's
-- history (superseded, set when the later run is recorded, from the
-- resume_from of the request we sent it); is_best is the lowest eval loss
-- among the rest (ties: the earliest step), the same rule and the same
-- history as the cluster's best_checkpoint, so both name one checkpoint.

alter table public.checkpoints add column superseded boolean not null default false;
comment on column public.checkpoints.superseded is
  'A later run of the job resumed from an earlier step (or from step 0), so this checkpoint is not in the history of the adapter the job delivers; never is_best (server-owned).';

create function private.move_best_checkpoint(p_job_id uuid)
returns void
language plpgsql
set search_path = ''
as $$
declare
  v_best uuid;
begin
  select k.id into v_best from public.checkpoints k
   where k.job_id = p_job_id and k.eval_loss is not null and not k.superseded
   order by k.eval_loss, k.step limit 1;
  -- Two statements: the partial unique index allows one best per job at any moment.
  update public.checkpoints set is_best = false where job_id = p_job_id and is_best and id is distinct from v_best;
  update public.checkpoints set is_best = true where id = v_best and not is_best;
end;
$$;
comment on function private.move_best_checkpoint(uuid) is
  'Sets is_best on the checkpoint of the lowest eval loss (ties: the earliest step) among the job''s checkpoints that are not superseded, and clears it elsewhere.';
revoke all on function private.move_best_checkpoint(uuid) from public;

create function private.tg_training_jobs__supersede_checkpoints()
returns trigger
language plpgsql
set search_path = ''
as $$
declare
  v_request jsonb;
begin
  select d.request into v_request from private.training_job_dispatch d where d.job_id = new.id;
  -- Only a run we submitted says where it starts; without a saved request nothing is assumed.
  if v_request is null then
    return null;
  end if;
  update public.checkpoints k set superseded = true
   where k.job_id = new.id and not k.superseded
     and k.external_job_id is distinct from new.external_job_id
     and k.step > coalesce((v_request #>> '{resume_from,step}')::integer, 0);
  if found then
    perform private.move_best_checkpoint(new.id);
  end if;
  return null;
end;
$$;
comment on function private.tg_training_jobs__supersede_checkpoints() is
  'Trigger: when a new run of a job is recorded, its earlier runs'' checkpoints after the step the run resumes from (the resume_from of the submitted request; all of them for a run from step 0) are superseded, and is_best moves.';
revoke all on function private.tg_training_jobs__supersede_checkpoints() from public;

create trigger _610_supersede_checkpoints
  after update of external_job_id on public.training_jobs
  for each row when (new.external_job_id is not null and new.external_job_id is distinct from old.external_job_id)
  execute function private.tg_training_jobs__supersede_checkpoints();
comment on trigger _610_supersede_checkpoints on public.training_jobs is
  'Marks checkpoints outside the new run''s history (private.tg_training_jobs__supersede_checkpoints).';

-- Checkpoints saved again by a later run are in the history again; is_best skips superseded ones
-- (otherwise as in 20261126140200).
create or replace function private.ingest_checkpoints(p_job_id uuid, p_user_id uuid, p_checkpoints jsonb)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_new jsonb;
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
          metrics = k.metrics || excluded.metrics, superseded = false
      where (k.epoch, k.train_loss, k.eval_loss, k.metrics)
            is distinct from (excluded.epoch, excluded.train_loss, excluded.eval_loss, k.metrics || excluded.metrics)
         or k.superseded
    returning k.id, k.step, k.eval_loss, k.train_loss, k.metrics ->> 'name' as name, (xmax = 0) as inserted
  )
  select coalesce(jsonb_agg(jsonb_build_object('id', w.id, 'step', w.step, 'name', w.name, 'eval_loss', w.eval_loss,
           'train_loss', w.train_loss, 'inserted', w.inserted) order by w.step), '[]'::jsonb)
    into v_new from written w;
  if v_new = '[]'::jsonb then
    return v_new;
  end if;
  perform private.move_best_checkpoint(p_job_id);
  return v_new;
end;
$$;
comment on function private.ingest_checkpoints(uuid, uuid, jsonb) is
  'Upserts cluster Checkpoints [{name, step, epoch, train_loss, eval_loss, created_at}] into public.checkpoints (name and time in metrics) and moves is_best to the lowest eval loss of the adapter''s history (private.move_best_checkpoint); a step saved again by a later run is part of it again; returns the rows written [{id, step, name, eval_loss, train_loss, inserted}].';
revoke all on function private.ingest_checkpoints(uuid, uuid, jsonb) from public;
