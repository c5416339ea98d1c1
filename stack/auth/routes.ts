/** The GoTrue endpoints the stand-in serves (paths relative to `/auth/v1`). */
import type { IncomingMessage, ServerResponse } from "node:http";
import { sendJson } from "../api-server.ts";
import * as account from "./account.ts";
import * as admin from "./admin.ts";
import type { AuthContext, Handler } from "./context.ts";
import { ERR } from "./errors.ts";
import * as user from "./user.ts";

type Route = { method: string; pattern: RegExp; handler: Handler };

const routes: Route[] = [
  { method: "GET", pattern: /^\/health\/?$/, handler: async (_c, _q, s) => sendJson(s, 200, HEALTH) },
  { method: "GET", pattern: /^\/settings\/?$/, handler: async (c, _q, s) => sendJson(s, 200, settings(c)) },
  { method: "POST", pattern: /^\/signup\/?$/, handler: account.signup },
  { method: "POST", pattern: /^\/token\/?$/, handler: account.token },
  { method: "GET", pattern: /^\/user\/?$/, handler: user.getUser },
  { method: "PUT", pattern: /^\/user\/?$/, handler: user.updateUser },
  { method: "POST", pattern: /^\/logout\/?$/, handler: user.logout },
  { method: "GET", pattern: /^\/admin\/users\/?$/, handler: admin.listUsers },
  { method: "POST", pattern: /^\/admin\/users\/?$/, handler: admin.createUser },
  { method: "GET", pattern: /^\/admin\/users\/([^/]+)\/?$/, handler: admin.getUser },
  { method: "PUT", pattern: /^\/admin\/users\/([^/]+)\/?$/, handler: admin.updateUser },
  { method: "DELETE", pattern: /^\/admin\/users\/([^/]+)\/?$/, handler: admin.deleteUser },
];

const HEALTH = {
  version: "stand-in",
  name: "GoTrue",
  description: "GoTrue is a user registration and authentication API",
};

const PROVIDERS = [
  "anonymous_users", "apple", "azure", "bitbucket", "discord", "facebook", "figma", "fly", "github", "gitlab",
  "google", "keycloak", "kakao", "linkedin", "linkedin_oidc", "notion", "spotify", "slack", "slack_oidc",
  "workos", "twitch", "twitter", "x", "zoom", "phone",
];

function settings(ctx: AuthContext): Record<string, unknown> {
  return {
    external: { ...Object.fromEntries(PROVIDERS.map((p) => [p, false])), email: ctx.config.emailSignup },
    disable_signup: ctx.config.disableSignup,
    mailer_autoconfirm: ctx.config.mailerAutoconfirm,
    phone_autoconfirm: false,
    sms_provider: "",
    saml_enabled: false,
  };
}

const CORS = {
  "access-control-allow-origin": "*",
  "access-control-allow-methods": "GET, POST, PUT, DELETE, OPTIONS",
  "access-control-allow-headers": "authorization, apikey, content-type, x-client-info, x-supabase-api-version",
  "access-control-expose-headers": "x-total-count, link, x-supabase-api-version",
};

/** Dispatch one request; an unknown path is a 404, a known path with another method a 405. */
export async function route(ctx: AuthContext, req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
  const method = req.method ?? "GET";
  for (const [k, v] of Object.entries(CORS)) res.setHeader(k, v);
  if (method === "OPTIONS") {
    res.writeHead(204, { "access-control-max-age": "3600" }).end();
    return;
  }
  let known = false;
  for (const r of routes) {
    const m = r.pattern.exec(path);
    if (!m) continue;
    known = true;
    if (r.method !== method) continue;
    await r.handler(ctx, req, res, m.slice(1).map((s) => decodeURIComponent(s)));
    return;
  }
  throw known ? ERR.methodNotAllowed() : ERR.notFound(path);
}
