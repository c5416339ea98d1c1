-- Realtime: clients watch their datasets, jobs, job events and
-- notifications through postgres_changes on the supabase_realtime
-- publication. Realtime checks each change against the subscriber's RLS
-- select policy, so a subscriber only receives its own rows.
--
-- Replica identity stays DEFAULT (the primary key) on purpose: Realtime
-- needs the primary key to identify UPDATE/DELETE rows, and on RLS-enabled
-- tables it strips old records down to the primary key anyway, so FULL
-- would only add WAL volume without giving clients the old values. Clients
-- read the new status from the new record; transitions are in job_events.
--
-- Guarded so the migration also runs where the publication is missing or
-- publishes all tables.

alter table public.datasets replica identity default;
alter table public.training_jobs replica identity default;
alter table public.job_events replica identity default;
alter table public.notifications replica identity default;

do $$
declare
  t text;
begin
  if not exists (select 1 from pg_catalog.pg_publication where pubname = 'supabase_realtime' and not puballtables) then
    raise notice 'supabase_realtime publication missing or FOR ALL TABLES: nothing to add';
    return;
  end if;
  foreach t in array array['datasets', 'training_jobs', 'job_events', 'notifications'] loop
    if not exists (
      select 1 from pg_catalog.pg_publication_tables
      where pubname = 'supabase_realtime' and schemaname = 'public' and tablename = t
    ) then
      execute format('alter publication supabase_realtime add table public.%I', t);
    end if;
  end loop;
end
$$;
