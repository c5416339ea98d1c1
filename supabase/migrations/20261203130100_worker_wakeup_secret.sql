-- Worker wake-ups carry a dedicated wake-up secret, not the service-role key.
--
-- private.invoke_worker() used to put "Authorization: Bearer <service_role
-- key>" into every pg_net request row, where anyone who can read
-- net.http_request_queue (PUBLIC, by pg_net's own grants) could take it. Now
-- it sends the Vault secret worker_wakeup_secret in the x-worker-wakeup-secret
-- header: the worker functions accept it on their wake-up door only (it
-- starts a run over their own queue; they use their own service key inside),
-- so a leaked wake-up secret lets a caller trigger work that was due anyway,
-- nothing more. Rotation: docs/OPERATIONS.md.
--
-- pg_net deletes a request row once sent and keeps responses for
-- pg_net.ttl (6 hours); worker responses name datasets and jobs, so
-- private.prune_net_responses() (pg_cron, every minute) deletes successful
-- ones after 5 minutes and the rest after an hour (ops.failed_http_requests
-- shows them meanwhile).

create or replace function private.invoke_worker(p_worker text, p_body jsonb default '{}'::jsonb)
returns bigint
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_url text;
  v_secret text;
begin
  if p_worker !~ '^[a-z][a-z0-9-]{0,62}$' then
    raise exception 'Invalid worker name "%"', p_worker using errcode = 'LT050',
      hint = 'Worker names are Edge Function slugs: lowercase letters, digits and dashes.';
  end if;
  select s.decrypted_secret into v_url from vault.decrypted_secrets s where s.name = 'project_url';
  select s.decrypted_secret into v_secret from vault.decrypted_secrets s where s.name = 'worker_wakeup_secret';
  if v_url is null or v_secret is null then
    raise warning 'Cannot wake worker "%": Vault secrets "project_url" and "worker_wakeup_secret" are not set', p_worker
      using hint = 'See docs/DEPLOY.md: select vault.create_secret(''<random>'', ''worker_wakeup_secret''); and set WORKER_WAKEUP_SECRET for the functions.';
    return null;
  end if;
  return net.http_post(
    url := rtrim(v_url, '/') || '/functions/v1/' || p_worker,
    body := p_body,
    headers := jsonb_build_object(
      'Content-Type', 'application/json',
      'x-worker-wakeup-secret', v_secret
    ),
    timeout_milliseconds := 5000
  );
end;
$$;
comment on function private.invoke_worker(text, jsonb) is
  'Wakes the Edge Function worker p_worker with a POST sent by pg_net after commit, authenticated by the Vault secret worker_wakeup_secret (header x-worker-wakeup-secret; never the service-role key); returns the pg_net request id, or null (with a warning) when the Vault secrets project_url / worker_wakeup_secret are missing.';
revoke all on function private.invoke_worker(text, jsonb) from public, anon, authenticated;
grant execute on function private.invoke_worker(text, jsonb) to service_role;

create function private.prune_net_responses(
  p_keep_success interval default interval '5 minutes',
  p_keep_failed interval default interval '1 hour'
)
returns bigint
language plpgsql
set search_path = ''
as $$
declare
  v_deleted bigint;
begin
  delete from net._http_response r
   where r.created < now() - coalesce(p_keep_failed, interval '1 hour')
      or (r.created < now() - coalesce(p_keep_success, interval '5 minutes')
          and r.status_code between 200 and 299 and not coalesce(r.timed_out, false) and r.error_msg is null);
  get diagnostics v_deleted = row_count;
  return v_deleted;
end;
$$;
comment on function private.prune_net_responses(interval, interval) is
  'Deletes pg_net responses: successful ones older than p_keep_success (default 5 minutes), all older than p_keep_failed (default 1 hour). Worker responses name datasets and jobs; pg_net alone keeps them 6 hours. Runs every minute from pg_cron (job prune-net-responses); returns how many.';
revoke all on function private.prune_net_responses(interval, interval) from public, anon, authenticated;

comment on view ops.failed_http_requests is
  'pg_net requests (worker wake-ups from private.invoke_worker) that timed out, could not connect or got HTTP 4xx/5xx, newest first, for an hour (private.prune_net_responses). pg_net does not keep the URL: match by time with the functions'' logs. 401/403: the Vault secret worker_wakeup_secret differs from the functions'' WORKER_WAKEUP_SECRET; connection errors: project_url.';

do $$
begin
  if exists (select 1 from pg_catalog.pg_extension where extname = 'pg_cron') then
    perform cron.schedule('prune-net-responses', '* * * * *', 'select private.prune_net_responses()');
  end if;
end;
$$;
