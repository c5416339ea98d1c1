-- STAND-IN for the Supabase Storage service's database schema (embedded stack
-- only: on Supabase the Storage API creates and migrates this schema itself,
-- https://github.com/supabase/storage/tree/master/migrations/tenant).
--
-- The subset the Storage HTTP stand-in (stack/storage/) and project policies
-- rely on, as the current migrations leave it: storage.buckets and
-- storage.objects with their columns, indexes and triggers, RLS enabled on both
-- with no policies (projects add them), the helper functions policies use
-- (foldername, filename, extension), storage.search for listing, and the guard
-- that blocks direct SQL deletes. Re-applied at every stack start: idempotent.
-- Deviation: the helpers carry `set search_path = ''` and explicit execute
-- grants (house style); their bodies are Supabase's.

create schema if not exists storage authorization supabase_admin;
grant usage on schema storage to postgres, anon, authenticated, service_role;
grant all on schema storage to supabase_storage_admin;

do $$
begin
  if not exists (
    select 1 from pg_catalog.pg_type t join pg_catalog.pg_namespace n on n.oid = t.typnamespace
    where n.nspname = 'storage' and t.typname = 'buckettype'
  ) then
    create type storage.buckettype as enum ('STANDARD', 'ANALYTICS', 'VECTOR');
  end if;
end
$$;

create table if not exists storage.buckets (
  id text not null primary key,
  name text not null,
  owner uuid,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  public boolean default false,
  avif_autodetection boolean default false,
  file_size_limit bigint,
  allowed_mime_types text[],
  owner_id text,
  type storage.buckettype not null default 'STANDARD'
);
create unique index if not exists bname on storage.buckets using btree (name);
comment on column storage.buckets.owner is 'Field is deprecated, use owner_id instead';
comment on column storage.buckets.file_size_limit is
  'Largest object (bytes) the Storage API accepts into this bucket; null means the global limit.';
comment on column storage.buckets.allowed_mime_types is
  'Content types the Storage API accepts ("type/subtype" or "type/*"); null or empty accepts any.';

create table if not exists storage.objects (
  id uuid not null default gen_random_uuid() primary key,
  bucket_id text,
  name text,
  owner uuid,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  last_accessed_at timestamptz default now(),
  metadata jsonb,
  path_tokens text[] generated always as (string_to_array(name, '/')) stored,
  version text,
  owner_id text,
  user_metadata jsonb,
  constraint "objects_bucketId_fkey" foreign key (bucket_id) references storage.buckets (id)
);
create unique index if not exists bucketid_objname on storage.objects using btree (bucket_id, name);
create index if not exists name_prefix_search on storage.objects using btree (name text_pattern_ops);
comment on column storage.objects.owner is 'Field is deprecated, use owner_id instead';
comment on column storage.objects.owner_id is 'The uploader: the `sub` claim of the JWT that wrote the object.';
comment on column storage.objects.metadata is
  'Set by the Storage API: eTag, size, mimetype, cacheControl, lastModified, contentLength, httpStatusCode.';
comment on column storage.objects.version is 'Identifies the stored bytes; changes on every overwrite.';

alter table storage.buckets enable row level security;
alter table storage.objects enable row level security;

alter table storage.buckets owner to supabase_storage_admin;
alter table storage.objects owner to supabase_storage_admin;
grant all on storage.buckets, storage.objects to anon, authenticated, service_role;
grant all on storage.buckets, storage.objects to postgres with grant option;

create or replace function storage.foldername(name text)
returns text[]
language plpgsql
immutable
set search_path = ''
as $function$
declare
  _parts text[];
begin
  select string_to_array(name, '/') into _parts;
  return _parts[1 : array_length(_parts, 1) - 1];
end
$function$;
comment on function storage.foldername(text) is
  'Folders of an object name: storage.foldername(''a/b/c.txt'') = {a,b}.';

create or replace function storage.filename(name text)
returns text
language plpgsql
immutable
set search_path = ''
as $function$
declare
  _parts text[];
begin
  select string_to_array(name, '/') into _parts;
  return _parts[array_length(_parts, 1)];
end
$function$;
comment on function storage.filename(text) is 'Last segment of an object name: storage.filename(''a/b/c.txt'') = c.txt.';

create or replace function storage.extension(name text)
returns text
language plpgsql
immutable
set search_path = ''
as $function$
declare
  _parts text[];
  _filename text;
begin
  select string_to_array(name, '/') into _parts;
  select _parts[array_length(_parts, 1)] into _filename;
  return reverse(split_part(reverse(_filename), '.', 1));
end
$function$;
comment on function storage.extension(text) is 'Extension of an object name: storage.extension(''a/b/c.txt'') = txt.';

create or replace function storage.operation()
returns text
language plpgsql
stable
set search_path = ''
as $function$
begin
  return current_setting('storage.operation', true);
end;
$function$;
comment on function storage.operation() is 'The Storage API operation running in this transaction, e.g. storage.object.upload.';

-- Listing one folder level (the body of Supabase's search_legacy_v1, which
-- storage.search uses for roles subject to RLS). Security invoker: RLS applies.
create or replace function storage.search(
  prefix text, bucketname text, limits integer default 100, levels integer default 1,
  offsets integer default 0, search text default '', sortcolumn text default 'name',
  sortorder text default 'asc'
)
returns table (
  name text, id uuid, updated_at timestamptz, created_at timestamptz,
  last_accessed_at timestamptz, metadata jsonb
)
language plpgsql
stable
set search_path = ''
as $function$
declare
  v_order_by text;
  v_sort_order text;
begin
  case
    when sortcolumn = 'name' then v_order_by = 'name';
    when sortcolumn = 'updated_at' then v_order_by = 'updated_at';
    when sortcolumn = 'created_at' then v_order_by = 'created_at';
    when sortcolumn = 'last_accessed_at' then v_order_by = 'last_accessed_at';
    else v_order_by = 'name';
  end case;
  case
    when sortorder = 'asc' then v_sort_order = 'asc';
    when sortorder = 'desc' then v_sort_order = 'desc';
    else v_sort_order = 'asc';
  end case;
  v_order_by = v_order_by || ' ' || v_sort_order;

  return query execute
    'with folders as (
       select path_tokens[$1] as folder
       from storage.objects
       where objects.name ilike $2 || $3 || ''%''
         and bucket_id = $4
         and array_length(objects.path_tokens, 1) <> $1
       group by folder
       order by folder ' || v_sort_order || '
     )
     (select folder as "name", null::uuid as id, null::timestamptz as updated_at,
             null::timestamptz as created_at, null::timestamptz as last_accessed_at,
             null::jsonb as metadata
      from folders)
     union all
     (select path_tokens[$1] as "name", id, updated_at, created_at, last_accessed_at, metadata
      from storage.objects
      where objects.name ilike $2 || $3 || ''%''
        and bucket_id = $4
        and array_length(objects.path_tokens, 1) = $1
      order by ' || v_order_by || ')
     limit $5
     offset $6' using levels, prefix, search, bucketname, limits, offsets;
end;
$function$;
comment on function storage.search(text, text, integer, integer, integer, text, text, text) is
  'Folders and objects one level below prefix in a bucket (what supabase-js list() shows), filtered by RLS.';

create or replace function storage.update_updated_at_column()
returns trigger
language plpgsql
set search_path = ''
as $function$
begin
  new.updated_at = now();
  return new;
end;
$function$;
comment on function storage.update_updated_at_column() is 'Keeps storage.objects.updated_at current on every update.';

create or replace trigger update_objects_updated_at
  before update on storage.objects
  for each row execute function storage.update_updated_at_column();

-- Supabase rejects direct SQL deletes so that rows never lose their bytes; the
-- Storage API sets storage.allow_delete_query for its own deletes.
create or replace function storage.protect_delete()
returns trigger
language plpgsql
set search_path = ''
as $function$
begin
  if coalesce(current_setting('storage.allow_delete_query', true), 'false') != 'true' then
    raise exception 'Direct deletion from storage tables is not allowed. Use the Storage API instead.'
      using hint = 'This prevents accidental data loss from orphaned objects.',
            errcode = '42501';
  end if;
  return null;
end;
$function$;
comment on function storage.protect_delete() is
  'Blocks direct deletes from storage tables unless storage.allow_delete_query = true (set by the Storage API).';

create or replace trigger protect_buckets_delete
  before delete on storage.buckets
  for each statement execute function storage.protect_delete();
create or replace trigger protect_objects_delete
  before delete on storage.objects
  for each statement execute function storage.protect_delete();

revoke all on function
  storage.foldername(text), storage.filename(text), storage.extension(text), storage.operation(),
  storage.search(text, text, integer, integer, integer, text, text, text),
  storage.update_updated_at_column(), storage.protect_delete()
  from public;
grant execute on function
  storage.foldername(text), storage.filename(text), storage.extension(text), storage.operation(),
  storage.search(text, text, integer, integer, integer, text, text, text)
  to postgres, anon, authenticated, service_role;

alter function storage.foldername(text) owner to supabase_storage_admin;
alter function storage.filename(text) owner to supabase_storage_admin;
alter function storage.extension(text) owner to supabase_storage_admin;
alter function storage.operation() owner to supabase_storage_admin;
alter function storage.search(text, text, integer, integer, integer, text, text, text) owner to supabase_storage_admin;
alter function storage.update_updated_at_column() owner to supabase_storage_admin;
alter function storage.protect_delete() owner to supabase_storage_admin;
