/** `npm run --silent stack:status`: the running stack's details as JSON (like `supabase status -o json`). */
import { existsSync, readFileSync } from "node:fs";
import { loadStackConfig } from "./config.ts";

const config = loadStackConfig();
if (!existsSync(config.statusFile)) {
  console.error(`No stack is running from ${config.stackDir}: start one with "npm run stack"`);
  process.exit(1);
}
process.stdout.write(readFileSync(config.statusFile, "utf8") + "\n");
