-- Foundation for the LoRA domain schema.
--
-- Supabase grants the API roles (anon, authenticated, service_role) every
-- privilege on objects that postgres creates in `public`, and PostgreSQL lets
-- PUBLIC execute every new function. This project's rule is the opposite:
-- nothing is reachable until a migration grants it explicitly, per table and
-- per column. Internals (trigger functions, state-machine data, pipeline
-- state) live in `private`, which the Data API does not expose.

-- New objects in public: no implicit grants to the client roles.
alter default privileges in schema public revoke all on tables from anon, authenticated;
alter default privileges in schema public revoke all on sequences from anon, authenticated;
alter default privileges in schema public revoke all on functions from anon, authenticated;
alter default privileges in schema public revoke execute on functions from public;
-- Per-schema defaults cannot take away the global "PUBLIC may execute" default,
-- so revoke that one globally for objects created by the migration role.
alter default privileges revoke execute on functions from public;

-- Anything already in public before this migration loses its implicit grants too.
revoke all on all tables in schema public from anon, authenticated;
revoke all on all sequences in schema public from anon, authenticated;
revoke execute on all functions in schema public from public, anon, authenticated;

create schema if not exists private;
comment on schema private is
  'Internals of the LoRA pipeline: trigger functions, state-machine transitions, worker state. Not exposed by the Data API; service_role may read what workers need.';
revoke all on schema private from public;
grant usage on schema private to service_role;

alter default privileges in schema private revoke execute on functions from public;
alter default privileges in schema private revoke all on tables from public;

-- Shared trigger function: every mutable table keeps updated_at current.
create or replace function private.tg_any__set_updated_at()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.updated_at := now();
  return new;
end;
$$;
comment on function private.tg_any__set_updated_at() is
  'Trigger: sets updated_at to now() on every update (attached as _100_set_updated_at).';
revoke all on function private.tg_any__set_updated_at() from public;
