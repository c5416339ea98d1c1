/** Input checks with GoTrue's rules and messages (internal/api/mail.go validateEmail, password.go). */
import type { AuthConfig } from "./config.ts";
import { ERR } from "./errors.ts";

// GoTrue's emailRegexp: the HTML living standard's valid e-mail address.
const EMAIL = /^[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;

/** The email, lower-cased as GoTrue stores it, or its 400/422 `validation_failed`. */
export function validateEmail(value: unknown): string {
  if (typeof value !== "string" || value === "") throw ERR.validation("An email address is required", 422);
  if (value.length > 255) throw ERR.validation("An email address is too long", 422);
  if (!EMAIL.test(value)) throw ERR.validation("Unable to validate email address: invalid format");
  return value.toLowerCase();
}

/** GoTrue's checkPasswordStrength with the local defaults (length only; bcrypt's 72-byte ceiling). */
export function validatePassword(config: AuthConfig, value: unknown): string {
  if (typeof value !== "string") throw ERR.validation("Password must be a string", 422);
  if (Buffer.byteLength(value) > 72) throw ERR.validation("Password cannot be longer than 72 characters", 422);
  if ([...value].length < config.passwordMinLength) throw ERR.weakPassword(config.passwordMinLength);
  return value;
}

/** An optional string field (absent or null: undefined); other types are GoTrue's `bad_json`. */
export function optionalString(body: Record<string, unknown>, key: string): string | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw ERR.badJson(`json: cannot unmarshal ${jsonType(v)} into Go struct field .${key} of type string`);
  return v;
}

/** An optional JSON object field (GoTrue's `map[string]interface{}`). */
export function optionalObject(body: Record<string, unknown>, key: string): Record<string, unknown> | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "object" || Array.isArray(v)) {
    throw ERR.badJson(`json: cannot unmarshal ${jsonType(v)} into Go struct field .${key} of type map[string]interface {}`);
  }
  return v as Record<string, unknown>;
}

export function optionalBoolean(body: Record<string, unknown>, key: string): boolean | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "boolean") throw ERR.badJson(`json: cannot unmarshal ${jsonType(v)} into Go struct field .${key} of type bool`);
  return v;
}

function jsonType(v: unknown): string {
  if (Array.isArray(v)) return "array";
  return typeof v === "object" ? "object" : typeof v;
}
