-- Money and messages. cost_records is an append-only ledger per job
-- (estimate at creation, usage as GPU time accrues, refunds as negative
-- amounts); notifications are per-user messages the owner can mark read.

-- Cost ledger -------------------------------------------------------------

create type public.cost_record_kind as enum ('estimate', 'usage', 'refund');
comment on type public.cost_record_kind is
  'estimate: expected cost at creation (informational); usage: GPU time consumed (charged); refund: money returned (negative amount).';

create table public.cost_records (
  id uuid primary key default gen_random_uuid(),
  job_id uuid not null,
  user_id uuid not null,
  kind public.cost_record_kind not null,
  gpu_seconds numeric(14, 3) not null default 0 check (gpu_seconds >= 0),
  amount numeric(12, 4) not null,
  currency text not null default 'USD' check (currency ~ '^[A-Z]{3}$'),
  description text check (length(description) <= 500),
  idempotency_key text check (length(idempotency_key) between 1 and 200),
  created_at timestamptz not null default now(),
  constraint cost_records_amount_sign check (case when kind = 'refund' then amount <= 0 else amount >= 0 end),
  constraint cost_records_job_id_idempotency_key_key unique (job_id, idempotency_key),
  constraint cost_records_job_fkey foreign key (job_id, user_id)
    references public.training_jobs (id, user_id) on delete cascade
);
comment on table public.cost_records is
  'Append-only cost ledger per job. Charged total = sum(amount) where kind in (usage, refund). Read-only to the owner.';
comment on column public.cost_records.id is 'Ledger entry id.';
comment on column public.cost_records.job_id is 'The job the entry is for.';
comment on column public.cost_records.user_id is 'Owner of the job (denormalised for RLS).';
comment on column public.cost_records.kind is 'estimate, usage or refund.';
comment on column public.cost_records.gpu_seconds is 'GPU-seconds this entry accounts for.';
comment on column public.cost_records.amount is 'Amount in currency; negative for refunds, otherwise non-negative.';
comment on column public.cost_records.currency is 'ISO 4217 currency of amount.';
comment on column public.cost_records.description is 'Why the entry was written.';
comment on column public.cost_records.idempotency_key is 'Writer-chosen key, unique per job, so a redelivered message cannot record the same usage twice.';
comment on column public.cost_records.created_at is 'When the entry was written.';

create index cost_records_job_id_user_id_idx on public.cost_records (job_id, user_id);
create index cost_records_user_id_idx on public.cost_records (user_id);

create trigger _100_set_owner
  before insert on public.cost_records
  for each row execute function private.tg_job_children__set_owner();

alter table public.cost_records enable row level security;

create policy "Owners can read their own cost records"
  on public.cost_records for select to authenticated
  using (user_id = (select auth.uid()));

revoke all on table public.cost_records from anon, authenticated, service_role;
grant select on table public.cost_records to authenticated;
-- Append-only ledger: corrections are new entries (e.g. a refund), never edits.
grant select, insert, delete on table public.cost_records to service_role;

-- Notifications -----------------------------------------------------------

create table public.notifications (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null references auth.users (id) on delete cascade,
  kind text not null check (kind ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$' and length(kind) <= 100),
  payload jsonb not null default '{}' check (jsonb_typeof(payload) = 'object'),
  job_id uuid,
  dataset_id uuid,
  is_read boolean not null default false,
  read_at timestamptz,
  created_at timestamptz not null default now(),
  constraint notifications_job_fkey foreign key (job_id, user_id)
    references public.training_jobs (id, user_id) on delete cascade,
  constraint notifications_dataset_fkey foreign key (dataset_id, user_id)
    references public.datasets (id, user_id) on delete cascade
);
comment on table public.notifications is
  'Messages to a user (job finished, dataset rejected, ...). Written by the server; the owner reads them and sets is_read.';
comment on column public.notifications.id is 'Notification id.';
comment on column public.notifications.user_id is 'Recipient.';
comment on column public.notifications.kind is 'Dotted kind, e.g. job.succeeded, job.failed, dataset.ready, dataset.error.';
comment on column public.notifications.payload is 'Details for rendering the notification (a JSON object).';
comment on column public.notifications.job_id is 'Job the notification is about, if any.';
comment on column public.notifications.dataset_id is 'Dataset the notification is about, if any.';
comment on column public.notifications.is_read is 'Read flag (client-writable).';
comment on column public.notifications.read_at is 'When is_read last became true; maintained by a trigger.';
comment on column public.notifications.created_at is 'When the notification was created.';

create index notifications_user_id_idx on public.notifications (user_id);
create index notifications_job_id_user_id_idx on public.notifications (job_id, user_id);
create index notifications_dataset_id_user_id_idx on public.notifications (dataset_id, user_id);
create index notifications_user_id_unread_idx on public.notifications (user_id, created_at desc) where not is_read;

create or replace function private.tg_notifications__set_read_at()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if tg_op = 'INSERT' or new.is_read is distinct from old.is_read then
    new.read_at := case when new.is_read then now() end;
  end if;
  return new;
end;
$$;
comment on function private.tg_notifications__set_read_at() is
  'Trigger: read_at follows is_read (now() when it becomes true, null when it becomes false).';
revoke all on function private.tg_notifications__set_read_at() from public;

create trigger _200_set_read_at
  before insert or update on public.notifications
  for each row execute function private.tg_notifications__set_read_at();

alter table public.notifications enable row level security;

create policy "Users can read their own notifications"
  on public.notifications for select to authenticated
  using (user_id = (select auth.uid()));

create policy "Users can mark their own notifications read or unread"
  on public.notifications for update to authenticated
  using (user_id = (select auth.uid()))
  with check (user_id = (select auth.uid()));

revoke all on table public.notifications from anon, authenticated, service_role;
grant select on table public.notifications to authenticated;
grant update (is_read) on table public.notifications to authenticated;
grant select, insert, update, delete on table public.notifications to service_role;
