/**
 * Demo steps 2 and 3: the quote (a dry run of the job), then the job itself
 * through create_training_job, watched as a frontend would watch it until it
 * finishes: the training_jobs row and job_events over Realtime, the loss
 * chart from the job_loss_curve RPC whenever the job moved.
 */
import { randomUUID } from "node:crypto";
import { TrainingQuoteSchema, type TrainingQuote } from "../types/training-quote.ts";
import { lossChart, type LossPoint } from "./chart.ts";
import { unwrap } from "./client.ts";
import type { DemoCtx } from "./dataset.ts";
import { subscribeFeed } from "./realtime.ts";
import { bar, clock, paint, Pace, thousands, type Screen } from "./ui.ts";

export const BASE_MODEL = "llama-3.2-3b-instruct";
/** What the demo asks for; everything else is the catalog default or derived from the data ("auto"). */
export const REQUESTED_CONFIG = { epochs: "auto", max_seq_length: "auto", batch_size: 8, lora: { rank: 16 } };

const JOB_COLUMNS = "id, status, error, current_step, total_steps, progress_pct, current_epoch, actual_gpu_seconds, " +
  "actual_cost, currency, external_job_id";

type JobRow = {
  id: string; status: string; error: { code: string; message: string; hint?: string } | null;
  current_step: number | null; total_steps: number | null; progress_pct: number; current_epoch: number | null;
  actual_gpu_seconds: number | null; actual_cost: number | null; currency: string; external_job_id: string | null;
};
type JobEvent = { id: number; created_at: string; level: string; type: string; message: string };

const TERMINAL = ["succeeded", "failed", "cancelled", "timed_out"];

/** The quote for training BASE_MODEL on the dataset; throws if the job would be refused. */
export async function quote(ctx: DemoCtx, datasetId: string): Promise<TrainingQuote> {
  const { screen, supabase } = ctx;
  screen.section("2. Quote");
  const q = TrainingQuoteSchema.parse(unwrap("quote_training_job", await supabase.rpc("quote_training_job", {
    dataset_id: datasetId, base_model_id: BASE_MODEL, config: REQUESTED_CONFIG,
  })));
  if (!q.allowed || !q.estimate || !q.config) {
    for (const e of q.errors) screen.fail(`${e.code}: ${e.message}`);
    throw new Error("The quote refused the job");
  }
  const c = q.config as { epochs: number; batch_size: number; gradient_accumulation_steps: number; learning_rate: number;
    lr_scheduler: string; max_seq_length: number; lora: { rank: number; alpha: number; dropout: number; target_modules: string[] } };
  const e = q.estimate;
  screen.ok(`Quote for ${BASE_MODEL}: allowed`);
  screen.detail([
    `config        ${c.epochs} epochs, batch ${c.batch_size} x ${c.gradient_accumulation_steps}, lr ${c.learning_rate} (${c.lr_scheduler}), max_seq_length ${c.max_seq_length}`,
    `LoRA          rank ${c.lora.rank}, alpha ${c.lora.alpha}, dropout ${c.lora.dropout}, modules ${c.lora.target_modules.join(",")}`,
    `steps         ${e.total_steps} (${e.train_examples} examples, ${e.warmup_steps} warmup)`,
    `tokens        ${thousands(e.billable_tokens)} billable (${thousands(e.tokens_per_epoch)} per epoch${e.tokens_exact ? ", exact" : ", upper bound"})`,
    `time          ${e.training_seconds.toFixed(0)} s training + ${e.overhead_seconds} s overhead on ${e.gpu_count} x ${e.gpu_type} at ${thousands(e.throughput_tokens_per_second)} tokens/s`,
    `cost          ${e.cost.toFixed(4)} ${e.currency} (${e.gpu_hours.toFixed(3)} GPU hours at ${e.price_per_gpu_hour} ${e.currency}/h)`,
    `quota         ${q.quotas.active_jobs} of ${q.quotas.max_active_jobs ?? "unlimited"} active jobs, spent ${q.quotas.spent_this_month} ${q.quotas.currency} this month`,
  ]);
  return q;
}

/** Create the job as the user (idempotent: a retried request returns the same job). */
export async function createJob(ctx: DemoCtx, datasetId: string): Promise<string> {
  const job = unwrap("create_training_job", await ctx.supabase.rpc("create_training_job", {
    dataset_id: datasetId, base_model_id: BASE_MODEL, config: REQUESTED_CONFIG, name: "Helio support assistant",
    suffix: "helio-support", idempotency_key: `demo-${randomUUID()}`,
  }));
  ctx.screen.section("3. Training");
  ctx.screen.ok(`Created job ${job.id} (status ${job.status}, ${job.total_steps} steps)`);
  return job.id;
}

function eventLine(screen: Screen, e: JobEvent): string {
  const t = new Date(e.created_at).toISOString().slice(11, 19);
  const style = e.level === "error" ? "red" : e.level === "warning" ? "yellow" : "dim";
  return `  ${paint(screen.term, "dim", t)} ${paint(screen.term, style, e.level.padEnd(7))} ${e.type.padEnd(28)} ${e.message}`;
}

/** Watch the job until it ends; returns its final row. Streams events, redraws progress and the loss chart. */
export async function watchJob(ctx: DemoCtx, jobId: string): Promise<JobRow> {
  const { screen, supabase } = ctx;
  const feed = await subscribeFeed(supabase, `job-${jobId}`, [
    { event: "UPDATE", table: "training_jobs", filter: `id=eq.${jobId}` },
    { event: "INSERT", table: "job_events", filter: `job_id=eq.${jobId}` },
  ]);
  screen.ok(`Watching the job over Realtime (training_jobs id=eq.${jobId}, job_events job_id=eq.${jobId})`);
  const pace = new Pace();
  const chartWidth = Math.min(64, screen.term.columns - 12);
  let lastEvent = 0;
  let lastDecile = -1;
  let curve: LossPoint[] = [];
  let curveAt = 0;
  const deadline = Date.now() + ctx.timeoutMs;
  const printEvents = (events: JobEvent[]) => {
    for (const e of events.filter((x) => x.id > lastEvent)) {
      screen.line(eventLine(screen, e));
      lastEvent = e.id;
    }
  };
  // What happened between creating the job and the subscription, read once.
  let job = unwrap("Reading the job", await supabase.from("training_jobs").select(JOB_COLUMNS).eq("id", jobId).single()) as JobRow;
  printEvents(unwrap("Reading job events", await supabase.from("job_events")
    .select("id, created_at, level, type, message").eq("job_id", jobId).order("id")));
  try {
    for (;;) {
      const step = job.current_step ?? 0;
      const total = job.total_steps ?? 1;
      if (step > 0) pace.add(step);
      if (Date.now() - curveAt > 800 || TERMINAL.includes(job.status)) {
        curve = unwrap("job_loss_curve", await supabase.rpc("job_loss_curve", { job_id: jobId, max_points: chartWidth * 2 * 6 }))
          .map((p) => ({ step: p.step, train: p.train_loss, eval: p.eval_loss }));
        curveAt = Date.now();
      }
      const latest = curve.at(-1);
      const lastEval = [...curve].reverse().find((p) => p.eval !== null)?.eval;
      const eta = pace.eta(total - step);
      const pct = Number(job.progress_pct);
      const status = `step ${step}/${total}  epoch ${(job.current_epoch ?? 0).toFixed(3)}  ${job.status}  ETA ${eta === null ? "–:––" : clock(eta)}`;
      const losses = `loss ${latest?.train?.toFixed(3) ?? "–"}  eval ${lastEval?.toFixed(3) ?? "–"}  GPU ${Number(job.actual_gpu_seconds ?? 0).toFixed(0)} s  cost ${Number(job.actual_cost ?? 0).toFixed(4)} ${job.currency}`;
      if (screen.term.tty) {
        screen.live.set([
          "",
          `  Training  ${paint(screen.term, "cyan", bar(pct / 100, 30))} ${pct.toFixed(0).padStart(3)}%  ${status}`,
          `            ${losses}`,
          "",
          ...lossChart(screen.term, curve, { width: chartWidth, height: 12, totalSteps: total }),
        ]);
      } else if (Math.floor(pct / 10) > lastDecile && (step > 0 || pct > 0)) {
        lastDecile = Math.floor(pct / 10);
        screen.line(`  training ${pct.toFixed(0).padStart(3)}%  ${status}  ${losses}`);
      }
      if (TERMINAL.includes(job.status)) {
        if (screen.term.tty) screen.live.freeze();
        else {
          screen.line();
          for (const l of lossChart(screen.term, curve, { width: chartWidth, height: 12, totalSteps: total })) screen.line(l);
        }
        return job;
      }
      const changes = await feed.next(Math.max(0, deadline - Date.now())).catch((err: Error) => {
        throw new Error(`The job did not finish in ${ctx.timeoutMs / 1000} s (status ${job.status}, step ${step}/${total}): ${err.message}`);
      });
      printEvents(changes.filter((c) => c.table === "job_events").map((c) => c.new as unknown as JobEvent));
      const rows = changes.filter((c) => c.table === "training_jobs");
      if (rows.length) job = { ...job, ...(rows.at(-1)!.new as Partial<JobRow>) };
    }
  } finally {
    await feed.close();
  }
}
