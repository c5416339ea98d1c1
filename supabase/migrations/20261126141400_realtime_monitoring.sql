-- Realtime for live monitoring: besides the job row (progress, status, cost)
-- and its events and notifications (20261126100700), a dashboard watches new
-- metric points (a live loss curve), checkpoints (best flag) and delivered
-- artifacts. Same reasoning as before: replica identity DEFAULT (the primary
-- key), and Realtime applies each subscriber's select policy, so owners see
-- only their rows. Subscribe with a filter, e.g. job_id=eq.<id>.

alter table public.metrics_points replica identity default;
alter table public.checkpoints replica identity default;
alter table public.model_artifacts replica identity default;

do $$
declare
  t text;
begin
  if not exists (select 1 from pg_catalog.pg_publication where pubname = 'supabase_realtime' and not puballtables) then
    raise notice 'supabase_realtime publication missing or FOR ALL TABLES: nothing to add';
    return;
  end if;
  foreach t in array array['metrics_points', 'checkpoints', 'model_artifacts'] loop
    if not exists (
      select 1 from pg_catalog.pg_publication_tables
      where pubname = 'supabase_realtime' and schemaname = 'public' and tablename = t
    ) then
      execute format('alter publication supabase_realtime add table public.%I', t);
    end if;
  end loop;
end
$$;
