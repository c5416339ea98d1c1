/**
 * Every supabase-js example of docs/API.md runs against the stack's API URL
 * (the real PostgREST at /rest/v1, Storage, Functions) as a signed-in user
 * with real data: a dataset validated by the real pipeline and a job
 * trained on the GPU cluster simulator. Each ```ts block is keyed by the
 * `<!-- example: id -->` comment above it; it runs as the body of an async
 * function with `supabase`, `file`, `datasetId` and `jobId` in scope, and
 * its top-level constants are handed to that id's assertions below.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { runInThisContext } from "node:vm";
import type pg from "pg";
import ts from "typescript";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROJECT_ROOT } from "../../stack/config.ts";
import type { LocalUser } from "../../stack/jwt.ts";
import { connect, newUser } from "../helpers/db.ts";
import { testStack } from "../helpers/stack.ts";
import { supabaseClient } from "../helpers/supabase.ts";
import { waitFor } from "../helpers/wait.ts";

type Client = ReturnType<typeof supabaseClient>;
type Vars = { supabase: Client; file: File; datasetId: string; jobId: string };
type Out = Record<string, unknown> & { logged: unknown[][] };
type Ctx = { db: pg.Client; user: LocalUser; supabase: Client; vars: Vars; outputs: Map<string, Out> };
type Spec = {
  /** What the assertions check, for the test name. */
  says: string;
  /** Variables this example gets instead of the shared ones. */
  vars?: (ctx: Ctx) => Promise<Partial<Vars>>;
  check: (out: Out, ctx: Ctx) => Promise<void> | void;
};

type Example = { id: string; line: number; code: string };

/** The ```ts blocks of a Markdown file, each with the id of the `<!-- example: id -->` comment right above it. */
function examples(markdown: string): Example[] {
  const out: Example[] = [];
  for (const m of markdown.matchAll(/^(?:<!-- example: ([\w-]+) -->\n)?```ts\n([\s\S]*?)^```/gm)) {
    out.push({ id: m[1] ?? "", line: markdown.slice(0, m.index).split("\n").length + (m[1] ? 2 : 1), code: m[2]! });
  }
  return out;
}

/** Names bound by the block's top-level `const`/`let` statements (destructuring included). */
function topLevelNames(code: string): string[] {
  const names: string[] = [];
  const collect = (n: ts.BindingName) => {
    if (ts.isIdentifier(n)) names.push(n.text);
    else for (const e of n.elements) if (!ts.isOmittedExpression(e)) collect(e.name);
  };
  const sf = ts.createSourceFile("example.ts", code, ts.ScriptTarget.ES2022);
  for (const st of sf.statements) {
    if (ts.isVariableStatement(st)) for (const d of st.declarationList.declarations) collect(d.name);
  }
  return names;
}

/** Compile an example into `(vars, console) => Promise<its top-level constants>`. */
function compile(ex: Example): (vars: Vars, console: Pick<Console, "log">) => Promise<Record<string, unknown>> {
  const names = topLevelNames(ex.code);
  const source = `(async ({ supabase, file, datasetId, jobId }, console) => {\n${ex.code}\nreturn { ${names.join(", ")} };\n})`;
  const js = ts.transpileModule(source, { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext } }).outputText;
  return runInThisContext(js, { filename: `docs/API.md:${ex.line}` }) as never;
}

const TERMINAL = ["succeeded", "failed", "cancelled", "timed_out"];
const ACTIVE = ["pending", "queued", "dispatching", "running"] as const;

/** Cancel the user's jobs that an example started, so the quota of active jobs never gets in the way of the next. */
async function cancelActive(ctx: Ctx): Promise<void> {
  const { data } = await ctx.supabase.from("training_jobs").select("id, status").in("status", ACTIVE);
  for (const j of data ?? []) await ctx.supabase.rpc("cancel_training_job", { job_id: j.id });
}

async function jobRow(ctx: Ctx, id: string) {
  return (await ctx.db.query("select * from public.training_jobs where id = $1", [id])).rows[0];
}

const SPECS: Record<string, Spec> = {
  "base-models": {
    says: "lists the enabled base models with their limits and prices",
    check: ({ models }) => {
      const list = models as Array<{ id: string; max_lora_rank: number; price_per_gpu_hour: number }>;
      expect(list.map((m) => m.id)).toEqual(expect.arrayContaining(["llama-3.1-8b-instruct", "llama-3.2-3b-instruct"]));
      for (const m of list) expect(m.max_lora_rank).toBeGreaterThan(0);
    },
  },
  "create-and-upload": {
    says: "creates the dataset row and uploads the file to its storage_path, which starts validation",
    check: async ({ dataset, error, upload }, ctx) => {
      const d = dataset as { id: string; storage_path: string; status: string };
      expect(error).toBeNull();
      expect(d.status).toBe("uploading");
      expect(d.storage_path).toBe(`${ctx.user.id}/${d.id}/support.jsonl`);
      expect((upload as { error: unknown }).error).toBeNull();
      const status = await waitFor(async () => {
        const s = (await ctx.db.query("select status from public.datasets where id = $1", [d.id])).rows[0]?.status as string;
        return s !== "uploading" && s;
      }, { timeoutMs: 60_000, what: "the upload to start validation" });
      expect(["validating", "ready"]).toContain(status);
    },
  },
  reupload: {
    says: "re-uploads a corrected file over a failed dataset, which then validates to ready",
    vars: async (ctx) => {
      const { data, error } = await ctx.supabase.from("datasets").insert({ name: "failed first", file_name: "fix.jsonl" }).select("id, storage_path").single();
      if (error) throw error;
      const up = await ctx.supabase.storage.from("lora-datasets").upload(data.storage_path!, "not json\n", { contentType: "application/octet-stream" });
      if (up.error) throw up.error;
      await waitFor(async () => (await ctx.db.query("select status from public.datasets where id = $1", [data.id])).rows[0]?.status === "error",
        { timeoutMs: 60_000, what: "the first file to fail validation" });
      return { datasetId: data.id };
    },
    check: async ({ failed }, ctx) => {
      expect(failed).toMatchObject({ status: "error" });
      const id = ctx.outputs.get("reupload:vars")!.datasetId as string;
      const row = await waitFor(async () => {
        const r = (await ctx.db.query("select status, stats from public.datasets where id = $1", [id])).rows[0] as { status: string; stats: { examples: number } | null };
        return ["ready", "error"].includes(r.status) && r;
      }, { timeoutMs: 120_000, what: "the corrected file's verdict" });
      expect(row.status).toBe("ready");
      expect(row.stats!.examples).toBe(360);
    },
  },
  "read-dataset": {
    says: "reads a ready dataset's status, format and statistics",
    check: ({ row }) => {
      expect(row).toMatchObject({ status: "ready", format: "chat", report: expect.anything(), error: null });
      expect((row as { stats: { examples: number } }).stats.examples).toBe(360);
    },
  },
  "update-dataset": {
    says: "updates the description and soft-deletes the dataset",
    vars: async (ctx) => {
      const { data, error } = await ctx.supabase.from("datasets").insert({ name: "to delete", file_name: "d.jsonl" }).select("id").single();
      if (error) throw error;
      return { datasetId: data.id };
    },
    check: async (_out, ctx) => {
      const id = ctx.outputs.get("update-dataset:vars")!.datasetId as string;
      const { rows } = await ctx.db.query("select description, deleted_at from public.datasets where id = $1", [id]);
      expect(rows[0].description).toBe("v2, cleaned");
      expect(rows[0].deleted_at).toBeInstanceOf(Date);
    },
  },
  quote: {
    says: "finds no problems in the configuration and quotes an allowed job, creating nothing",
    check: async ({ problems, quote, error }, ctx) => {
      expect(error).toBeNull();
      expect(problems).toEqual([]);
      expect(quote).toMatchObject({ allowed: true, errors: [], estimate: { total_steps: expect.any(Number) } });
      const { rows } = await ctx.db.query("select count(*)::int as n from public.training_jobs where user_id = $1", [ctx.user.id]);
      expect(rows[0].n).toBe(1);
    },
  },
  "create-job-rpc": {
    says: "creates a queued job with an estimate",
    check: async ({ job, error }, ctx) => {
      expect(error).toBeNull();
      const j = job as { id: string; status: string; estimated_cost: number };
      expect(["pending", "queued", "dispatching", "running"]).toContain(j.status);
      expect(j.estimated_cost).toBeGreaterThan(0);
      expect((await jobRow(ctx, j.id)).name).toBe("support-bot v1");
      await cancelActive(ctx);
    },
  },
  "create-job-insert": {
    says: "inserts a job and gets back its resolved configuration and estimate",
    check: async ({ job }, ctx) => {
      const j = job as { id: string; config: { learning_rate: number; epochs: number }; estimated_gpu_seconds: number };
      expect(j.config.learning_rate).toBe(1e-4);
      expect(j.config.epochs).toBeGreaterThan(0);
      expect(j.estimated_gpu_seconds).toBeGreaterThan(0);
      expect((await jobRow(ctx, j.id)).idempotency_key).toBe("my-form-submit-42");
      await cancelActive(ctx);
    },
  },
  "review-before-start": {
    says: "creates a pending job for review with its estimate, then starts it",
    check: async ({ draft, started }, ctx) => {
      const d = draft as { id: string; status: string; estimated_cost: number };
      expect(d.status).toBe("pending");
      expect(d.estimated_cost).toBeGreaterThan(0);
      expect((started as { status: string }).status).toBe("queued");
      const types = (await ctx.db.query("select type from public.job_events where job_id = $1 order by id", [d.id])).rows.map((r) => r.type);
      expect(types).toEqual(expect.arrayContaining(["job.awaiting_start", "job.start_requested"]));
      await cancelActive(ctx);
      // A cancelling job still holds one of max_active_jobs: let it end before the next example creates more.
      await waitFor(async () => TERMINAL.includes((await jobRow(ctx, d.id)).status), { timeoutMs: 60_000, what: "the started job to end" });
    },
  },
  realtime: {
    says: "subscribes to the user's job changes and removes the channel (once the stack serves Realtime)",
    check: ({ channel }) => {
      expect(channel).toBeDefined();
    },
  },
  "early-stopping": {
    says: "reads a finished job's steps and early-stopping summary",
    check: ({ done }) => {
      expect(done).toMatchObject({ status: "succeeded", current_step: expect.any(Number), total_steps: expect.any(Number) });
    },
  },
  "loss-curve": {
    says: "returns the job's loss curve and its events in order",
    check: ({ curve, events }) => {
      const points = curve as Array<{ step: number; train_loss: number | null }>;
      expect(points.length).toBeGreaterThan(2);
      expect(points.map((p) => p.step)).toEqual([...points.map((p) => p.step)].sort((a, b) => a - b));
      const types = (events as Array<{ type: string }>).map((e) => e.type);
      expect(types[0]).toBe("job.created");
      expect(types).toContain("training.completed");
    },
  },
  control: {
    says: "cancelling a finished job answers LT421; retry and retry-from-the-best-checkpoint create new jobs",
    check: async ({ cancelled, error, retry, best }, ctx) => {
      expect(cancelled).toBeNull();
      expect((error as { code: string }).code).toBe("LT421");
      const r = retry as { id: string; parent_job_id: string };
      expect(r.parent_job_id).toBe(ctx.vars.jobId);
      expect(best).toMatchObject({ id: expect.any(String), step: expect.any(Number) });
      const { rows } = await ctx.db.query(
        "select resume_from_checkpoint_id from public.training_jobs where parent_job_id = $1 and resume_from_checkpoint_id is not null",
        [ctx.vars.jobId],
      );
      expect(rows.map((x: { resume_from_checkpoint_id: string }) => x.resume_from_checkpoint_id)).toEqual([(best as { id: string }).id]);
      await cancelActive(ctx);
    },
  },
  embeds: {
    says: "embeds a job's dataset, checkpoints, model and artifacts, and a dataset's jobs, through the named foreign keys",
    check: ({ detail, trainedOn }, ctx) => {
      const d = detail as {
        id: string; dataset: { id: string }; validation: unknown; checkpoints: Array<{ is_best: boolean }>;
        resumed_from: unknown; base_models: { display_name: string }; model_artifacts: Array<{ kind: string }>;
      };
      expect(d.id).toBe(ctx.vars.jobId);
      expect(d.dataset.id).toBe(ctx.vars.datasetId);
      expect(d.validation).toBeNull();
      expect(d.resumed_from).toBeNull();
      expect(d.checkpoints.length).toBeGreaterThan(0);
      expect(d.checkpoints.filter((c) => c.is_best)).toHaveLength(1);
      expect(d.base_models.display_name).toEqual(expect.any(String));
      expect(d.model_artifacts.map((a) => a.kind)).toContain("adapter_weights");
      const jobs = (trainedOn as { training_jobs: Array<{ id: string }> }).training_jobs.map((j) => j.id);
      expect(jobs).toContain(ctx.vars.jobId);
    },
  },
  artifacts: {
    says: "lists the job's artifacts and signs a download URL for each",
    check: ({ artifacts, logged }) => {
      const list = artifacts as Array<{ kind: string; sha256: string | null }>;
      expect(list.map((a) => a.kind)).toContain("adapter_weights");
      expect(logged).toHaveLength(list.length);
      for (const [, url] of logged) expect(String(url)).toMatch(/\/storage\/v1\/object\/sign\/lora-models\//);
    },
  },
  "list-artifacts": {
    says: "returns the artifacts with signed URLs from the Edge Function",
    check: ({ data, error }) => {
      expect(error).toBeNull();
      const body = data as { data: { artifacts: Array<{ kind: string; signed_url: string | null }> } };
      expect(body.data.artifacts.find((a) => a.kind === "adapter_weights")?.signed_url).toMatch(/^http/);
    },
  },
  notifications: {
    says: "lists unread notifications newest first and marks them read",
    check: async ({ unread }, ctx) => {
      const list = unread as Array<{ id: string; kind: string }>;
      expect(list.map((n) => n.kind)).toContain("job.succeeded");
      const { rows } = await ctx.db.query("select bool_and(is_read) as all_read from public.notifications where id = any($1)", [
        list.map((n) => n.id),
      ]);
      expect(rows[0].all_read).toBe(true);
    },
  },
};

const EXAMPLES = examples(readFileSync(resolve(PROJECT_ROOT, "docs/API.md"), "utf8"));
const DEMO_FILE = resolve(PROJECT_ROOT, "demo/data/customer-support.jsonl");

describe("docs/API.md examples against the stack", () => {
  let ctx: Ctx;

  beforeAll(async () => {
    const db = await connect();
    const user = await newUser(db, "docs");
    const supabase = supabaseClient(testStack().ANON_KEY, user.token);
    const bytes = readFileSync(DEMO_FILE);
    // A ready dataset and a finished job, made the way a frontend makes them.
    const { data: ds, error } = await supabase.from("datasets")
      .insert({ name: "docs examples", file_name: "support.jsonl" }).select("id, storage_path").single();
    if (error) throw error;
    const up = await supabase.storage.from("lora-datasets").upload(ds.storage_path!, bytes, { contentType: "application/octet-stream" });
    if (up.error) throw up.error;
    await waitFor(async () => {
      const { data } = await supabase.from("datasets").select("status").eq("id", ds.id).single();
      if (data?.status === "error") throw new Error("The sample dataset failed validation");
      return data?.status === "ready";
    }, { timeoutMs: 120_000, what: "the sample dataset to validate" });
    const { data: job, error: jobError } = await supabase.rpc("create_training_job", {
      dataset_id: ds.id, base_model_id: "llama-3.2-3b-instruct", config: { epochs: 2, lora: { rank: 8 } },
      idempotency_key: `docs-${user.id}`,
    });
    if (jobError) throw jobError;
    const finished = await waitFor(async () => {
      const { data } = await supabase.from("training_jobs").select("status").eq("id", job.id).single();
      return data && TERMINAL.includes(data.status) && data.status;
    }, { timeoutMs: 180_000, intervalMs: 250, what: "the fixture job to finish" });
    if (finished !== "succeeded") throw new Error(`The fixture job ended ${finished}`);
    await waitFor(async () => {
      const { data } = await supabase.from("model_artifacts").select("kind").eq("job_id", job.id);
      return data?.some((a) => a.kind === "adapter_weights");
    }, { timeoutMs: 60_000, what: "the adapter to be registered" });
    const file = new File([bytes], "support.jsonl", { type: "application/octet-stream" });
    ctx = { db, user, supabase, vars: { supabase, file, datasetId: ds.id, jobId: job.id }, outputs: new Map() };
  }, 360_000);

  afterAll(async () => {
    if (!ctx) return;
    await cancelActive(ctx).catch(() => {});
    await ctx.db.end();
  });

  it("every example carries an id that has assertions here, and every assertion has its example", () => {
    expect(EXAMPLES.map((e) => e.id)).not.toContain("");
    expect([...EXAMPLES.map((e) => e.id)].sort()).toEqual(Object.keys(SPECS).sort());
  });

  for (const ex of EXAMPLES) {
    const spec = SPECS[ex.id];
    if (!spec) continue;
    it(`"${ex.id}" (docs/API.md line ${ex.line}) ${spec.says}`, async () => {
      if (ex.id === "realtime" && testStack().COMPONENTS?.realtime === "absent") {
        // Nothing serves /realtime/v1 yet: the example is only type-checked (scripts/docs-examples.ts).
        expect(ex.code).toContain(".subscribe()");
        return;
      }
      const extra = spec.vars ? await spec.vars(ctx) : {};
      ctx.outputs.set(`${ex.id}:vars`, { ...extra, logged: [] });
      const logged: unknown[][] = [];
      const result = await compile(ex)({ ...ctx.vars, ...extra }, { log: (...args: unknown[]) => logged.push(args) });
      const out: Out = { ...result, logged };
      ctx.outputs.set(ex.id, out);
      await spec.check(out, ctx);
    }, 120_000);
  }
});
