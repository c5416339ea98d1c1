/**
 * `npm start -- --once` as a newcomer runs it, in a child process with its
 * own stack folder and free ports, its output piped (not a terminal): it
 * boots a clean stack, validates the sample dataset, quotes and trains a job
 * on the GPU simulator (watching the dataset and the job over Realtime, no
 * polling loop), downloads the adapter, checks its SHA-256 against
 * model_artifacts and exits 0, with plain progress lines and no terminal
 * control codes. One test: it boots a stack of its own.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../stack/config.ts";
import { freePort } from "../../stack/throwaway.ts";

const stackDir = resolve(PROJECT_ROOT, `.stack-e2e-start-${process.pid}`);

describe("npm start", () => {
  let child: ChildProcess | undefined;
  afterAll(async () => {
    if (child && child.exitCode === null && child.pid) {
      // SIGTERM lets the demo stop its stack (Postgres included) before exiting.
      process.kill(-child.pid, "SIGTERM");
      await new Promise((r) => child!.once("exit", r));
    }
    rmSync(stackDir, { recursive: true, force: true });
  }, 60_000);

  it("--once runs the whole pipeline on a fresh stack, verifies the adapter's checksum and exits 0", async () => {
    const env = {
      ...process.env,
      STACK_DIR: stackDir,
      STACK_DB_PORT: String(await freePort()),
      STACK_API_PORT: String(await freePort()),
      STACK_GPU_PORT: String(await freePort()),
      STACK_REST_PORT: String(await freePort()),
    };
    const proc = spawn("npm", ["start", "--", "--once", "--time-scale", "8", "--timeout", "240"], {
      cwd: PROJECT_ROOT, env, stdio: ["ignore", "pipe", "pipe"], detached: true,
    });
    child = proc;
    let out = "";
    proc.stdout!.on("data", (b: Buffer) => (out += b.toString()));
    proc.stderr!.on("data", (b: Buffer) => (out += b.toString()));
    const code = await new Promise<number | null>((ok) => proc.once("exit", (c) => ok(c)));
    expect(code, out).toBe(0);

    for (const line of [
      /• postgrest: starting on 127\.0\.0\.1:\d+/,
      /✔ Stack ready in [\d.]+ s/,
      /✔ Signed in as demo@helio\.example/,
      /✔ Watching the dataset over Realtime \(postgres_changes on datasets, id=eq\.[0-9a-f-]{36}\)/,
      /✔ Uploaded 260 KiB to lora-datasets\/.+\/customer-support\.jsonl with supabase-js/,
      /validating 100% \(ready\)/,
      /✔ Validation ready in [\d.]+ s/,
      /examples {6}360 \(0 duplicates\)/,
      /issues {8}0 errors, 0 warnings/,
      /✔ Quote for llama-3\.2-3b-instruct: allowed/,
      /steps {9}135 \(360 examples/,
      /cost {10}\d+\.\d{4} USD/,
      /✔ Created job [0-9a-f-]{36} \(status queued, 135 steps\)/,
      /✔ Watching the job over Realtime \(training_jobs id=eq\.[0-9a-f-]{36}, job_events job_id=eq\.[0-9a-f-]{36}\)/,
      /dispatch\.submitted +The GPU cluster accepted job/,
      /training 100% {2}step 135\/135/,
      /delivery\.completed/,
      /\* train loss {3}o eval loss/,
      /✔ Job succeeded: 135 steps on cluster job job_\w+/,
      /adapter_weights +adapter_model\.safetensors/,
      /✔ adapter_config\.json parses: LORA r=16 lora_alpha=32 .*base=meta-llama\/Llama-3\.2-3B-Instruct/,
      /✔ Demo complete in [\d.]+ s: checksum verified/,
    ]) {
      expect(out, String(line)).toMatch(line);
    }
    // Plain lines, not a redrawn screen.
    expect(out).not.toContain("\x1b[");
    const deciles = [...out.matchAll(/^ {2}training +(\d+)%/gm)].map((m) => Number(m[1]));
    expect(deciles.length).toBeGreaterThanOrEqual(3);
    expect(deciles).toEqual([...deciles].sort((a, b) => a - b));

    // The adapter it saved is the file whose checksum it printed.
    const printed = out.match(/Downloaded adapter_model\.safetensors \([^)]+\): SHA-256 ([0-9a-f]{16})… matches model_artifacts\.sha256/);
    expect(printed, out).not.toBeNull();
    const jobDirs = readdirSync(join(stackDir, "downloads"));
    expect(jobDirs).toHaveLength(1);
    const weights = join(stackDir, "downloads", jobDirs[0]!, "adapter_model.safetensors");
    expect(existsSync(weights)).toBe(true);
    expect(createHash("sha256").update(readFileSync(weights)).digest("hex").slice(0, 16)).toBe(printed![1]);
    // --once stopped the stack it started.
    expect(existsSync(join(stackDir, "status.json"))).toBe(false);
  }, 420_000);
});
