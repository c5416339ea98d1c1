-- STAND-IN for the pgmq extension (not available from any reachable registry).
-- Used only when the server lacks pgmq (stack/platform.ts decides).
--
-- Mirrors pgmq 1.5.1, the version Supabase ships: same schema, tables, types,
-- function names, signatures, defaults and SQL. Differences (no partitioned
-- queues, `set search_path = ''`, grants) are listed in docs/standins/pgmq.md.
-- Re-applied on every stack start: idempotent, never drops queues or messages.

create schema if not exists pgmq;
comment on schema pgmq is 'Message queues (stand-in for the pgmq 1.5.1 extension; see docs/standins/pgmq.md).';

create table if not exists pgmq.meta (
  queue_name varchar unique not null,
  is_partitioned boolean not null,
  is_unlogged boolean not null,
  created_at timestamp with time zone default now() not null
);
comment on table pgmq.meta is 'One row per queue created with pgmq.create().';

do $$
begin
  if to_regtype('pgmq.message_record') is null then
    create type pgmq.message_record as (
      msg_id bigint, read_ct integer, enqueued_at timestamp with time zone,
      vt timestamp with time zone, message jsonb, headers jsonb
    );
  end if;
  if to_regtype('pgmq.queue_record') is null then
    create type pgmq.queue_record as (
      queue_name varchar, is_partitioned boolean, is_unlogged boolean, created_at timestamp with time zone
    );
  end if;
  if to_regtype('pgmq.metrics_result') is null then
    create type pgmq.metrics_result as (
      queue_name text, queue_length bigint, newest_msg_age_sec int, oldest_msg_age_sec int,
      total_messages bigint, scrape_time timestamp with time zone, queue_visible_length bigint
    );
  end if;
end
$$;

------------------------------------------------------------ names and queues

-- Every table name goes through here and then through format('%I'): the
-- character check is pgmq's own, %I quoting is what actually stops injection.
create or replace function pgmq.format_table_name(queue_name text, prefix text) returns text
language plpgsql immutable set search_path = '' as $$
begin
  if queue_name ~ '\$|;|--|''' then
    raise exception 'queue name contains invalid characters: $, ;, --, or ''';
  end if;
  return lower(prefix || '_' || queue_name);
end;
$$;

-- q_<name>_vt_idx and template_pgmq_q_<name> must fit in 63 bytes.
create or replace function pgmq.validate_queue_name(queue_name text) returns void
language plpgsql immutable set search_path = '' as $$
begin
  if length(queue_name) > 47 then
    raise exception 'queue name is too long, maximum length is 47 characters';
  end if;
end;
$$;

create or replace function pgmq.acquire_queue_lock(queue_name text) returns void
language plpgsql set search_path = '' as $$
begin
  perform pg_advisory_xact_lock(hashtext('pgmq.queue_' || queue_name));
end;
$$;

-- Stand-in helper shared by create_non_partitioned and create_unlogged.
create or replace function pgmq._create_queue(queue_name text, unlogged boolean) returns void
language plpgsql set search_path = '' as $$
declare
  qtable text := pgmq.format_table_name(queue_name, 'q');
  atable text := pgmq.format_table_name(queue_name, 'a');
begin
  perform pgmq.validate_queue_name(queue_name);
  perform pgmq.acquire_queue_lock(queue_name);
  execute format($q$
    create %s table if not exists pgmq.%I (
      msg_id bigint primary key generated always as identity,
      read_ct int default 0 not null,
      enqueued_at timestamp with time zone default now() not null,
      vt timestamp with time zone not null,
      message jsonb,
      headers jsonb
    )$q$, case when unlogged then 'unlogged' else '' end, qtable);
  execute format($q$
    create table if not exists pgmq.%I (
      msg_id bigint primary key,
      read_ct int default 0 not null,
      enqueued_at timestamp with time zone default now() not null,
      archived_at timestamp with time zone default now() not null,
      vt timestamp with time zone not null,
      message jsonb,
      headers jsonb
    )$q$, atable);
  execute format('create index if not exists %I on pgmq.%I (vt asc)', qtable || '_vt_idx', qtable);
  execute format('create index if not exists %I on pgmq.%I (archived_at)', 'archived_at_idx_' || queue_name, atable);
  execute 'insert into pgmq.meta (queue_name, is_partitioned, is_unlogged) values ($1, false, $2) on conflict do nothing'
    using queue_name, unlogged;
end;
$$;

create or replace function pgmq.create_non_partitioned(queue_name text) returns void
language plpgsql set search_path = '' as $$
begin
  perform pgmq._create_queue(queue_name, false);
end;
$$;

create or replace function pgmq.create_unlogged(queue_name text) returns void
language plpgsql set search_path = '' as $$
begin
  perform pgmq._create_queue(queue_name, true);
end;
$$;

create or replace function pgmq.create(queue_name text) returns void
language plpgsql set search_path = '' as $$
begin
  perform pgmq.create_non_partitioned(queue_name);
end;
$$;

-- Real pgmq needs pg_partman for these and raises this same error without it.
create or replace function pgmq.create_partitioned(
  queue_name text, partition_interval text default '10000', retention_interval text default '100000'
) returns void
language plpgsql set search_path = '' as $$
begin
  perform pgmq.validate_queue_name(queue_name);
  raise exception 'pg_partman is required for partitioned queues';
end;
$$;

-- Supabase's patched 1.5.1 drop_queue: drops whatever exists and returns true.
create or replace function pgmq.drop_queue(queue_name text) returns boolean
language plpgsql set search_path = '' as $$
declare
  qtable text := pgmq.format_table_name(queue_name, 'q');
  atable text := pgmq.format_table_name(queue_name, 'a');
begin
  perform pgmq.acquire_queue_lock(queue_name);
  execute format('drop table if exists pgmq.%I', qtable);
  execute format('drop table if exists pgmq.%I', atable);
  execute 'delete from pgmq.meta where queue_name = $1' using queue_name;
  return true;
end;
$$;

create or replace function pgmq.drop_queue(queue_name text, partitioned boolean) returns boolean
language plpgsql set search_path = '' as $$
begin
  raise warning 'drop_queue(queue_name, partitioned) is deprecated and will be removed in PGMQ v2.0. Use drop_queue(queue_name) instead.';
  return pgmq.drop_queue(queue_name);
end;
$$;

-- Archive tables of the stand-in never belong to an extension: nothing to detach.
create or replace function pgmq.detach_archive(queue_name text) returns void
language plpgsql set search_path = '' as $$
begin
  perform pgmq.format_table_name(queue_name, 'a');
  raise warning 'pgmq stand-in: archive tables are not extension members, nothing to detach';
end;
$$;

create or replace function pgmq.purge_queue(queue_name text) returns bigint
language plpgsql set search_path = '' as $$
declare
  qtable text := pgmq.format_table_name(queue_name, 'q');
  deleted_count integer;
begin
  execute format('select count(*) from pgmq.%I', qtable) into deleted_count;
  execute format('truncate table pgmq.%I', qtable);
  return deleted_count;
end;
$$;

create or replace function pgmq.list_queues() returns setof pgmq.queue_record
language plpgsql set search_path = '' as $$
begin
  return query select m.queue_name, m.is_partitioned, m.is_unlogged, m.created_at from pgmq.meta m;
end;
$$;

------------------------------------------------------------ sending

-- The implementation every send overload ends in (pgmq 1.5 shape).
create or replace function pgmq.send(queue_name text, msg jsonb, headers jsonb, delay timestamp with time zone)
returns setof bigint language plpgsql set search_path = '' as $$
declare
  qtable text := pgmq.format_table_name(queue_name, 'q');
begin
  return query execute format(
    'insert into pgmq.%I (vt, message, headers) values ($2, $1, $3) returning msg_id', qtable
  ) using msg, delay, headers;
end;
$$;

create or replace function pgmq.send(queue_name text, msg jsonb, headers jsonb, delay integer)
returns setof bigint language sql set search_path = '' as $$
  select * from pgmq.send(queue_name, msg, headers, clock_timestamp() + make_interval(secs => delay));
$$;

create or replace function pgmq.send(queue_name text, msg jsonb, delay timestamp with time zone)
returns setof bigint language sql set search_path = '' as $$
  select * from pgmq.send(queue_name, msg, null::jsonb, delay);
$$;

create or replace function pgmq.send(queue_name text, msg jsonb, delay integer)
returns setof bigint language sql set search_path = '' as $$
  select * from pgmq.send(queue_name, msg, null::jsonb, clock_timestamp() + make_interval(secs => delay));
$$;

create or replace function pgmq.send(queue_name text, msg jsonb, headers jsonb)
returns setof bigint language sql set search_path = '' as $$
  select * from pgmq.send(queue_name, msg, headers, clock_timestamp());
$$;

create or replace function pgmq.send(queue_name text, msg jsonb)
returns setof bigint language sql set search_path = '' as $$
  select * from pgmq.send(queue_name, msg, null::jsonb, clock_timestamp());
$$;

create or replace function pgmq.send_batch(queue_name text, msgs jsonb[], headers jsonb[], delay timestamp with time zone)
returns setof bigint language plpgsql set search_path = '' as $$
declare
  qtable text := pgmq.format_table_name(queue_name, 'q');
begin
  return query execute format(
    'insert into pgmq.%I (vt, message, headers) select $2, unnest($1), unnest(coalesce($3, array[]::jsonb[])) returning msg_id',
    qtable
  ) using msgs, delay, headers;
end;
$$;

create or replace function pgmq.send_batch(queue_name text, msgs jsonb[], headers jsonb[], delay integer)
returns setof bigint language sql set search_path = '' as $$
  select * from pgmq.send_batch(queue_name, msgs, headers, clock_timestamp() + make_interval(secs => delay));
$$;

create or replace function pgmq.send_batch(queue_name text, msgs jsonb[], delay timestamp with time zone)
returns setof bigint language sql set search_path = '' as $$
  select * from pgmq.send_batch(queue_name, msgs, null::jsonb[], delay);
$$;

create or replace function pgmq.send_batch(queue_name text, msgs jsonb[], delay integer)
returns setof bigint language sql set search_path = '' as $$
  select * from pgmq.send_batch(queue_name, msgs, null::jsonb[], clock_timestamp() + make_interval(secs => delay));
$$;

create or replace function pgmq.send_batch(queue_name text, msgs jsonb[], headers jsonb[])
returns setof bigint language sql set search_path = '' as $$
  select * from pgmq.send_batch(queue_name, msgs, headers, clock_timestamp());
$$;

create or replace function pgmq.send_batch(queue_name text, msgs jsonb[])
returns setof bigint language sql set search_path = '' as $$
  select * from pgmq.send_batch(queue_name, msgs, null::jsonb[], clock_timestamp());
$$;

------------------------------------------------------------ consuming

-- Shared by read and read_with_poll: lock visible rows (skipping rows other
-- transactions hold), hide them for vt seconds and count the read.
create or replace function pgmq._read_sql(queue_name text) returns text
language sql immutable set search_path = '' as $$
  select format($q$
    with cte as (
      select msg_id from pgmq.%1$I
      where vt <= clock_timestamp() and ($3 = '{}'::jsonb or message @> $3)
      order by msg_id asc
      limit $1
      for update skip locked
    )
    update pgmq.%1$I m
    set vt = clock_timestamp() + $2, read_ct = read_ct + 1
    from cte
    where m.msg_id = cte.msg_id
    returning m.msg_id, m.read_ct, m.enqueued_at, m.vt, m.message, m.headers$q$,
    pgmq.format_table_name(queue_name, 'q'));
$$;

create or replace function pgmq.read(queue_name text, vt integer, qty integer, conditional jsonb default '{}')
returns setof pgmq.message_record language plpgsql set search_path = '' as $$
begin
  return query execute pgmq._read_sql(queue_name) using qty, make_interval(secs => vt), coalesce(conditional, '{}');
end;
$$;

create or replace function pgmq.read_with_poll(
  queue_name text, vt integer, qty integer,
  max_poll_seconds integer default 5, poll_interval_ms integer default 100, conditional jsonb default '{}'
) returns setof pgmq.message_record language plpgsql set search_path = '' as $$
declare
  r pgmq.message_record;
  stop_at timestamp with time zone := clock_timestamp() + make_interval(secs => max_poll_seconds);
  sql text := pgmq._read_sql(queue_name);
begin
  loop
    if clock_timestamp() >= stop_at then
      return;
    end if;
    for r in execute sql using qty, make_interval(secs => vt), coalesce(conditional, '{}') loop
      return next r;
    end loop;
    if found then
      return;
    end if;
    perform pg_sleep(poll_interval_ms::numeric / 1000);
  end loop;
end;
$$;

create or replace function pgmq.pop(queue_name text) returns setof pgmq.message_record
language plpgsql set search_path = '' as $$
begin
  return query execute format($q$
    with cte as (
      select msg_id from pgmq.%1$I
      where vt <= clock_timestamp()
      order by msg_id asc
      limit 1
      for update skip locked
    )
    delete from pgmq.%1$I
    where msg_id = (select msg_id from cte)
    returning msg_id, read_ct, enqueued_at, vt, message, headers$q$,
    pgmq.format_table_name(queue_name, 'q'));
end;
$$;

create or replace function pgmq.set_vt(queue_name text, msg_id bigint, vt integer) returns setof pgmq.message_record
language plpgsql set search_path = '' as $$
begin
  return query execute format(
    'update pgmq.%I set vt = clock_timestamp() + $2 where msg_id = $1
     returning msg_id, read_ct, enqueued_at, vt, message, headers',
    pgmq.format_table_name(queue_name, 'q')
  ) using msg_id, make_interval(secs => vt);
end;
$$;

create or replace function pgmq.delete(queue_name text, msg_id bigint) returns boolean
language plpgsql set search_path = '' as $$
declare
  result bigint;
begin
  execute format('delete from pgmq.%I where msg_id = $1 returning msg_id', pgmq.format_table_name(queue_name, 'q'))
    using msg_id into result;
  return result is not null;
end;
$$;

create or replace function pgmq.delete(queue_name text, msg_ids bigint[]) returns setof bigint
language plpgsql set search_path = '' as $$
begin
  return query execute format('delete from pgmq.%I where msg_id = any($1) returning msg_id',
    pgmq.format_table_name(queue_name, 'q')) using msg_ids;
end;
$$;

create or replace function pgmq._archive_sql(queue_name text) returns text
language sql immutable set search_path = '' as $$
  select format($q$
    with archived as (
      delete from pgmq.%I where msg_id = any($1)
      returning msg_id, vt, read_ct, enqueued_at, message, headers
    )
    insert into pgmq.%I (msg_id, vt, read_ct, enqueued_at, message, headers)
    select msg_id, vt, read_ct, enqueued_at, message, headers from archived
    returning msg_id$q$,
    pgmq.format_table_name(queue_name, 'q'), pgmq.format_table_name(queue_name, 'a'));
$$;

create or replace function pgmq.archive(queue_name text, msg_id bigint) returns boolean
language plpgsql set search_path = '' as $$
declare
  result bigint;
begin
  execute pgmq._archive_sql(queue_name) using array[msg_id] into result;
  return result is not null;
end;
$$;

create or replace function pgmq.archive(queue_name text, msg_ids bigint[]) returns setof bigint
language plpgsql set search_path = '' as $$
begin
  return query execute pgmq._archive_sql(queue_name) using msg_ids;
end;
$$;

------------------------------------------------------------ metrics

create or replace function pgmq.metrics(queue_name text) returns pgmq.metrics_result
language plpgsql set search_path = '' as $$
declare
  qtable text := pgmq.format_table_name(queue_name, 'q');
  result_row pgmq.metrics_result;
begin
  execute format($q$
    with q_summary as (
      select
        count(*) as queue_length,
        count(case when vt <= now() then 1 end) as queue_visible_length,
        extract(epoch from (now() - max(enqueued_at)))::int as newest_msg_age_sec,
        extract(epoch from (now() - min(enqueued_at)))::int as oldest_msg_age_sec,
        now() as scrape_time
      from pgmq.%I
    ),
    all_metrics as (
      select case when is_called then last_value else 0 end as total_messages from pgmq.%I
    )
    select %L, q.queue_length, q.newest_msg_age_sec, q.oldest_msg_age_sec,
           a.total_messages, q.scrape_time, q.queue_visible_length
    from q_summary q, all_metrics a$q$,
    qtable, qtable || '_msg_id_seq', queue_name) into result_row;
  return result_row;
end;
$$;

create or replace function pgmq.metrics_all() returns setof pgmq.metrics_result
language plpgsql set search_path = '' as $$
declare
  row_name record;
begin
  for row_name in select m.queue_name from pgmq.meta m loop
    return next pgmq.metrics(row_name.queue_name);
  end loop;
end;
$$;

------------------------------------------------------------ privileges

-- As on Supabase with Queues enabled: postgres and service_role operate
-- queues; anon and authenticated get nothing (not even schema usage), so
-- queue tables are unreachable from the Data API. pg_monitor as in pgmq.
revoke all on schema pgmq from public, anon, authenticated;
grant usage on schema pgmq to postgres, service_role, pg_monitor;

revoke all on all functions in schema pgmq from public, anon, authenticated;
grant execute on all functions in schema pgmq to postgres, service_role;
alter default privileges in schema pgmq revoke execute on functions from public;

revoke all on all tables in schema pgmq from public, anon, authenticated;
revoke all on all sequences in schema pgmq from public, anon, authenticated;
grant select, insert, update, delete, truncate on all tables in schema pgmq to service_role;
grant usage, select, update on all sequences in schema pgmq to service_role;
grant select on all tables in schema pgmq to pg_monitor;
grant select on all sequences in schema pgmq to pg_monitor;

-- Queue tables created later by pgmq.create() (run as postgres by migrations).
alter default privileges in schema pgmq grant select, insert, update, delete, truncate on tables to service_role;
alter default privileges in schema pgmq grant usage, select, update on sequences to service_role;
alter default privileges in schema pgmq grant select on tables to pg_monitor;
alter default privileges in schema pgmq grant select on sequences to pg_monitor;

comment on function pgmq.create(text) is 'Creates queue tables pgmq.q_<name> and pgmq.a_<name> (idempotent).';
comment on function pgmq.send(text, jsonb, jsonb, timestamp with time zone) is 'Enqueues a message, visible from `delay`; returns its msg_id.';
comment on function pgmq.send_batch(text, jsonb[], jsonb[], timestamp with time zone) is 'Enqueues several messages; returns their msg_ids.';
comment on function pgmq.read(text, integer, integer, jsonb) is 'Reads up to qty visible messages and hides them for vt seconds (read_ct + 1).';
comment on function pgmq.read_with_poll(text, integer, integer, integer, integer, jsonb) is 'Like read(), polling until a message arrives or max_poll_seconds pass.';
comment on function pgmq.pop(text) is 'Reads and deletes the oldest visible message.';
comment on function pgmq.set_vt(text, bigint, integer) is 'Makes a message visible again vt seconds from now.';
comment on function pgmq.delete(text, bigint) is 'Deletes a message; true if it existed.';
comment on function pgmq.archive(text, bigint) is 'Moves a message to pgmq.a_<name>; true if it existed.';
comment on function pgmq.purge_queue(text) is 'Deletes every message of a queue; returns how many.';
comment on function pgmq.drop_queue(text) is 'Drops a queue with its archive.';
comment on function pgmq.metrics(text) is 'Queue length, visible length, message ages and total messages ever sent.';
