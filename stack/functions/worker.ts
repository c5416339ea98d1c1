/**
 * One Edge Function as one real Deno process, started on demand.
 *
 * The process runs deno-bootstrap.ts, which imports the function's entrypoint
 * with `Deno.serve` redirected to a free loopback port and prints that port.
 * The first request boots the process (as Supabase's edge runtime creates a
 * worker on the first request) and later requests reuse it. If the process
 * dies, or a request to it fails at the connection level, it is discarded and
 * the next request boots a new one. Each process leads its own process group,
 * which `stop()` kills as a whole.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { basename, dirname, resolve } from "node:path";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import type { FunctionSpec } from "./config.ts";

// deno-bootstrap.ts prints this prefix followed by the port it listens on.
const READY_MARKER = "__functions_runtime_listening__";
const BOOTSTRAP = resolve(import.meta.dirname, "deno-bootstrap.ts");

export type WorkerOptions = {
  spec: FunctionSpec;
  /** Project root: cwd of the process, readable by the function, home of node_modules/.bin/deno. */
  root: string;
  /** The function's complete environment (nothing else from the parent leaks in). */
  env: Record<string, string>;
  /** Receives every line the function prints, and lifecycle notes. */
  log: (line: string) => void;
  /** How long a process may take from spawn to listening. */
  bootTimeoutMs?: number;
};

/** The function could not be started (import failed, threw at start-up, never served, timed out). */
export class BootError extends Error {}

/** A running process a request may be sent to. */
export type Lease = { port: number; pid: number };

export class FunctionWorker {
  readonly spec: FunctionSpec;
  readonly #opts: WorkerOptions;
  #child: ChildProcess | undefined;
  #lease: Promise<Lease> | undefined;
  #stopped = false;

  constructor(opts: WorkerOptions) {
    this.spec = opts.spec;
    this.#opts = opts;
  }

  /** A running process for this function, booting one if none is running. Concurrent callers share a boot. */
  acquire(): Promise<Lease> {
    if (this.#stopped) return Promise.reject(new BootError(`Function "${this.spec.slug}" is stopped`));
    this.#lease ??= this.#boot();
    return this.#lease;
  }

  /** Forget the process `pid` (a request to it failed) and kill it, so the next request boots a fresh one. */
  async discard(pid: number): Promise<void> {
    const child = this.#child;
    if (child?.pid !== pid) return;
    this.#child = undefined;
    this.#lease = undefined;
    await killGroup(child);
  }

  /** Kill the process (and its group) and refuse new requests. */
  async stop(): Promise<void> {
    this.#stopped = true;
    const child = this.#child;
    this.#child = undefined;
    this.#lease = undefined;
    if (child) await killGroup(child);
  }

  #boot(): Promise<Lease> {
    const { spec, root, env, log } = this.#opts;
    const deno = resolve(root, "node_modules/.bin/deno");
    if (!existsSync(deno)) return Promise.reject(new BootError(`Deno not found at ${deno}: run npm install`));
    const child = spawn(deno, denoArgs(spec, root), {
      cwd: root,
      env: { ...env, DENO_DIR: denoDir(), NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
      stdio: ["pipe", "pipe", "pipe"],
      detached: true,
    });
    this.#child = child;
    // stdin only tells the process that we are alive; a write error just means it is gone.
    child.stdin?.on("error", () => {});
    const tag = `[functions/${spec.slug}]`;
    // True if `child` was still the current process (its end was not asked for by stop() or discard()).
    const forget = () => {
      if (this.#child !== child) return false;
      this.#child = undefined;
      this.#lease = undefined;
      return true;
    };
    return new Promise<Lease>((ok, fail) => {
      let settled = false;
      const settle = (fn: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        fn();
      };
      const bootTimeoutMs = this.#opts.bootTimeoutMs ?? 30_000;
      const timer = setTimeout(() => {
        settle(() => fail(new BootError(`Function "${spec.slug}" did not start listening within ${bootTimeoutMs} ms`)));
        forget();
        void killGroup(child);
      }, bootTimeoutMs);
      createInterface({ input: child.stdout! }).on("line", (line) => {
        if (!settled && line.startsWith(`${READY_MARKER} `)) {
          const port = Number(line.slice(READY_MARKER.length + 1));
          settle(() => ok({ port, pid: child.pid! }));
        } else {
          log(`${tag} ${line}`);
        }
      });
      createInterface({ input: child.stderr! }).on("line", (line) => log(`${tag} ${line}`));
      child.once("error", (err) => {
        forget();
        settle(() => fail(new BootError(`Function "${spec.slug}" could not be spawned: ${err.message}`)));
      });
      child.once("exit", (code, signal) => {
        if (forget()) log(`${tag} process ${child.pid} exited (${signal ?? `code ${code}`})`);
        settle(() => fail(new BootError(`Function "${spec.slug}" exited before listening (${signal ?? `code ${code}`})`)));
      });
    });
  }
}

/** `deno run` with the permissions an Edge Function gets: network, env, read the project, write the temp dir. */
function denoArgs(spec: FunctionSpec, root: string): string[] {
  const tmp = tmpdir();
  const readable = [...new Set([root, dirname(spec.entrypoint), tmp])];
  const config = !spec.importMap
    ? []
    : /^deno\.jsonc?$/.test(basename(spec.importMap))
      ? ["--config", spec.importMap]
      : ["--import-map", spec.importMap];
  return [
    "run",
    "--no-prompt",
    // npm: specifiers resolve from the project's node_modules (installed by npm from package-lock.json).
    "--node-modules-dir=manual",
    ...config,
    "--allow-net",
    "--allow-env",
    `--allow-read=${readable.join(",")}`,
    `--allow-write=${tmp}`,
    BOOTSTRAP,
    pathToFileURL(spec.entrypoint).href,
  ];
}

/** Deno's own default cache location, passed explicitly because the function env has no HOME. */
function denoDir(): string {
  return process.env.DENO_DIR ?? resolve(process.env.XDG_CACHE_HOME ?? resolve(homedir(), ".cache"), "deno");
}

/** SIGTERM the process group, SIGKILL it if it is still there after 3 s; resolves once the leader exited. */
async function killGroup(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const pid = child.pid;
  const exited = new Promise<void>((ok) => child.once("exit", () => ok()));
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(-pid, sig);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
    }
  };
  signal("SIGTERM");
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<"late">((ok) => (timer = setTimeout(() => ok("late"), 3_000)));
  if ((await Promise.race([exited, late])) === "late") {
    signal("SIGKILL");
    await exited;
  }
  clearTimeout(timer);
}
