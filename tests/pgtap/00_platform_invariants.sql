-- Structural invariants every migration must keep (a new table or function
-- that breaks one fails `npm test`): RLS on every exposed table, no function
-- in our schemas without a pinned search_path, nothing granted to anon
-- beyond what is listed here.
set local search_path = extensions, public;

select plan(4);

select is(
  (select array_agg(c.relname::text order by c.relname)
     from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'public' and c.relkind in ('r', 'p') and not c.relrowsecurity),
  null,
  'every table in public has row level security enabled'
);

select is(
  (select array_agg(format('%s.%s', n.nspname, p.proname) order by 1)
     from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where n.nspname in ('public', 'private')
      and not exists (select 1 from unnest(coalesce(p.proconfig, '{}')) cfg where cfg like 'search_path=%')),
  null,
  'every function in public and private pins search_path'
);

select is(
  (select array_agg(format('%s.%s', n.nspname, p.proname) order by 1)
     from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where n.nspname = 'private' and has_function_privilege('anon', p.oid, 'execute')),
  null,
  'anon cannot execute anything in private'
);

select ok(
  not has_schema_privilege('anon', 'private', 'usage') and not has_schema_privilege('authenticated', 'private', 'usage'),
  'the private schema is not usable by API roles'
);

select * from finish();
