/**
 * A fake operator backend for the simulator to talk to over real HTTP on
 * 127.0.0.1: it serves datasets (as a signed Storage URL would), receives
 * webhook events (verifying their Standard Webhooks signature), hands out
 * signed upload URLs on a signed request, and stores the PUT artifacts.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { verifyWebhook } from "../../../functions/_shared/webhooks.ts";
import {
  type GpuWebhookEvent,
  GpuWebhookEventSchema,
  type UploadUrlsRequest,
  UploadUrlsRequestSchema,
} from "../../../types/gpu-cluster.ts";

export type ReceivedEvent = { webhookId: string; event: GpuWebhookEvent };

export type FakeBackend = {
  url: string;
  webhookUrl: string;
  uploadUrlsUrl: string;
  /** Serve `body` at the returned URL. */
  dataset(name: string, body: string): string;
  /** Verified events in arrival order (duplicates included). */
  events: ReceivedEvent[];
  /** Requests rejected for a bad signature or body. */
  rejected: Array<{ path: string; reason: string }>;
  uploadRequests: UploadUrlsRequest[];
  /** A single-use signed upload URL for `key`, as `/upload-urls` hands out. */
  signedUploadUrl(key: string): string;
  /** Stored artifacts by `{job_id}/{path}`. */
  objects: Map<string, { bytes: Uint8Array; contentType: string }>;
  close(): Promise<void>;
};

async function body(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function headersOf(req: IncomingMessage): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(req.headers)) out[k] = Array.isArray(v) ? v.join(", ") : v;
  return out;
}

export async function startFakeBackend(opts: { webhookSecret: string }): Promise<FakeBackend> {
  const datasets = new Map<string, string>();
  const tokens = new Map<string, string>(); // object key -> token
  const backend = {
    events: [] as ReceivedEvent[],
    rejected: [] as Array<{ path: string; reason: string }>,
    uploadRequests: [] as UploadUrlsRequest[],
    objects: new Map<string, { bytes: Uint8Array; contentType: string }>(),
  };
  let base = "";
  const sign = (key: string) => {
    const token = crypto.randomUUID();
    tokens.set(key, token);
    return `${base}/objects/${key}?token=${token}`;
  };

  async function verified(req: IncomingMessage, res: ServerResponse, path: string): Promise<unknown> {
    const raw = (await body(req)).toString("utf8");
    try {
      await verifyWebhook(opts.webhookSecret, raw, headersOf(req));
      return JSON.parse(raw);
    } catch (err) {
      backend.rejected.push({ path, reason: (err as Error).message });
      res.writeHead(401).end();
      return undefined;
    }
  }

  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? "/", "http://backend");
      if (req.method === "GET" && url.pathname.startsWith("/datasets/")) {
        const data = datasets.get(url.pathname.slice("/datasets/".length));
        if (data === undefined) return res.writeHead(404).end();
        return res.writeHead(200, { "content-type": "application/x-ndjson" }).end(data);
      }
      if (req.method === "POST" && url.pathname === "/webhook") {
        const json = await verified(req, res, url.pathname);
        if (json === undefined) return;
        const event = GpuWebhookEventSchema.safeParse(json);
        if (!event.success) {
          backend.rejected.push({ path: url.pathname, reason: event.error.message });
          return res.writeHead(400).end();
        }
        backend.events.push({ webhookId: String(req.headers["webhook-id"]), event: event.data });
        return res.writeHead(204).end();
      }
      if (req.method === "POST" && url.pathname === "/upload-urls") {
        const json = await verified(req, res, url.pathname);
        if (json === undefined) return;
        const request = UploadUrlsRequestSchema.parse(json);
        backend.uploadRequests.push(request);
        const uploads = request.files.map((f) => ({ path: f.path, signed_url: sign(`${request.job_id}/${f.path}`) }));
        return res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ uploads }));
      }
      if (req.method === "PUT" && url.pathname.startsWith("/objects/")) {
        const key = url.pathname.slice("/objects/".length);
        if (!tokens.has(key) || tokens.get(key) !== url.searchParams.get("token")) return res.writeHead(403).end();
        tokens.delete(key); // single use, like a signed upload URL
        const bytes = new Uint8Array(await body(req));
        backend.objects.set(key, { bytes, contentType: String(req.headers["content-type"]) });
        return res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ Key: key }));
      }
      res.writeHead(404).end();
    })().catch(() => res.writeHead(500).end());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    ...backend,
    url: base,
    webhookUrl: `${base}/webhook`,
    uploadUrlsUrl: `${base}/upload-urls`,
    signedUploadUrl: sign,
    dataset(name, data) {
      datasets.set(name, data);
      return `${base}/datasets/${name}`;
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
