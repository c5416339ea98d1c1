/**
 * A throwaway stack on free ports in its own folder (`.stack-<purpose>-<pid>`),
 * for `npm test`, `npm run gen` and the vitest global setup.
 */
import { rmSync } from "node:fs";
import { createServer } from "node:net";
import { resolve } from "node:path";
import { loadStackConfig, PROJECT_ROOT } from "./config.ts";
import { startStack, type StackHandle, type StartOptions } from "./index.ts";

/** A TCP port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return await new Promise((ok, fail) => {
    const srv = createServer();
    srv.once("error", fail);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => ok(typeof addr === "object" && addr ? addr.port : 0));
    });
  });
}

/**
 * Start a fresh ephemeral stack; `stop()` also removes its folder. Free ports
 * are picked before they are bound, so on a busy machine another process can
 * take one first: then the start (which stops whatever it had started) is
 * tried again on new ports, up to three times.
 */
export async function startThrowawayStack(purpose: string, opts: StartOptions = {}): Promise<StackHandle> {
  const dir = resolve(PROJECT_ROOT, `.stack-${purpose}-${process.pid}`);
  let handle: StackHandle | undefined;
  for (let attempt = 1; handle === undefined; attempt++) {
    const config = loadStackConfig({
      ...process.env,
      STACK_DIR: dir,
      STACK_DB_PORT: String(await freePort()),
      STACK_API_PORT: String(await freePort()),
      STACK_GPU_PORT: String(await freePort()),
      STACK_REST_PORT: String(await freePort()),
    });
    try {
      handle = await startStack(config, { fresh: true, ephemeral: true, ...opts });
    } catch (err) {
      if (attempt >= 3 || !String((err as Error).message).includes("EADDRINUSE")) {
        rmSync(dir, { recursive: true, force: true });
        throw err;
      }
      opts.log?.(`stack start: ${(err as Error).message.split("\n")[0]}; retrying on other ports`);
    }
  }
  return {
    ...handle,
    stop: async () => {
      await handle!.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
