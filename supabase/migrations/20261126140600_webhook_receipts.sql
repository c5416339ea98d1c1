-- Replay protection for the GPU cluster's signed callbacks.
--
-- A Standard Webhooks signature proves who sent a request and when, not
-- that it is new: a captured request stays valid for the 5-minute window,
-- and the cluster itself redelivers an event (same webhook-id) when our
-- answer was lost. Every webhook-id we acted on is stored here, in the same
-- transaction as its effect, so a second delivery of an event changes
-- nothing (and is acknowledged, as the contract asks), and a second use of
-- an upload-URL request is refused. Ids are kept webhook_receipt_retention_days
-- (a pg_cron job purges older ones); beyond that, the signature's timestamp
-- window already refuses a replay.

create table private.webhook_receipts (
  webhook_id text primary key check (length(webhook_id) between 1 and 256),
  kind text not null check (kind in ('event', 'upload_urls')),
  external_job_id text,
  job_id uuid,
  event_type text,
  sequence integer,
  outcome text not null,
  received_at timestamptz not null default now()
);
comment on table private.webhook_receipts is
  'Webhook ids (Standard Webhooks webhook-id) of signed cluster callbacks we acted on: events and upload-URL requests. A repeated id changes nothing.';
comment on column private.webhook_receipts.webhook_id is 'The webhook-id header.';
comment on column private.webhook_receipts.kind is 'event (gpu-webhook) or upload_urls (gpu-upload-urls).';
comment on column private.webhook_receipts.external_job_id is 'The cluster job the callback was about.';
comment on column private.webhook_receipts.job_id is 'Our job (no foreign key: the receipt outlives a deleted job for the retention period).';
comment on column private.webhook_receipts.event_type is 'Event type, e.g. job.progress (events only).';
comment on column private.webhook_receipts.sequence is 'data.sequence of the event (events only).';
comment on column private.webhook_receipts.outcome is 'What applying it did: applied, stale, inactive, or urls_issued.';
comment on column private.webhook_receipts.received_at is 'When it was received.';

create index webhook_receipts_received_at_idx on private.webhook_receipts (received_at);

revoke all on table private.webhook_receipts from public;
grant select, insert, delete on table private.webhook_receipts to service_role;

create function private.apply_webhook_event(
  p_webhook_id text, p_event_type text, p_external_job_id text, p_update jsonb, p_expected_job_id uuid default null)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_result jsonb;
begin
  -- Claim the id first: a concurrent delivery of the same id waits here, then sees the conflict.
  insert into private.webhook_receipts (webhook_id, kind, external_job_id, event_type, sequence, outcome)
  values (p_webhook_id, 'event', p_external_job_id, p_event_type, (p_update ->> 'sequence')::integer, 'pending')
  on conflict (webhook_id) do nothing;
  if not found then
    return jsonb_build_object('outcome', 'duplicate');
  end if;
  v_result := private.apply_cluster_update(p_external_job_id, p_update, p_expected_job_id, false);
  if v_result ->> 'outcome' in ('unknown_job', 'job_mismatch') then
    -- Nothing happened, so nothing is remembered: a redelivery after the job is known will apply.
    delete from private.webhook_receipts where webhook_id = p_webhook_id;
  else
    update private.webhook_receipts set outcome = v_result ->> 'outcome', job_id = (v_result ->> 'job_id')::uuid
     where webhook_id = p_webhook_id;
  end if;
  return v_result;
end;
$$;
comment on function private.apply_webhook_event(text, text, text, jsonb, uuid) is
  'Applies a verified cluster event once per webhook-id: {outcome: duplicate} for an id already applied, otherwise private.apply_cluster_update() with the receipt stored in the same transaction (not stored for unknown_job / job_mismatch, which change nothing).';
revoke all on function private.apply_webhook_event(text, text, text, jsonb, uuid) from public;

create function private.purge_webhook_receipts()
returns integer
language sql
set search_path = ''
as $$
  with gone as (
    delete from private.webhook_receipts
     where received_at < now() - private.job_setting('webhook_receipt_retention_days') * interval '1 day'
    returning 1
  )
  select count(*)::integer from gone
$$;
comment on function private.purge_webhook_receipts() is
  'Deletes webhook receipts older than webhook_receipt_retention_days (pg_cron, daily); returns how many.';
revoke all on function private.purge_webhook_receipts() from public;

do $$
begin
  if exists (select 1 from pg_catalog.pg_extension where extname = 'pg_cron') then
    perform cron.schedule('purge-webhook-receipts', '17 3 * * *', 'select private.purge_webhook_receipts()');
  end if;
end;
$$;
