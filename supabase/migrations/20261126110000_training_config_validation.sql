-- Training configuration contract, database side.
--
-- private.training_config_errors() checks a requested configuration
-- (training_jobs.requested_config) against its base model and returns every
-- problem as {code, path, message}; a before-insert trigger on training_jobs
-- rejects an invalid request with the first one, and
-- public.validate_training_config() lets clients check before inserting.
-- types/training-config.ts is the TypeScript twin (same codes, paths, messages
-- and order); tests/db/training-config.property.test.ts proves they agree, so
-- change both together. Codes LT101-LT109: docs/ERRORS.md.
--
-- Numbers are read as JavaScript reads JSON (an IEEE double): 2.0 is the
-- integer 2, 1e400 is Infinity (not a valid number), and messages print
-- numbers as JavaScript's String(n) does.

create function private.training_config_error(p_code text, p_path jsonb, p_message text)
returns jsonb
language sql immutable
set search_path = ''
as $$
  select jsonb_build_object('code', p_code, 'path', p_path, 'message', p_message)
$$;
comment on function private.training_config_error(text, jsonb, text) is
  'One training configuration problem: {code (LT1xx), path (array of keys and indexes), message}.';

create function private.training_config_reads_as(p_decimal text, p_value double precision)
returns boolean
language plpgsql immutable
set search_path = ''
as $$
begin
  return p_decimal::double precision = p_value;
exception when numeric_value_out_of_range then
  return false; -- beyond the double range
end
$$;
comment on function private.training_config_reads_as(text, double precision) is
  'Whether a decimal string reads back as exactly p_value (correct rounding, as JavaScript''s Number()); false when out of range.';

create function private.training_config_number_text(p_value double precision)
returns text
language plpgsql immutable strict
set search_path = ''
as $$
declare
  v_bits bigint;
  v_mantissa numeric;
  v_exp2 integer;
  v_base numeric;
  v_power numeric := 1;
  v_i integer;
  v_exact text;    -- significant digits of |p_value|, exactly
  v_point integer; -- |p_value| = 0.<v_exact> * 10^v_point
  v_rest text;
  v_floor numeric;
  v_ceil numeric;
  v_floor_ok boolean;
  v_ceil_ok boolean;
  v_pick numeric;
  v_digits text;
  v_n integer;     -- ECMAScript's n: |p_value| = 0.<v_digits> * 10^v_n
  v_k integer;
  v_body text;
begin
  if p_value = 0 then
    return '0'; -- also -0, as JavaScript prints it
  elsif p_value in ('Infinity'::double precision, '-Infinity'::double precision, 'NaN'::double precision) then
    return p_value::text;
  end if;
  -- Postgres's own output is not always the shortest (e.g. 3.9583170794542464e+16 where JavaScript
  -- prints 39583170794542460), so compute the digits as ECMA-262 Number::toString does, from the
  -- exact value mantissa * 2^exp2 read from the IEEE 754 bits.
  v_bits := ('x' || encode(float8send(abs(p_value)), 'hex'))::bit(64)::bigint;
  v_mantissa := v_bits & 4503599627370495;
  if v_bits >> 52 = 0 then
    v_exp2 := -1074; -- subnormal
  else
    v_mantissa := v_mantissa + 4503599627370496;
    v_exp2 := (v_bits >> 52)::integer - 1075;
  end if;
  -- mantissa * 2^exp2 = mantissa * 5^-exp2 * 10^exp2 when exp2 < 0; numeric power() is not exact, so square and multiply.
  v_base := case when v_exp2 >= 0 then 2 else 5 end;
  v_i := abs(v_exp2);
  while v_i > 0 loop
    if v_i % 2 = 1 then
      v_power := v_power * v_base;
    end if;
    v_base := v_base * v_base;
    v_i := v_i / 2;
  end loop;
  v_exact := (v_mantissa * v_power)::text;
  v_point := length(v_exact) + least(v_exp2, 0);
  v_exact := rtrim(v_exact, '0');
  -- The shortest k-digit decimal that reads back as the value; only the two k-digit neighbours of the
  -- exact value can, and of two the closer wins, then the even one.
  for v_len in 1 .. 17 loop
    v_floor := left(v_exact, v_len)::numeric;
    v_rest := substr(v_exact, v_len + 1);
    v_ceil := case when v_rest = '' then v_floor else v_floor + 1 end;
    if v_point - v_len between -300 and 290 then
      v_floor_ok := (v_floor::text || 'e' || (v_point - v_len))::double precision = abs(p_value);
      v_ceil_ok := (v_ceil::text || 'e' || (v_point - v_len))::double precision = abs(p_value);
    else
      v_floor_ok := private.training_config_reads_as(v_floor::text || 'e' || (v_point - v_len), abs(p_value));
      v_ceil_ok := private.training_config_reads_as(v_ceil::text || 'e' || (v_point - v_len), abs(p_value));
    end if;
    if v_floor_ok or v_ceil_ok then
      v_pick := case
        when not v_ceil_ok or v_rest = '' then v_floor
        when not v_floor_ok then v_ceil
        when ('0.' || v_rest)::numeric < 0.5 then v_floor
        when ('0.' || v_rest)::numeric > 0.5 then v_ceil
        when v_floor % 2 = 0 then v_floor
        else v_ceil
      end;
      v_k := v_len;
      exit;
    end if;
  end loop;
  v_n := v_point - v_k + length(v_pick::text);
  v_digits := rtrim(v_pick::text, '0');
  v_k := length(v_digits);
  -- Layout, ECMA-262 Number::toString steps 6-10.
  v_body := case
    when v_k <= v_n and v_n <= 21 then v_digits || repeat('0', v_n - v_k)
    when 0 < v_n and v_n <= 21 then left(v_digits, v_n) || '.' || substr(v_digits, v_n + 1)
    when -6 < v_n and v_n <= 0 then '0.' || repeat('0', -v_n) || v_digits
    else left(v_digits, 1) || case when v_k > 1 then '.' || substr(v_digits, 2) else '' end
      || 'e' || case when v_n >= 1 then '+' else '-' end || abs(v_n - 1)::text
  end;
  return case when p_value < 0 then '-' || v_body else v_body end;
end
$$;
comment on function private.training_config_number_text(double precision) is
  'A number as JavaScript''s String(n) prints it, so messages read the same in SQL and in types/training-config.ts.';

create function private.training_config_float(p_value jsonb)
returns double precision
language plpgsql immutable
set search_path = ''
as $$
declare
  v_number numeric;
begin
  if jsonb_typeof(p_value) is distinct from 'number' then
    return null;
  end if;
  v_number := p_value::numeric;
  if v_number <> 0 and (abs(v_number) > 1e308 or abs(v_number) < 1e-307) then
    begin
      return v_number::double precision;
    exception when numeric_value_out_of_range then
      -- JSON.parse overflows to Infinity and underflows to 0.
      return case when abs(v_number) < 1 then 0
                  when v_number > 0 then 'Infinity'::double precision
                  else '-Infinity'::double precision end;
    end;
  end if;
  return v_number::double precision;
end
$$;
comment on function private.training_config_float(jsonb) is
  'A JSON number as JSON.parse reads it (nearest double; overflow is Infinity); null for non-numbers.';

create function private.training_config_describe(p_value jsonb)
returns text
language sql immutable
set search_path = ''
as $$
  select case jsonb_typeof(p_value)
    when 'number' then private.training_config_number_text(private.training_config_float(p_value))
    when 'array' then 'an array'
    when 'object' then 'an object'
    else p_value::text -- strings JSON-quoted (as JSON.stringify), true, false, null
  end
$$;
comment on function private.training_config_describe(jsonb) is
  'A JSON value as training configuration messages quote it.';

create function private.training_config_unknown_keys(p_object jsonb, p_path jsonb, p_allowed text[])
returns jsonb
language sql immutable
set search_path = ''
as $$
  select coalesce(jsonb_agg(private.training_config_error('LT101', p_path || to_jsonb(k.key),
           'Unknown key ' || to_jsonb(k.key)::text) order by k.key collate "C"), '[]'::jsonb)
  from jsonb_object_keys(p_object) as k(key)
  where k.key <> all (p_allowed)
$$;
comment on function private.training_config_unknown_keys(jsonb, jsonb, text[]) is
  'LT101 for each key of p_object not in p_allowed, ordered by code point.';

create function private.training_config_check_number(
  p_object jsonb, p_path jsonb, p_key text, p_label text,
  p_integer boolean default false, p_auto boolean default false, p_nullable boolean default false,
  p_bounds jsonb default null, p_min double precision default null, p_max double precision default null,
  p_min_exclusive boolean default false, p_model_id text default null)
returns jsonb
language plpgsql immutable
set search_path = ''
as $$
declare
  v_value jsonb := p_object -> p_key;
  v_path jsonb := p_path || to_jsonb(p_key);
  v_number double precision := private.training_config_float(v_value);
  v_min double precision := coalesce(p_min, private.training_config_float(p_bounds -> 'min'));
  v_max double precision := coalesce(p_max, private.training_config_float(p_bounds -> 'max'));
  v_for text := coalesce(' for ' || to_jsonb(p_model_id)::text, '');
begin
  if v_value is null or (p_auto and v_value = '"auto"') or (p_nullable and v_value = 'null') then
    return '[]'::jsonb;
  elsif v_number is null or abs(v_number) = 'Infinity' or (p_integer and v_number <> trunc(v_number)) then
    return jsonb_build_array(private.training_config_error('LT102', v_path, format('%s must be %s%s%s, got %s',
      p_label, case when p_integer then 'an integer' else 'a number' end,
      case when p_auto then ' or "auto"' else '' end, case when p_nullable then ' or null' else '' end,
      private.training_config_describe(v_value))));
  elsif v_number < v_min or (p_min_exclusive and v_number = v_min) then
    return jsonb_build_array(private.training_config_error('LT103', v_path, format(
      case when p_min_exclusive then '%s %s must be greater than %s%s' else '%s %s is below the minimum %s%s' end,
      p_label, private.training_config_number_text(v_number), private.training_config_number_text(v_min), v_for)));
  elsif v_number > v_max then
    return jsonb_build_array(private.training_config_error('LT103', v_path, format('%s %s is above the maximum %s%s',
      p_label, private.training_config_number_text(v_number), private.training_config_number_text(v_max), v_for)));
  end if;
  return '[]'::jsonb;
end
$$;
comment on function private.training_config_check_number(jsonb, jsonb, text, text, boolean, boolean, boolean, jsonb, double precision, double precision, boolean, text) is
  'LT102/LT103 for p_object->p_key: a finite number (integer if p_integer; "auto"/null when allowed) within p_min..p_max or p_bounds {min, max}.';

create function private.training_config_check_choice(
  p_object jsonb, p_path jsonb, p_key text, p_label text, p_allowed text[], p_not_yet text[] default '{}')
returns jsonb
language plpgsql immutable
set search_path = ''
as $$
declare
  v_value jsonb := p_object -> p_key;
  v_text text := case when jsonb_typeof(v_value) = 'string' then v_value #>> '{}' end;
begin
  if v_value is null or v_text = any (p_allowed) then
    return '[]'::jsonb;
  elsif v_text = any (p_not_yet) then
    return jsonb_build_array(private.training_config_error('LT105', p_path || to_jsonb(p_key),
      format('%s %s is not supported yet; use %s', p_label, v_value::text,
        (select string_agg(to_jsonb(a)::text, ' or ' order by o) from unnest(p_allowed) with ordinality as u(a, o)))));
  end if;
  return jsonb_build_array(private.training_config_error(case when v_text is null then 'LT102' else 'LT107' end,
    p_path || to_jsonb(p_key), format('%s must be one of %s, got %s', p_label,
      (select string_agg(to_jsonb(a)::text, ', ' order by o) from unnest(p_allowed) with ordinality as u(a, o)),
      private.training_config_describe(v_value))));
end
$$;
comment on function private.training_config_check_choice(jsonb, jsonb, text, text, text[], text[]) is
  'LT102/LT105/LT107 for p_object->p_key: one of p_allowed; values in p_not_yet are planned but not supported yet.';

create function private.training_config_check_boolean(p_object jsonb, p_path jsonb, p_key text, p_label text)
returns jsonb
language sql immutable
set search_path = ''
as $$
  select case when p_object -> p_key is null or jsonb_typeof(p_object -> p_key) = 'boolean' then '[]'::jsonb
    else jsonb_build_array(private.training_config_error('LT102', p_path || to_jsonb(p_key),
      format('%s must be true or false, got %s', p_label, private.training_config_describe(p_object -> p_key))))
  end
$$;
comment on function private.training_config_check_boolean(jsonb, jsonb, text, text) is
  'LT102 for p_object->p_key unless it is true or false.';

create function private.training_config_check_target_modules(
  p_lora jsonb, p_allowed text[], p_model_id text)
returns jsonb
language plpgsql immutable
set search_path = ''
as $$
declare
  v_value jsonb := p_lora -> 'target_modules';
  v_path jsonb := '["lora", "target_modules"]'::jsonb;
  v_allowed text[] := coalesce(p_allowed, '{}'::text[]);
  v_errors jsonb := '[]'::jsonb;
  v_seen text[] := '{}'::text[];
  v_item record;
begin
  if v_value is null or v_value = '"auto"' then
    return '[]'::jsonb;
  elsif jsonb_typeof(v_value) <> 'array' then
    return jsonb_build_array(private.training_config_error('LT102', v_path,
      'Target modules must be a list of module names or "auto", got ' || private.training_config_describe(v_value)));
  elsif jsonb_array_length(v_value) = 0 then
    return jsonb_build_array(private.training_config_error('LT108', v_path,
      'Target modules must list at least one module, or be "auto"'));
  end if;
  for v_item in
    select e.value, e.n - 1 as i, e.value #>> '{}' as name
    from jsonb_array_elements(v_value) with ordinality as e(value, n) order by e.n
  loop
    if jsonb_typeof(v_item.value) <> 'string' then
      v_errors := v_errors || private.training_config_error('LT102', v_path || to_jsonb(v_item.i),
        'Target module must be a string, got ' || private.training_config_describe(v_item.value));
      continue;
    elsif v_item.name <> all (v_allowed) then
      v_errors := v_errors || private.training_config_error('LT104', v_path || to_jsonb(v_item.i),
        format('Target module %s is not allowed for %s; allowed: %s', v_item.value::text, to_jsonb(p_model_id)::text,
          (select coalesce(string_agg(to_jsonb(a)::text, ', ' order by o), '') from unnest(v_allowed) with ordinality as u(a, o))));
    elsif v_item.name = any (v_seen) then
      v_errors := v_errors || private.training_config_error('LT108', v_path || to_jsonb(v_item.i),
        format('Target module %s is listed more than once', v_item.value::text));
    end if;
    v_seen := v_seen || v_item.name;
  end loop;
  return v_errors;
end
$$;
comment on function private.training_config_check_target_modules(jsonb, text[], text) is
  'LT102/LT104/LT108 for lora.target_modules: "auto" or a non-empty list of distinct modules the model allows.';

create function private.training_config_errors(p_base_model_id text, p_config jsonb)
returns jsonb
language plpgsql stable
set search_path = ''
as $$
declare
  v_model record;
  v_hp jsonb;
  v_lora jsonb := p_config -> 'lora';
  v_validation jsonb := p_config -> 'validation';
  v_errors jsonb;
begin
  select b.id, b.hyperparameters, b.max_lora_rank, b.lora_target_modules
    into v_model
    from public.base_models as b
   where b.id = p_base_model_id and b.enabled;
  if not found then
    return jsonb_build_array(private.training_config_error('LT106', '[]',
      format('Base model %sdoes not exist or is not enabled', to_jsonb(p_base_model_id)::text || ' ')));
  elsif jsonb_typeof(p_config) is distinct from 'object' then
    return jsonb_build_array(private.training_config_error('LT102', '[]',
      'Configuration must be a JSON object, got ' || coalesce(private.training_config_describe(p_config), 'null')));
  end if;
  v_hp := coalesce(v_model.hyperparameters, '{}');

  -- Report order: unknown keys first, then the keys in this order (types/training-config.ts CONFIG_KEYS).
  v_errors := private.training_config_unknown_keys(p_config, '[]', array[
      'method', 'epochs', 'learning_rate', 'batch_size', 'gradient_accumulation_steps', 'warmup_ratio',
      'lr_scheduler', 'max_seq_length', 'seed', 'lora', 'quantization', 'validation', 'eval_every_steps',
      'checkpoint_every_steps', 'early_stopping_patience', 'suffix'])
    || private.training_config_check_choice(p_config, '[]', 'method', 'Method', '{sft}', p_not_yet => '{dpo}')
    || private.training_config_check_number(p_config, '[]', 'epochs', 'Epochs', p_integer => true, p_auto => true,
         p_bounds => v_hp -> 'epochs', p_model_id => v_model.id)
    || private.training_config_check_number(p_config, '[]', 'learning_rate', 'Learning rate', p_auto => true,
         p_bounds => v_hp -> 'learning_rate', p_model_id => v_model.id)
    || private.training_config_check_number(p_config, '[]', 'batch_size', 'Batch size', p_integer => true, p_auto => true,
         p_bounds => v_hp -> 'batch_size', p_model_id => v_model.id)
    || private.training_config_check_number(p_config, '[]', 'gradient_accumulation_steps', 'Gradient accumulation steps',
         p_integer => true, p_bounds => v_hp -> 'gradient_accumulation_steps', p_model_id => v_model.id)
    || private.training_config_check_number(p_config, '[]', 'warmup_ratio', 'Warmup ratio',
         p_bounds => v_hp -> 'warmup_ratio', p_model_id => v_model.id)
    || private.training_config_check_choice(p_config, '[]', 'lr_scheduler', 'LR scheduler',
         '{linear,cosine,constant,cosine_with_restarts}')
    || private.training_config_check_number(p_config, '[]', 'max_seq_length', 'Max sequence length', p_integer => true,
         p_auto => true, p_bounds => v_hp -> 'max_seq_length', p_model_id => v_model.id)
    || private.training_config_check_number(p_config, '[]', 'seed', 'Seed', p_integer => true,
         p_min => 0, p_max => 2147483647);

  if v_lora is not null and jsonb_typeof(v_lora) <> 'object' then
    v_errors := v_errors || private.training_config_error('LT102', '["lora"]',
      'LoRA settings must be an object, got ' || private.training_config_describe(v_lora));
  elsif v_lora is not null then
    v_errors := v_errors
      || private.training_config_unknown_keys(v_lora, '["lora"]',
           '{rank,alpha,dropout,target_modules,use_rslora,use_dora}')
      || private.training_config_check_number(v_lora, '["lora"]', 'rank', 'LoRA rank', p_integer => true, p_auto => true,
           p_min => 1, p_max => v_model.max_lora_rank, p_model_id => v_model.id)
      || private.training_config_check_number(v_lora, '["lora"]', 'alpha', 'LoRA alpha', p_auto => true,
           p_bounds => v_hp -> 'lora_alpha', p_model_id => v_model.id)
      || private.training_config_check_number(v_lora, '["lora"]', 'dropout', 'LoRA dropout',
           p_bounds => v_hp -> 'lora_dropout', p_model_id => v_model.id)
      || private.training_config_check_target_modules(v_lora, v_model.lora_target_modules, v_model.id)
      || private.training_config_check_boolean(v_lora, '["lora"]', 'use_rslora', 'Use rsLoRA')
      || private.training_config_check_boolean(v_lora, '["lora"]', 'use_dora', 'Use DoRA');
  end if;

  v_errors := v_errors
    || private.training_config_check_choice(p_config, '[]', 'quantization', 'Quantization', '{none,4bit}');

  if v_validation is not null and jsonb_typeof(v_validation) <> 'object' then
    v_errors := v_errors || private.training_config_error('LT102', '["validation"]',
      'Validation settings must be an object, got ' || private.training_config_describe(v_validation));
  elsif v_validation is not null then
    v_errors := v_errors
      || private.training_config_unknown_keys(v_validation, '["validation"]', '{split_fraction}')
      || private.training_config_check_number(v_validation, '["validation"]', 'split_fraction',
           'Validation split fraction', p_min => 0, p_min_exclusive => true, p_max => 0.5);
  end if;

  v_errors := v_errors
    || private.training_config_check_number(p_config, '[]', 'eval_every_steps', 'Eval every steps',
         p_integer => true, p_nullable => true, p_min => 1)
    || private.training_config_check_number(p_config, '[]', 'checkpoint_every_steps', 'Checkpoint every steps',
         p_integer => true, p_nullable => true, p_min => 1)
    || private.training_config_check_number(p_config, '[]', 'early_stopping_patience', 'Early stopping patience',
         p_integer => true, p_nullable => true, p_min => 0);

  if jsonb_typeof(p_config -> 'suffix') <> 'string' then
    v_errors := v_errors || private.training_config_error('LT102', '["suffix"]',
      'Suffix must be a string, got ' || private.training_config_describe(p_config -> 'suffix'));
  elsif not (p_config ->> 'suffix') ~ ('^[a-z0-9-]{1,40}$' collate "C") then
    v_errors := v_errors || private.training_config_error('LT109', '["suffix"]',
      'Suffix must be 1 to 40 characters of a-z, 0-9 and "-", got ' || (p_config -> 'suffix')::text);
  end if;
  return v_errors;
end
$$;
comment on function private.training_config_errors(text, jsonb) is
  'Every problem with a requested training configuration for an enabled base model, as a JSON array of {code, path, message} (LT101-LT109, docs/ERRORS.md); [] when valid. Twin of trainingConfigErrors() in types/training-config.ts.';

create function private.tg_training_jobs__validate_config()
returns trigger
language plpgsql
-- Definer: the inserting client role has no usage on schema private.
security definer
set search_path = ''
as $$
declare
  v_errors jsonb := private.training_config_errors(new.base_model_id, new.requested_config);
  v_first jsonb := v_errors -> 0;
begin
  if v_first is not null then
    raise exception using
      errcode = v_first ->> 'code',
      message = v_first ->> 'message',
      detail = v_errors::text,
      hint = case v_first ->> 'code'
        when 'LT106' then 'Choose an enabled model: select id from public.base_models where enabled'
        when 'LT101' then 'Check the key''s spelling; the accepted keys are listed in docs/ERRORS.md (LT101)'
        else 'The detail lists every problem as JSON; public.validate_training_config() checks a configuration without inserting'
      end;
  end if;
  return new;
end
$$;
comment on function private.tg_training_jobs__validate_config() is
  'Rejects a training job whose requested_config is invalid for its base model: raises the first problem with its LT1xx code as SQLSTATE and all of them as JSON in the detail.';

create trigger _300_validate_config
  before insert on public.training_jobs
  for each row execute function private.tg_training_jobs__validate_config();
comment on trigger _300_validate_config on public.training_jobs is
  'Validates requested_config against the base model (private.training_config_errors).';

create function public.validate_training_config(base_model_id text, config jsonb)
returns jsonb
language sql stable
-- Definer: reads only enabled rows of base_models (a public catalog) through a
-- helper in schema private, which client roles cannot use.
security definer
set search_path = ''
as $$
  select private.training_config_errors(base_model_id, config)
$$;
comment on function public.validate_training_config(text, jsonb) is
  'Checks a training configuration for a base model without creating a job: returns [] when valid, else every problem as {code, path, message} (codes LT101-LT109). Same rules as the insert trigger on training_jobs.';

revoke all on function private.training_config_error(text, jsonb, text) from public;
revoke all on function private.training_config_reads_as(text, double precision) from public;
revoke all on function private.training_config_number_text(double precision) from public;
revoke all on function private.training_config_float(jsonb) from public;
revoke all on function private.training_config_describe(jsonb) from public;
revoke all on function private.training_config_unknown_keys(jsonb, jsonb, text[]) from public;
revoke all on function private.training_config_check_number(jsonb, jsonb, text, text, boolean, boolean, boolean, jsonb, double precision, double precision, boolean, text) from public;
revoke all on function private.training_config_check_choice(jsonb, jsonb, text, text, text[], text[]) from public;
revoke all on function private.training_config_check_boolean(jsonb, jsonb, text, text) from public;
revoke all on function private.training_config_check_target_modules(jsonb, text[], text) from public;
revoke all on function private.training_config_errors(text, jsonb) from public;
revoke all on function private.tg_training_jobs__validate_config() from public;
revoke all on function public.validate_training_config(text, jsonb) from public, anon;
grant execute on function public.validate_training_config(text, jsonb) to authenticated, service_role;
