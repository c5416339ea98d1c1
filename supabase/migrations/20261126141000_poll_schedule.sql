-- The poll schedule: pg_cron wakes poll workers (see 20261126140900).
--
-- Schedule: '10 seconds' where pg_cron supports second intervals (1.5 and
-- later, e.g. Supabase's 1.6), else '* * * * *' (1.4: cron syntax only), in
-- which case each worker keeps polling for poll_worker_budget_seconds and,
-- with poll_chain = 1, wakes its successor, so jobs are still polled every
-- poll_interval_seconds. Created only where pg_cron is installed.

create function private.poll_acquire_slot(p_slot integer, p_seconds integer)
returns boolean
language sql
set search_path = ''
as $$
  insert into private.poll_workers as w (slot, lease_until, started_at, runs)
  values (p_slot, now() + p_seconds * interval '1 second', now(), 1)
  on conflict (slot) do update
    set lease_until = excluded.lease_until, started_at = now(), runs = w.runs + 1
    where w.lease_until is null or w.lease_until < now()
  returning true
$$;
comment on function private.poll_acquire_slot(integer, integer) is
  'Takes poll worker slot p_slot for p_seconds (plus margin chosen by the caller); true if taken, null if another worker holds it.';
revoke all on function private.poll_acquire_slot(integer, integer) from public;

create function private.poll_has_work()
returns boolean
language sql
stable
set search_path = ''
as $$
  select exists (select 1 from private.job_monitor m where m.needs_poll)
      or exists (select 1 from private.cluster_stops s where s.done_at is null)
$$;
comment on function private.poll_has_work() is
  'Whether any job is monitored or any cluster stop is pending (partial-index lookups).';
revoke all on function private.poll_has_work() from public;

create function private.poll_next_due()
returns timestamptz
language sql
stable
set search_path = ''
as $$
  select least(
    (select min(m.next_poll_at) from private.job_monitor m where m.needs_poll),
    (select min(s.next_attempt_at) from private.cluster_stops s where s.done_at is null))
$$;
comment on function private.poll_next_due() is
  'When the next monitored job or cluster stop becomes due (null when there is none): how long a poll worker may sleep.';
revoke all on function private.poll_next_due() from public;

create function private.poll_release_slot(p_slot integer, p_chain boolean default false)
returns boolean
language plpgsql
set search_path = ''
as $$
begin
  update private.poll_workers set lease_until = null where slot = p_slot;
  if p_chain and private.job_setting('poll_chain') = 1 and private.poll_has_work() then
    -- pg_net sends after commit, so the successor finds the slot free.
    perform private.invoke_worker('poll-training-jobs', jsonb_build_object('slot', p_slot, 'source', 'chain'));
    return true;
  end if;
  return false;
end;
$$;
comment on function private.poll_release_slot(integer, boolean) is
  'Frees poll worker slot p_slot; with p_chain (the worker used up its budget) and poll_chain = 1, wakes a successor for the slot while work remains. True if a successor was woken.';
revoke all on function private.poll_release_slot(integer, boolean) from public;

create function private.poll_tick()
returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_work bigint;
  v_workers integer;
  v_woken integer := 0;
begin
  select (select count(*) from private.job_monitor m where m.needs_poll)
       + (select count(*) from private.cluster_stops s where s.done_at is null)
    into v_work;
  if v_work = 0 then
    return 0;
  end if;
  v_workers := least(private.job_setting('poll_max_workers'),
                     ceil(v_work / greatest(private.job_setting('poll_jobs_per_worker'), 1)))::integer;
  for v_slot in 1..greatest(v_workers, 1) loop
    if not exists (select 1 from private.poll_workers w where w.slot = v_slot and w.lease_until >= now()) then
      perform private.invoke_worker('poll-training-jobs', jsonb_build_object('slot', v_slot, 'source', 'cron'));
      v_woken := v_woken + 1;
    end if;
  end loop;
  return v_woken;
end;
$$;
comment on function private.poll_tick() is
  'What pg_cron runs: when jobs are monitored or cluster stops pending, wakes one poll-training-jobs worker per poll_jobs_per_worker rows of work (at most poll_max_workers) in every free slot; returns how many were woken.';
revoke all on function private.poll_tick() from public;

do $$
declare
  v_version text;
  v_schedule text;
begin
  select e.extversion into v_version from pg_catalog.pg_extension e where e.extname = 'pg_cron';
  if v_version is null then
    raise notice 'pg_cron is not installed: no poll schedule (call select private.poll_tick() to poll)';
    return;
  end if;
  -- Second intervals arrived in pg_cron 1.5.
  v_schedule := case when string_to_array(split_part(v_version, '-', 1), '.')::integer[] >= array[1, 5]
                     then '10 seconds' else '* * * * *' end;
  perform cron.schedule('poll-training-jobs', v_schedule, 'select private.poll_tick()');
end;
$$;
