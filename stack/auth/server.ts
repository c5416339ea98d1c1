/**
 * STAND-IN for GoTrue, Supabase Auth (embedded stack only; docs/standins/auth.md).
 * Serves the endpoints supabase-js's auth-js uses under `/auth/v1` on the
 * gateway, on GoTrue's own tables in schema `auth` (sql/platform/10_auth.sql),
 * with GoTrue's request and response shapes, status codes and error bodies.
 */
import type { RouteHandler } from "../api-server.ts";
import { loadAuthConfig, type AuthConfig } from "./config.ts";
import type { AuthContext } from "./context.ts";
import { AuthDb } from "./db.ts";
import { sendError } from "./http.ts";
import { route } from "./routes.ts";

export type AuthServerOptions = {
  dbUrl: string;
  jwtSecret: string;
  apiUrl: string;
  /** Settings to use instead of supabase/config.toml's (tests of other configurations). */
  overrides?: Partial<AuthConfig>;
};

/** Start the Auth stand-in; mount `handler` at `/auth/v1` (it receives the path after that prefix). */
export function startAuthServer(o: AuthServerOptions): { handler: RouteHandler; close: () => Promise<void> } {
  const db = new AuthDb(o.dbUrl);
  const config = { ...loadAuthConfig({ apiUrl: o.apiUrl, jwtSecret: o.jwtSecret }), ...o.overrides };
  const ctx: AuthContext = { db, config };
  const handler: RouteHandler = async (req, res, path) => {
    try {
      await route(ctx, req, res, path);
    } catch (e) {
      sendError(req, res, e);
    }
  };
  return { handler, close: () => db.close() };
}
