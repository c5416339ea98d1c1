/** What every Auth stand-in handler receives. */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AuthConfig } from "./config.ts";
import type { AuthDb } from "./db.ts";

export type AuthContext = { config: AuthConfig; db: AuthDb };

export type Handler = (ctx: AuthContext, req: IncomingMessage, res: ServerResponse, params: string[]) => Promise<void>;
