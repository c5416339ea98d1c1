/**
 * The stack's API gateway on one port, laid out like Supabase's Kong:
 * HTTP routes by prefix (`/rest/v1`, `/auth/v1` GoTrue stand-in, `/storage/v1`
 * Storage stand-in, `/functions/v1` Deno functions), and WebSocket upgrades
 * by prefix (`/realtime/v1` -> the Realtime stand-in).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Duplex } from "node:stream";

export type RouteHandler = (req: IncomingMessage, res: ServerResponse, path: string) => Promise<void>;

export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer, path: string) => void;

export type ApiServer = { server: Server; close: () => Promise<void> };

/** Start the gateway; `routes` maps a prefix such as `/storage/v1` to its handler. */
export async function startApiServer(
  port: number,
  routes: Record<string, RouteHandler>,
  upgrades: Record<string, UpgradeHandler> = {},
): Promise<ApiServer> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const prefix = Object.keys(routes).find((p) => url.pathname === p || url.pathname.startsWith(`${p}/`));
    if (!prefix) {
      sendJson(res, 404, { error: { code: "not_found", message: `No service at "${url.pathname}"` } });
      return;
    }
    routes[prefix]!(req, res, url.pathname.slice(prefix.length) || "/").catch((err: unknown) => {
      if (!res.headersSent) {
        sendJson(res, 500, { error: { code: "internal_error", message: (err as Error).message } });
      } else {
        res.destroy(err as Error);
      }
    });
  });
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const prefix = Object.keys(upgrades).find((p) => url.pathname.startsWith(`${p}/`));
    if (!prefix) {
      socket.end("HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
      return;
    }
    upgrades[prefix]!(req, socket, head, url.pathname.slice(prefix.length));
  });
  await new Promise<void>((ok, fail) => {
    server.once("error", fail);
    server.listen(port, "127.0.0.1", () => ok());
  });
  return {
    server,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}

/** Write a JSON response. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers });
  res.end(text);
}
