-- STAND-IN for pg_net (not available from any reachable registry). Used only
-- when the server lacks pg_net (stack/platform.ts); never applied to a real
-- Supabase project.
--
-- Matches the SQL surface of pg_net 0.19.x (unchanged through 0.20.x), the
-- line Supabase ships: https://github.com/supabase/pg_net sql/pg_net.sql plus
-- its upgrade scripts. Same schema, tables, types, signatures, defaults and
-- grants. Requests are sent by stack/net-worker.ts instead of a background
-- worker. As with the real worker, a queued request only becomes visible once
-- the enqueuing transaction commits: net.wake() uses NOTIFY, which Postgres
-- delivers at commit, and the worker also polls as a safety net.
--
-- Re-applied on every stack start, so everything here is idempotent.
-- Differences from the real extension: docs/standins/pg_net.md.

-- Like `create extension`, grant to PUBLIC only when the schema is created,
-- not on every re-apply: a migration may have narrowed the grants since
-- (20261203130000_close_internal_schemas.sql).
select set_config('standin.pg_net_created', (not exists (select 1 from pg_namespace where nspname = 'net'))::text, false);
create schema if not exists net;
comment on schema net is
  'STAND-IN for pg_net 0.19 (embedded stack): requests are sent by stack/net-worker.ts after commit.';

do $$
begin
  if not exists (select 1 from pg_type where typname = 'http_method' and typnamespace = 'net'::regnamespace) then
    create domain net.http_method as text
      check (value ilike 'get' or value ilike 'post' or value ilike 'delete');
  end if;
  if not exists (select 1 from pg_type where typname = 'request_status' and typnamespace = 'net'::regnamespace) then
    create type net.request_status as enum ('PENDING', 'SUCCESS', 'ERROR');
  end if;
  if not exists (select 1 from pg_type where typname = 'http_response' and typnamespace = 'net'::regnamespace) then
    create type net.http_response as (status_code integer, headers jsonb, body text);
  end if;
  if not exists (select 1 from pg_type where typname = 'http_response_result' and typnamespace = 'net'::regnamespace) then
    create type net.http_response_result as (status net.request_status, message text, response net.http_response);
  end if;
end
$$;

-- Pending requests; the worker deletes each row when it picks it up.
create unlogged table if not exists net.http_request_queue (
  id bigserial,
  method net.http_method not null,
  url text not null,
  headers jsonb,
  body bytea,
  timeout_milliseconds int not null
);
comment on table net.http_request_queue is 'pg_net stand-in: requests waiting for the worker (rows appear to it only after commit).';

-- One row per finished request, same id as the request; expired after pg_net.ttl (default 6 hours).
create unlogged table if not exists net._http_response (
  id bigint,
  status_code integer,
  content_type text,
  headers jsonb,
  content text,
  timed_out bool,
  error_msg text,
  created timestamptz not null default now()
);
create index if not exists _http_response_created_idx on net._http_response (created);
comment on table net._http_response is 'pg_net stand-in: responses (or error_msg / timed_out) by request id; deleted after pg_net.ttl.';

-- pg_net's C helper (curl_escape): percent-encode every byte except RFC 3986 unreserved characters.
create or replace function net._urlencode_string(string varchar)
returns text
language sql
immutable
set search_path = ''
as $$
  select case when string is null then null else coalesce((
    select string_agg(
      case when b between 48 and 57 or b between 65 and 90 or b between 97 and 122 or b in (45, 46, 95, 126)
        then chr(b) else '%' || upper(lpad(to_hex(b), 2, '0')) end, '' order by i)
    from (select i, get_byte(convert_to(string, 'UTF8'), i) as b
          from generate_series(0, octet_length(convert_to(string, 'UTF8')) - 1) as i) as bytes
  ), '') end
$$;
comment on function net._urlencode_string(varchar) is 'pg_net stand-in: percent-encodes a string as curl_escape does.';

-- pg_net's C helper (curl_url with CURLU_APPENDQUERY): append encoded params to the URL's query.
create or replace function net._encode_url_with_params_array(url text, params_array text[])
returns text
language plpgsql
immutable
set search_path = ''
as $$
declare
  base text;
  fragment text;
  query text := array_to_string(params_array, '&');
begin
  if url !~ '^[A-Za-z][A-Za-z0-9+.-]*://[^/?#\s]' then
    raise exception 'URL using bad/illegal format or missing URL' using errcode = 'XX000';
  end if;
  -- curl normalises an empty path to "/"
  base := regexp_replace(split_part(url, '#', 1), '^([A-Za-z][A-Za-z0-9+.-]*://[^/?#]*)(\?|$)', '\1/\2');
  fragment := substring(url from '#.*$');
  if coalesce(query, '') <> '' then
    base := base || case when position('?' in base) > 0 then '&' else '?' end || query;
  end if;
  return base || coalesce(fragment, '');
end
$$;
comment on function net._encode_url_with_params_array(text, text[]) is 'pg_net stand-in: appends url-encoded params to the query string.';

-- Signals the worker; NOTIFY is delivered only when the transaction commits.
create or replace function net.wake()
returns void
language sql
set search_path = ''
as $$ select pg_notify('net_http_request', '') $$;
comment on function net.wake() is 'pg_net stand-in: wakes the worker when the current transaction commits.';

create or replace function net.check_worker_is_up()
returns void
language plpgsql
set search_path = ''
as $$
begin
  if not exists (select 1 from pg_catalog.pg_stat_activity where application_name = 'pg_net stand-in worker') then
    raise exception using
      message = 'the pg_net background worker is not up',
      detail = 'the pg_net stand-in worker (stack/net-worker.ts) is not connected',
      hint = 'start the embedded stack (npm run stack)';
  end if;
end
$$;
comment on function net.check_worker_is_up() is 'raises an exception if the pg_net background worker is not up, otherwise it doesn''t return anything';

create or replace function net.worker_restart()
returns bool
language plpgsql
set search_path = ''
as $$
begin
  perform pg_notify('net_http_request', '');
  return true;
end
$$;
comment on function net.worker_restart() is 'pg_net stand-in: wakes the worker (it has nothing to restart) and returns true.';

create or replace function net.wait_until_running()
returns void
language plpgsql
set search_path = ''
as $$
begin
  for i in 1..200 loop
    if exists (select 1 from pg_catalog.pg_stat_activity where application_name = 'pg_net stand-in worker') then
      return;
    end if;
    perform pg_sleep(0.05);
  end loop;
  perform net.check_worker_is_up();
end
$$;
comment on function net.wait_until_running() is 'waits until the worker is running';

-- Blocks until a response for request_id exists.
create or replace function net._await_response(request_id bigint)
returns bool
language plpgsql
set search_path = ''
as $$
declare
  rec net._http_response;
begin
  while rec is null loop
    select * into rec from net._http_response where id = request_id;
    if rec is null then
      perform pg_sleep(0.05);
    end if;
  end loop;
  return true;
end
$$;
comment on function net._await_response(bigint) is 'pg_net stand-in: blocks until the request has a response row.';

create or replace function net.http_get(
  url text,
  params jsonb default '{}'::jsonb,
  headers jsonb default '{}'::jsonb,
  timeout_milliseconds int default 5000
)
returns bigint
language plpgsql
set search_path = ''
as $$
declare
  request_id bigint;
  params_array text[];
begin
  select coalesce(array_agg(net._urlencode_string(key) || '=' || net._urlencode_string(value)), '{}')
  into params_array
  from jsonb_each_text(params);

  insert into net.http_request_queue (method, url, headers, timeout_milliseconds)
  values ('GET', net._encode_url_with_params_array(url, params_array), headers, timeout_milliseconds)
  returning id into request_id;

  perform net.wake();
  return request_id;
end
$$;
comment on function net.http_get(text, jsonb, jsonb, int) is 'Queues an async GET (sent after commit); params are url-encoded into the query string. Returns the request id.';

create or replace function net.http_post(
  url text,
  body jsonb default '{}'::jsonb,
  params jsonb default '{}'::jsonb,
  headers jsonb default '{"Content-Type": "application/json"}'::jsonb,
  timeout_milliseconds int default 5000
)
returns bigint
language plpgsql
set search_path = ''
as $$
declare
  request_id bigint;
  params_array text[];
  content_type text;
begin
  select header_value into content_type
  from jsonb_each_text(coalesce(headers, '{}'::jsonb)) as r(header_name, header_value)
  where lower(header_name) = 'content-type'
  limit 1;

  -- Headers given without a content type get it added back.
  if content_type is null then
    select headers || '{"Content-Type": "application/json"}'::jsonb into headers;
  end if;

  if content_type <> 'application/json' then
    raise exception 'Content-Type header must be "application/json"';
  end if;

  select coalesce(array_agg(net._urlencode_string(key) || '=' || net._urlencode_string(value)), '{}')
  into params_array
  from jsonb_each_text(params);

  insert into net.http_request_queue (method, url, headers, body, timeout_milliseconds)
  values ('POST', net._encode_url_with_params_array(url, params_array), headers,
          convert_to(body::text, 'UTF8'), timeout_milliseconds)
  returning id into request_id;

  perform net.wake();
  return request_id;
end
$$;
comment on function net.http_post(text, jsonb, jsonb, jsonb, int) is 'Queues an async POST with a JSON body (sent after commit). Returns the request id.';

create or replace function net.http_delete(
  url text,
  params jsonb default '{}'::jsonb,
  headers jsonb default '{}'::jsonb,
  timeout_milliseconds int default 5000,
  body jsonb default null
)
returns bigint
language plpgsql
set search_path = ''
as $$
declare
  request_id bigint;
  params_array text[];
begin
  select coalesce(array_agg(net._urlencode_string(key) || '=' || net._urlencode_string(value)), '{}')
  into params_array
  from jsonb_each_text(params);

  insert into net.http_request_queue (method, url, headers, body, timeout_milliseconds)
  values ('DELETE', net._encode_url_with_params_array(url, params_array), headers,
          convert_to(body::text, 'UTF8'), timeout_milliseconds)
  returning id into request_id;

  perform net.wake();
  return request_id;
end
$$;
comment on function net.http_delete(text, jsonb, jsonb, int, jsonb) is 'Queues an async DELETE with an optional JSON body (sent after commit). Returns the request id.';

create or replace function net._http_collect_response(request_id bigint, async bool default true)
returns net.http_response_result
language plpgsql
set search_path = ''
as $$
declare
  rec net._http_response;
begin
  if not async then
    perform net._await_response(request_id);
  end if;

  select * into rec from net._http_response where id = request_id;

  if rec is null or rec.error_msg is not null then
    -- Still in flight and unknown ids look the same, as in pg_net.
    return ('ERROR', coalesce(rec.error_msg, 'request matching request_id not found'), null)::net.http_response_result;
  end if;

  return ('SUCCESS', 'ok', (rec.status_code, rec.headers, rec.content)::net.http_response)::net.http_response_result;
end
$$;
comment on function net._http_collect_response(bigint, bool) is 'pg_net stand-in: the response of a request as a result type (async = false waits for it).';

-- Deprecated in pg_net. Its body is pg_net's verbatim, including the missing
-- INTO that makes every call fail (42601): callers must not depend on it.
create or replace function net.http_collect_response(request_id bigint, async bool default true)
returns net.http_response_result
language plpgsql
set search_path = ''
as $$
begin
  raise notice 'The net.http_collect_response function is deprecated.';
  select net._http_collect_response(request_id, async);
end;
$$;
comment on function net.http_collect_response(bigint, bool) is 'Deprecated (pg_net): use net._http_response. Fails as it does in pg_net 0.19.';

-- Ownership and grants as on Supabase: the extension's objects belong to
-- supabase_admin; pg_net grants the schema, tables and sequences to PUBLIC and
-- leaves functions executable by PUBLIC (Supabase stopped narrowing this from
-- pg_net 0.12 on, see supabase/postgres 20250220051611_pg_net_perms_fix.sql).
-- Those grants are made once, when the schema is created, as the extension
-- does; this project's migration 20261203130000 then revokes them from
-- PUBLIC, anon and authenticated, and re-applying this file keeps that.
alter schema net owner to supabase_admin;
alter table net.http_request_queue owner to supabase_admin;
alter table net._http_response owner to supabase_admin;
alter domain net.http_method owner to supabase_admin;
alter type net.request_status owner to supabase_admin;
alter type net.http_response owner to supabase_admin;
alter type net.http_response_result owner to supabase_admin;
do $$
declare
  f regprocedure;
begin
  for f in select p.oid::regprocedure from pg_proc p where p.pronamespace = 'net'::regnamespace loop
    execute format('alter function %s owner to supabase_admin', f);
  end loop;
end
$$;

do $$
begin
  if current_setting('standin.pg_net_created') = 'true' then
    grant usage on schema net to public;
    grant usage on schema net to postgres, anon, authenticated, service_role;
    grant all on all tables in schema net to public;
    grant all on all sequences in schema net to public;
    grant execute on all functions in schema net to public;
  end if;
end
$$;
