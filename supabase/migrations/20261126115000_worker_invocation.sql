-- Waking Edge Function workers from the database.
--
-- Triggers and pg_cron call private.invoke_worker(), which POSTs to
-- <project url>/functions/v1/<worker> through pg_net. pg_net sends only after
-- the calling transaction commits, so a worker never looks for work that a
-- rollback undid. The project URL and the key the workers accept come from
-- Supabase Vault (secrets "project_url" and "service_role_key"), as Supabase
-- recommends for cron-to-function calls: no secret lives in a migration.
-- Without them the call is skipped with a warning and pg_cron's safety net
-- (once the secrets exist) or a manual call picks the work up.

create or replace function private.invoke_worker(p_worker text, p_body jsonb default '{}'::jsonb)
returns bigint
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_url text;
  v_key text;
begin
  if p_worker !~ '^[a-z][a-z0-9-]{0,62}$' then
    raise exception 'Invalid worker name "%"', p_worker using errcode = 'LT050',
      hint = 'Worker names are Edge Function slugs: lowercase letters, digits and dashes.';
  end if;
  select s.decrypted_secret into v_url from vault.decrypted_secrets s where s.name = 'project_url';
  select s.decrypted_secret into v_key from vault.decrypted_secrets s where s.name = 'service_role_key';
  if v_url is null or v_key is null then
    raise warning 'Cannot wake worker "%": Vault secrets "project_url" and "service_role_key" are not set', p_worker
      using hint = 'See docs/DEPLOY.md: select vault.create_secret(''https://<ref>.supabase.co'', ''project_url'');';
    return null;
  end if;
  return net.http_post(
    url := rtrim(v_url, '/') || '/functions/v1/' || p_worker,
    body := p_body,
    headers := jsonb_build_object(
      'Content-Type', 'application/json',
      'Authorization', 'Bearer ' || v_key
    ),
    timeout_milliseconds := 5000
  );
end;
$$;
comment on function private.invoke_worker(text, jsonb) is
  'Wakes the Edge Function worker p_worker with a POST sent by pg_net after commit; returns the pg_net request id, or null (with a warning) when the Vault secrets project_url / service_role_key are missing.';
revoke all on function private.invoke_worker(text, jsonb) from public;
grant execute on function private.invoke_worker(text, jsonb) to service_role;
