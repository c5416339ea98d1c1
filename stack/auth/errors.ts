/**
 * GoTrue's error responses (supabase/auth internal/api/errors.go). A request
 * carrying `X-Supabase-Api-Version: 2024-01-01` or later (auth-js always
 * sends it) gets `{ code: "<error_code>", message }` and the version echoed
 * back; older clients get `{ code: <status>, error_code, msg }`. Weak
 * passwords add `weak_password: { reasons }`; OAuth-style errors (a refresh
 * grant without a token) are `{ error, error_description }`.
 */

export class AuthApiError extends Error {
  constructor(
    readonly status: number,
    readonly errorCode: string,
    message: string,
    readonly extra: { reasons?: string[]; cause?: unknown } = {},
  ) {
    super(message, { cause: extra.cause });
  }

  render(apiVersion: number): Record<string, unknown> {
    const weak = this.extra.reasons ? { weak_password: { reasons: this.extra.reasons } } : {};
    if (apiVersion >= API_VERSION_2024_01_01) return { code: this.errorCode, message: this.message, ...weak };
    return { code: this.status, error_code: this.errorCode, msg: this.message, ...weak };
  }
}

/** `{ error, error_description }`, always status 400, as GoTrue's OAuthError. */
export class OAuthError extends Error {
  constructor(readonly error: string, readonly description: string) {
    super(`${error}: ${description}`);
  }
}

export const API_VERSION_2024_01_01 = Date.UTC(2024, 0, 1);

const e = (status: number, code: string, message: string, extra?: AuthApiError["extra"]) =>
  new AuthApiError(status, code, message, extra);

/** The errors the stand-in raises, with GoTrue's statuses, codes and messages. */
export const ERR = {
  badJson: (detail: string) => e(400, "bad_json", `Could not parse request body as JSON: ${detail}`),
  tooLarge: (limit: number) =>
    e(413, "validation_failed", `Request body is larger than the ${limit} bytes this endpoint accepts`),
  validation: (message: string, status = 400) => e(status, "validation_failed", message),
  noAuthorization: () => e(401, "no_authorization", "This endpoint requires a valid Bearer token"),
  badJwt: (detail: string) => e(403, "bad_jwt", `invalid JWT: unable to parse or verify signature, ${detail}`),
  missingSub: () => e(403, "bad_jwt", "invalid claim: missing sub claim"),
  notAdmin: () => e(403, "not_admin", "User not allowed"),
  userFromJwtMissing: () => e(403, "user_not_found", "User from sub claim in JWT does not exist"),
  sessionFromJwtMissing: () => e(403, "session_not_found", "Session from session_id claim in JWT does not exist"),
  userNotFound: () => e(404, "user_not_found", "User not found"),
  invalidCredentials: () => e(400, "invalid_credentials", "Invalid login credentials"),
  emailNotConfirmed: () => e(400, "email_not_confirmed", "Email not confirmed"),
  userBanned: (message = "User is banned") => e(400, "user_banned", message),
  userAlreadyExists: () => e(422, "user_already_exists", "User already registered"),
  emailExists: () => e(422, "email_exists", "A user with this email address has already been registered"),
  phoneExists: () => e(422, "phone_exists", "A user with this phone number has already been registered"),
  weakPassword: (min: number) => e(422, "weak_password", `Password should be at least ${min} characters.`, { reasons: ["length"] }),
  samePassword: () => e(422, "same_password", "New password should be different from the old password."),
  signupDisabled: () => e(422, "signup_disabled", "Signups not allowed for this instance"),
  emailProviderDisabled: (what: "signups" | "logins") =>
    e(what === "signups" ? 422 : 400, "email_provider_disabled", `Email ${what} are disabled`),
  phoneProviderDisabled: (what: "signups" | "logins") =>
    e(what === "signups" ? 422 : 400, "phone_provider_disabled", `Phone ${what} are disabled`),
  refreshTokenNotFound: () => e(400, "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found"),
  refreshTokenAlreadyUsed: () => e(400, "refresh_token_already_used", "Invalid Refresh Token: Already Used"),
  refreshSessionMissing: () => e(400, "session_not_found", "Invalid Refresh Token: No Valid Session Found"),
  refreshSessionExpired: () => e(400, "session_expired", "Invalid Refresh Token: Session Expired"),
  unsupportedGrant: () => e(400, "invalid_credentials", "unsupported_grant_type"),
  notFound: (path: string) => e(404, "not_found", `Route ${path} not found`),
  methodNotAllowed: () => e(405, "method_not_allowed", "Method not allowed"),
  unexpected: (cause: unknown) =>
    e(500, "unexpected_failure", "Unexpected failure, please check server logs for more information", { cause }),
};
