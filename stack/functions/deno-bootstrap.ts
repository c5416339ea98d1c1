/**
 * Runs inside Deno, not Node: `deno run ... deno-bootstrap.ts <entrypoint URL>`.
 *
 * Like Supabase's edge runtime, it takes over `Deno.serve` before importing the
 * function: whatever port or hostname the function asks for, it listens on a
 * free loopback port and announces it on stdout (one `READY_MARKER <port>`
 * line) for the Node runtime to proxy to. A function may also
 * `export default { fetch }` instead of calling `Deno.serve`, and may call
 * `EdgeRuntime.waitUntil()` for work that outlives the response.
 * When stdin closes (the Node runtime went away) the process exits, so a
 * crashed stack never leaves functions running.
 *
 * Written against a minimal local view of the Deno API so that the Node
 * type-check (tsc) accepts this file too.
 */

type Handler = (req: Request, info: unknown) => Response | Promise<Response>;
type ServeOptions = Record<string, unknown> & { handler?: Handler };
type Addr = { hostname: string; port: number };
type DenoApi = {
  args: string[];
  serve: (...args: unknown[]) => unknown;
  exit: (code?: number) => never;
  stdin: { readable: ReadableStream<Uint8Array> };
};

// The line prefix announcing the port; worker.ts looks for the same string.
const READY_MARKER = "__functions_runtime_listening__";

const deno = (globalThis as unknown as { Deno: DenoApi }).Deno;
const originalServe = deno.serve.bind(deno);
let served = false;

function serve(...args: unknown[]): unknown {
  const [a, b] = args;
  const options: ServeOptions = typeof a === "object" && a !== null ? { ...(a as ServeOptions) } : {};
  const handler = typeof a === "function" ? a : typeof b === "function" ? b : options.handler;
  if (typeof handler !== "function") throw new TypeError("Deno.serve() was called without a handler");
  if (served) throw new Error("Deno.serve() was called twice: an Edge Function serves exactly one handler");
  served = true;
  // The runtime owns the socket: no TLS, no unix socket, loopback only, any free port.
  for (const k of ["cert", "key", "path", "transport", "reusePort"]) delete options[k];
  return originalServe({
    ...options,
    handler,
    hostname: "127.0.0.1",
    port: 0,
    onListen: (addr: Addr) => console.log(`${READY_MARKER} ${addr.port}`),
  });
}

async function exitWhenParentGoes(): Promise<void> {
  try {
    const reader = deno.stdin.readable.getReader();
    while (!(await reader.read()).done) {
      // The runtime never writes to stdin; anything read is ignored.
    }
  } finally {
    deno.exit(0);
  }
}

// Supabase's `EdgeRuntime.waitUntil(promise)` keeps a worker alive for background work after
// the response. This process lives on anyway, so it only has to report failures.
const edgeRuntime = {
  waitUntil(promise: Promise<unknown>): void {
    promise.catch((err: unknown) => console.error("EdgeRuntime.waitUntil: background task failed:", err));
  },
};

async function main(): Promise<void> {
  const entrypoint = deno.args[0];
  if (!entrypoint) throw new Error("usage: deno-bootstrap.ts <entrypoint URL>");
  Object.defineProperty(deno, "serve", { value: serve, configurable: true, writable: true });
  Object.defineProperty(globalThis, "EdgeRuntime", { value: edgeRuntime, configurable: true });
  void exitWhenParentGoes();
  const mod = (await import(entrypoint)) as { default?: { fetch?: Handler } };
  if (served) return;
  const fetchHandler = mod.default?.fetch;
  if (typeof fetchHandler === "function") {
    serve(fetchHandler.bind(mod.default));
    return;
  }
  console.error(`${entrypoint} neither called Deno.serve() nor exported default { fetch }`);
  deno.exit(1);
}

await main();
