/**
 * `npm run stack`: the embedded stack in the foreground. Ctrl-C (or SIGTERM)
 * stops every component, Postgres included. `--reset` starts from an empty
 * database and storage. `--migrate-extensions` moves pgmq / pg_net / Vault
 * data from our stand-ins to the real extensions once the server has them
 * (stack/platform.ts); without it a database keeps what it was made with.
 */
import { loadStackConfig } from "./config.ts";
import { startStack } from "./index.ts";

const config = loadStackConfig();
const started = Date.now();
const handle = await startStack(config, {
  fresh: process.argv.includes("--reset"),
  migrateExtensions: process.argv.includes("--migrate-extensions"),
  log: (m) => console.log(`[stack] ${m}`),
}).catch((err: unknown) => {
  console.error(`[stack] failed to start: ${(err as Error).message}`);
  process.exit(1);
});

console.log(`[stack] ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
console.log(JSON.stringify({ ...handle.status }, null, 2));
console.log("[stack] Ctrl-C to stop");

let stopping = false;
const shutdown = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  console.log(`[stack] ${signal}: stopping`);
  await handle.stop();
  process.exit(0);
};
process.on("SIGINT", () => void shutdown("SIGINT"));
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGHUP", () => void shutdown("SIGHUP"));
