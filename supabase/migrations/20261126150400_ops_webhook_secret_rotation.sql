-- Operations: rotating the GPU cluster's webhook secret without downtime.
--
-- The secret lives in the Edge Functions' environment (GPU_WEBHOOK_SECRET,
-- read by gpu-webhook and gpu-upload-urls), not in the database, and the
-- receivers accept every secret listed there (space- or comma-separated,
-- functions/_shared/env.ts webhookSecrets). A rotation therefore has a
-- window in which both the old and the new secret are accepted:
--
--   1. ops.begin_webhook_secret_rotation(): a new random whsec_ secret in
--      Vault (gpu_webhook_secret_next; never returned, read it from
--      vault.decrypted_secrets), and the steps to follow;
--   2. the operator sets GPU_WEBHOOK_SECRET="<old> <new>", then gives the new
--      secret to the cluster, which signs with it from then on;
--   3. once signed callbacks keep arriving (private.webhook_receipts), the
--      operator sets GPU_WEBHOOK_SECRET="<new>" and calls
--      ops.finish_webhook_secret_rotation(), which makes the new secret the
--      current one in Vault (gpu_webhook_secret).
-- ops.cancel_webhook_secret_rotation() abandons a rotation before step 3.

create table ops.webhook_secret_rotations (
  id bigint generated always as identity primary key,
  started_at timestamptz not null default now(),
  started_by text not null default session_user,
  ended_at timestamptz,
  ended_by text,
  outcome text check (outcome in ('finished', 'cancelled')),
  note text,
  check ((ended_at is null) = (outcome is null))
);
comment on table ops.webhook_secret_rotations is
  'Webhook secret rotations: when each began and ended and how. At most one is open (ended_at null). Secrets themselves are only in Vault.';
comment on column ops.webhook_secret_rotations.id is 'Rotation id.';
comment on column ops.webhook_secret_rotations.started_at is 'When ops.begin_webhook_secret_rotation() ran.';
comment on column ops.webhook_secret_rotations.started_by is 'Who began it (session_user).';
comment on column ops.webhook_secret_rotations.ended_at is 'When it was finished or cancelled; null while open.';
comment on column ops.webhook_secret_rotations.ended_by is 'Who finished or cancelled it.';
comment on column ops.webhook_secret_rotations.outcome is 'finished (the new secret is current) or cancelled.';
comment on column ops.webhook_secret_rotations.note is 'The operator''s note, e.g. a ticket.';

create unique index webhook_secret_rotations_one_open_idx on ops.webhook_secret_rotations ((true)) where ended_at is null;

create function ops.vault_secret_id(p_name text)
returns uuid
language sql
stable
set search_path = ''
as $$
  select s.id from vault.secrets s where s.name = p_name
$$;
comment on function ops.vault_secret_id(text) is 'Id of the Vault secret with this name, or null.';

create function ops.begin_webhook_secret_rotation(p_note text default null)
returns table (step integer, action text)
language plpgsql
set search_path = ''
as $$
declare
  v_secret text := 'whsec_' || encode(extensions.gen_random_bytes(32), 'base64');
  v_id uuid := ops.vault_secret_id('gpu_webhook_secret_next');
  v_rotation bigint;
begin
  if exists (select 1 from ops.webhook_secret_rotations r where r.ended_at is null) then
    raise exception 'A webhook secret rotation is already in progress' using errcode = 'LT512',
      hint = 'Finish it with ops.finish_webhook_secret_rotation() or abandon it with ops.cancel_webhook_secret_rotation().';
  end if;
  if v_id is null then
    perform vault.create_secret(v_secret, 'gpu_webhook_secret_next',
      'GPU cluster webhook secret being rolled out (ops.begin_webhook_secret_rotation)');
  else
    perform vault.update_secret(v_id, v_secret);
  end if;
  insert into ops.webhook_secret_rotations (note) values (p_note) returning id into v_rotation;
  perform ops.log_action('begin_webhook_secret_rotation', 'GPU_WEBHOOK_SECRET', p_note,
    jsonb_build_object('rotation_id', v_rotation));
  return query values
    (1, 'Read the new secret: select decrypted_secret from vault.decrypted_secrets where name = ''gpu_webhook_secret_next'';'),
    (2, 'Accept both: supabase secrets set GPU_WEBHOOK_SECRET="<current secret> <new secret>" (local stack: the functions'' env); the receivers accept any listed secret.'),
    (3, 'Give the new secret to the GPU cluster for this endpoint; from then on it signs with it (during its own switch it may sign with both).'),
    (4, 'Check that signed callbacks still arrive: select kind, max(received_at) from private.webhook_receipts group by kind;'),
    (5, 'Drop the old one: supabase secrets set GPU_WEBHOOK_SECRET="<new secret>", then select * from ops.finish_webhook_secret_rotation();');
end;
$$;
comment on function ops.begin_webhook_secret_rotation(text) is
  'Starts a GPU webhook secret rotation: stores a new random whsec_ secret (32 bytes) in Vault as gpu_webhook_secret_next and returns the steps (accept old and new in GPU_WEBHOOK_SECRET, switch the cluster, drop the old). LT512 while another rotation is open. Logged in ops.runbook_log.';

create function ops.finish_webhook_secret_rotation()
returns table (step integer, action text)
language plpgsql
set search_path = ''
as $$
declare
  v_rotation ops.webhook_secret_rotations;
  v_next uuid := ops.vault_secret_id('gpu_webhook_secret_next');
  v_current uuid := ops.vault_secret_id('gpu_webhook_secret');
begin
  select * into v_rotation from ops.webhook_secret_rotations r where r.ended_at is null for update;
  if not found or v_next is null then
    raise exception 'No webhook secret rotation is in progress' using errcode = 'LT512',
      hint = 'Start one with select * from ops.begin_webhook_secret_rotation();';
  end if;
  if v_current is not null then
    delete from vault.secrets s where s.id = v_current;
  end if;
  perform vault.update_secret(v_next, null, 'gpu_webhook_secret',
    format('Current GPU cluster webhook secret (rotation %s, %s)', v_rotation.id, now()::date));
  update ops.webhook_secret_rotations set ended_at = now(), ended_by = session_user, outcome = 'finished'
   where id = v_rotation.id;
  perform ops.log_action('finish_webhook_secret_rotation', 'GPU_WEBHOOK_SECRET', null,
    jsonb_build_object('rotation_id', v_rotation.id));
  return query values
    (1, 'The new secret is now gpu_webhook_secret in Vault; the old one is deleted.'),
    (2, 'Make sure GPU_WEBHOOK_SECRET lists only the new secret (supabase secrets list shows its digest).');
end;
$$;
comment on function ops.finish_webhook_secret_rotation() is
  'Ends the open rotation: gpu_webhook_secret_next becomes gpu_webhook_secret in Vault (the old value is deleted). Call it after GPU_WEBHOOK_SECRET lists only the new secret. LT512 when no rotation is open. Logged in ops.runbook_log.';

create function ops.cancel_webhook_secret_rotation(p_reason text)
returns void
language plpgsql
set search_path = ''
as $$
declare
  v_reason text := ops.require_reason(p_reason);
  v_rotation ops.webhook_secret_rotations;
begin
  select * into v_rotation from ops.webhook_secret_rotations r where r.ended_at is null for update;
  if not found then
    raise exception 'No webhook secret rotation is in progress' using errcode = 'LT512';
  end if;
  delete from vault.secrets s where s.name = 'gpu_webhook_secret_next';
  update ops.webhook_secret_rotations set ended_at = now(), ended_by = session_user, outcome = 'cancelled'
   where id = v_rotation.id;
  perform ops.log_action('cancel_webhook_secret_rotation', 'GPU_WEBHOOK_SECRET', v_reason,
    jsonb_build_object('rotation_id', v_rotation.id));
end;
$$;
comment on function ops.cancel_webhook_secret_rotation(text) is
  'Abandons the open rotation and deletes gpu_webhook_secret_next from Vault; remove the new secret from GPU_WEBHOOK_SECRET and the cluster if it was already added. LT512 when no rotation is open. Logged in ops.runbook_log.';

revoke all on all tables in schema ops from public, anon, authenticated, service_role;
revoke all on all sequences in schema ops from public, anon, authenticated, service_role;
revoke all on all functions in schema ops from public, anon, authenticated, service_role;
