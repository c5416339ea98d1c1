-- STAND-IN for Supabase Vault (the supabase_vault extension, not available from
-- any reachable registry). Used only when the server lacks supabase_vault.
--
-- Mirrors supabase_vault 0.3.1: the `vault.secrets` table, the
-- `vault.decrypted_secrets` view, `create_secret` / `update_secret` with the
-- same signatures, and the grants Supabase adds after creating the extension.
-- pgsodium's deterministic AEAD is replaced by AES-256-CBC with a synthetic IV
-- (SIV: the IV is an HMAC-SHA256 of id, nonce and plaintext, checked on
-- decryption) from pgcrypto, keyed by a root key kept in its own table that
-- only the owner can read. See docs/standins/vault.md.
-- Re-applied on every stack start: idempotent, never drops secrets or the key.

create schema if not exists vault;
comment on schema vault is 'Supabase Vault (stand-in; see docs/standins/vault.md).';

-- pgsodium keeps its root key outside the database; the stand-in keeps it in
-- a table nobody but its owner may read, created once and never rotated.
create table if not exists vault._root_key (
  id int primary key default 1 check (id = 1),
  key bytea not null check (length(key) = 32),
  created_at timestamptz not null default now()
);
comment on table vault._root_key is 'Stand-in only: the Vault root key. Readable by its owner (the superuser) alone.';
insert into vault._root_key (key) values (extensions.gen_random_bytes(32)) on conflict (id) do nothing;

-- Per-purpose subkeys derived from the root key, so encryption and
-- authentication never share a key.
create or replace function vault._derive_keys(key_id bigint, context bytea, out enc_key bytea, out mac_key bytea)
language plpgsql stable security definer set search_path = '' as $$
declare
  root bytea := (select k.key from vault._root_key k where k.id = 1);
  label bytea := coalesce(context, ''::bytea) || int8send(coalesce(key_id, 0));
begin
  if root is null then
    raise exception 'Vault root key is missing' using errcode = 'XX000';
  end if;
  enc_key := extensions.hmac(label || 'enc'::bytea, root, 'sha256');
  mac_key := extensions.hmac(label || 'mac'::bytea, root, 'sha256');
end;
$$;

create or replace function vault._siv(mac_key bytea, message bytea, additional bytea, nonce bytea) returns bytea
language sql immutable set search_path = '' as $$
  select substr(extensions.hmac(
    int4send(length(coalesce(additional, ''::bytea))) || coalesce(additional, ''::bytea)
      || int4send(length(coalesce(nonce, ''::bytea))) || coalesce(nonce, ''::bytea) || message,
    mac_key, 'sha256'), 1, 16);
$$;

create or replace function vault._crypto_aead_det_noncegen() returns bytea
language sql volatile set search_path = '' as $$
  select extensions.gen_random_bytes(16);
$$;

create or replace function vault._crypto_aead_det_encrypt(
  message bytea, additional bytea, key_id bigint, context bytea = 'pgsodium', nonce bytea = null
) returns bytea
language plpgsql stable security definer set search_path = '' as $$
declare
  k record := vault._derive_keys(key_id, context);
  iv bytea := vault._siv(k.mac_key, message, additional, nonce);
begin
  return iv || extensions.encrypt_iv(message, k.enc_key, iv, 'aes-cbc/pad:pkcs');
end;
$$;

create or replace function vault._crypto_aead_det_decrypt(
  message bytea, additional bytea, key_id bigint, context bytea = 'pgsodium', nonce bytea = null
) returns bytea
language plpgsql stable security definer set search_path = '' as $$
declare
  k record := vault._derive_keys(key_id, context);
  iv bytea := substr(message, 1, 16);
  plain bytea;
begin
  begin
    plain := extensions.decrypt_iv(substr(message, 17), k.enc_key, iv, 'aes-cbc/pad:pkcs');
  exception when others then
    plain := null;
  end;
  if plain is null or length(message) < 32 or vault._siv(k.mac_key, plain, additional, nonce) <> iv then
    raise exception 'vault: invalid ciphertext' using errcode = '22000';
  end if;
  return plain;
end;
$$;

create table if not exists vault.secrets (
  id uuid primary key default gen_random_uuid(),
  name text,
  description text not null default '',
  secret text not null,
  key_id uuid,
  nonce bytea default vault._crypto_aead_det_noncegen(),
  created_at timestamptz not null default current_timestamp,
  updated_at timestamptz not null default current_timestamp
);
comment on table vault.secrets is 'Table with encrypted `secret` column for storing sensitive information on disk.';
create unique index if not exists secrets_name_idx on vault.secrets using btree (name) where name is not null;

create or replace view vault.decrypted_secrets as
select s.id,
  s.name,
  s.description,
  s.secret,
  convert_from(
    vault._crypto_aead_det_decrypt(
      message := decode(s.secret, 'base64'::text),
      additional := convert_to(s.id::text, 'utf8'),
      key_id := 0,
      context := 'pgsodium'::bytea,
      nonce := s.nonce
    ),
    'utf8'::name
  ) as decrypted_secret,
  s.key_id,
  s.nonce,
  s.created_at,
  s.updated_at
from vault.secrets s;
comment on view vault.decrypted_secrets is 'vault.secrets with the plaintext in `decrypted_secret`; postgres and service_role only.';

-- Unlike the real 0.3.x (insert plaintext, then update), the stand-in never
-- writes the plaintext to the table, not even in a dead tuple.
create or replace function vault.create_secret(
  new_secret text,
  new_name text = null,
  new_description text = '',
  -- unused, as in supabase_vault
  new_key_id uuid = null
) returns uuid
language plpgsql security definer set search_path = '' as $$
declare
  new_id uuid := gen_random_uuid();
  new_nonce bytea := vault._crypto_aead_det_noncegen();
begin
  insert into vault.secrets (id, secret, name, description, nonce)
  values (
    new_id,
    encode(vault._crypto_aead_det_encrypt(
      message := convert_to(new_secret, 'utf8'),
      additional := convert_to(new_id::text, 'utf8'),
      key_id := 0,
      context := 'pgsodium'::bytea,
      nonce := new_nonce
    ), 'base64'),
    new_name,
    new_description,
    new_nonce
  );
  return new_id;
end
$$;
comment on function vault.create_secret(text, text, text, uuid) is 'Stores a secret encrypted; returns its id.';

create or replace function vault.update_secret(
  secret_id uuid,
  new_secret text = null,
  new_name text = null,
  new_description text = null,
  -- unused, as in supabase_vault
  new_key_id uuid = null
) returns void
language plpgsql security definer set search_path = '' as $$
begin
  update vault.secrets s
  set
    secret = case when new_secret is null then s.secret
                  else encode(vault._crypto_aead_det_encrypt(
                    message := convert_to(new_secret, 'utf8'),
                    additional := convert_to(s.id::text, 'utf8'),
                    key_id := 0,
                    context := 'pgsodium'::bytea,
                    nonce := s.nonce
                  ), 'base64') end,
    name = coalesce(new_name, s.name),
    description = coalesce(new_description, s.description),
    updated_at = now()
  where s.id = secret_id;
end
$$;
comment on function vault.update_secret(uuid, text, text, text, uuid) is 'Changes the secret, name or description of a secret (null keeps the old value).';

-- Grants as supabase_vault plus Supabase's after-create script: postgres and
-- service_role may read, delete and manage secrets; nobody else may do anything.
revoke all on schema vault from public, anon, authenticated;
revoke all on all tables in schema vault from public, anon, authenticated, service_role;
revoke all on all functions in schema vault from public, anon, authenticated, service_role;
alter default privileges in schema vault revoke execute on functions from public;

grant usage on schema vault to postgres, service_role;
grant select, delete on vault.secrets, vault.decrypted_secrets to postgres, service_role;
grant execute on function vault.create_secret, vault.update_secret, vault._crypto_aead_det_decrypt
  to postgres, service_role;
