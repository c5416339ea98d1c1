-- Close the internal schemas (net, pgmq, cron, vault, private, ops) to the
-- client roles: PUBLIC, anon and authenticated lose schema usage and every
-- privilege on their tables, views, sequences and functions, now and (by
-- default privileges) for objects created later.
--
-- Why: pg_net grants all on net.http_request_queue and net._http_response to
-- PUBLIC (so does Supabase's grant_pg_net_access hook, to anon and
-- authenticated); as those roles a client could read worker wake-up headers
-- and responses naming other users' rows, and net.http_get is an SSRF
-- primitive. pg_cron leaves cron.schedule executable by PUBLIC. The Data API
-- does not expose these schemas, but one careless grant or security definer
-- function would. Who keeps access: postgres (migrations, workers through
-- SUPABASE_DB_URL, DBAs) and service_role where it had it; on Supabase also
-- supabase_functions_admin (Database Webhooks call net.http_post).
--
-- On hosted Supabase the extension objects belong to supabase_admin and
-- postgres cannot revoke what supabase_admin granted: each statement that
-- fails for lack of privilege is skipped, and the migration ends with a
-- warning naming what is still open (also listed by
-- ops.client_access_to_internals), so nothing half-applies silently.

create function private.close_schema_to_clients(p_schema text)
returns integer
language plpgsql
set search_path = ''
as $$
declare
  v_stmt text;
  v_skipped integer := 0;
  v_keep text := (
    select string_agg(quote_ident(r.rolname), ', ')
      from pg_catalog.pg_roles r
     where r.rolname in ('postgres', 'service_role', 'supabase_functions_admin')
       and (r.rolname <> 'supabase_functions_admin' or p_schema = 'net'));
begin
  if not exists (select 1 from pg_catalog.pg_namespace n where n.nspname = p_schema) then
    return 0;
  end if;
  foreach v_stmt in array array[
    -- Keep the roles that need them before PUBLIC goes (cron: postgres only, as on Supabase).
    format('grant usage on schema %I to postgres', p_schema),
    case when p_schema in ('net', 'pgmq', 'private', 'vault') then
      format('grant usage on schema %I to %s', p_schema, v_keep) end,
    case when p_schema in ('net', 'pgmq') then
      format('grant execute on all functions in schema %I to %s', p_schema, v_keep) end,
    case when p_schema = 'cron' then 'grant execute on all functions in schema cron to postgres' end,
    case when p_schema in ('net', 'cron') then
      format('grant select, insert, update, delete on all tables in schema %I to postgres', p_schema) end,
    format('revoke all on schema %I from public, anon, authenticated', p_schema),
    format('revoke all on all tables in schema %I from public, anon, authenticated', p_schema),
    format('revoke all on all sequences in schema %I from public, anon, authenticated', p_schema),
    format('revoke all on all functions in schema %I from public, anon, authenticated', p_schema),
    format('alter default privileges in schema %I revoke all on tables from public, anon, authenticated', p_schema),
    format('alter default privileges in schema %I revoke all on sequences from public, anon, authenticated', p_schema),
    format('alter default privileges in schema %I revoke all on functions from public, anon, authenticated', p_schema),
    -- Objects an extension (re)creates as supabase_admin: needs membership in that role (not on hosted).
    format('alter default privileges for role supabase_admin in schema %I revoke all on tables from public, anon, authenticated', p_schema),
    format('alter default privileges for role supabase_admin in schema %I revoke all on sequences from public, anon, authenticated', p_schema),
    format('alter default privileges for role supabase_admin in schema %I revoke all on functions from public, anon, authenticated', p_schema)
  ] loop
    continue when v_stmt is null;
    begin
      execute v_stmt;
    exception when insufficient_privilege or undefined_object then
      v_skipped := v_skipped + 1;
    end;
  end loop;
  return v_skipped;
end;
$$;
comment on function private.close_schema_to_clients(text) is
  'Revokes PUBLIC/anon/authenticated from schema p_schema and everything in it (and by default privileges from what is created later), keeping postgres and service_role; returns how many statements were skipped for lack of privilege (hosted Supabase: objects owned by supabase_admin). Re-run after (re)creating an extension.';
revoke all on function private.close_schema_to_clients(text) from public, anon, authenticated;

create view ops.client_access_to_internals
with (security_invoker = true)
as
with roles as (
  select r.rolname from pg_catalog.pg_roles r where r.rolname in ('anon', 'authenticated')
), schemas as (
  select n.oid, n.nspname from pg_catalog.pg_namespace n
   where n.nspname in ('net', 'pgmq', 'cron', 'vault', 'private', 'ops')
)
select s.nspname::text as schema_name, 'schema'::text as kind, s.nspname::text as object_name, r.rolname::text as role_name
  from schemas s cross join roles r
 where pg_catalog.has_schema_privilege(r.rolname, s.oid, 'usage')
union all
select s.nspname, 'relation', c.relname, r.rolname
  from schemas s join pg_catalog.pg_class c on c.relnamespace = s.oid and c.relkind in ('r', 'p', 'v', 'm', 'f')
 cross join roles r
 where pg_catalog.has_table_privilege(r.rolname, c.oid, 'select, insert, update, delete, truncate, references, trigger')
union all
select s.nspname, 'sequence', c.relname, r.rolname
  from schemas s join pg_catalog.pg_class c on c.relnamespace = s.oid and c.relkind = 'S'
 cross join roles r
 where pg_catalog.has_sequence_privilege(r.rolname, c.oid, 'usage, select, update')
union all
select s.nspname, 'function', p.oid::regprocedure::text, r.rolname
  from schemas s join pg_catalog.pg_proc p on p.pronamespace = s.oid
 cross join roles r
 where pg_catalog.has_function_privilege(r.rolname, p.oid, 'execute');
comment on view ops.client_access_to_internals is
  'Every privilege anon or authenticated still holds in net, pgmq, cron, vault, private or ops (schema usage, any table, sequence or function privilege). Should be empty; on hosted Supabase rows under net mean Supabase''s own pg_net grants, which only supabase_admin can revoke.';
revoke all on ops.client_access_to_internals from public, anon, authenticated, service_role;

do $$
declare
  v_schema text;
  v_skipped integer := 0;
  v_open text;
begin
  foreach v_schema in array array['net', 'pgmq', 'cron', 'vault', 'private', 'ops'] loop
    v_skipped := v_skipped + private.close_schema_to_clients(v_schema);
  end loop;
  select string_agg(format('%s %s.%s to %s', a.kind, a.schema_name, a.object_name, a.role_name), '; ')
    into v_open from ops.client_access_to_internals a;
  if v_open is not null then
    raise warning 'Client roles can still reach internal objects (% statements skipped for lack of privilege): %', v_skipped, v_open
      using hint = 'Ask Supabase support to revoke them, or run select private.close_schema_to_clients(''net'') as supabase_admin; see docs/OPERATIONS.md.';
  end if;
end;
$$;
