/**
 * One invocation of the validation worker: claim runs from the queue and
 * validate their files chunk by chunk until the budget is spent.
 *
 * For each claimed run: resume the engine from the stored cursor (or start
 * one with the run's options), read the next byte range from Storage,
 * process it, and save the new cursor together with the chunk's duplicate
 * claims. When the file is done the verdict is stored; when the budget is
 * spent first the run is released and the worker woken again. At least one
 * chunk is saved per claim, so every invocation makes progress.
 *
 * Failures: a lost lease (another invocation, or a re-upload) stops work on
 * the run silently; a deleted object fails the dataset (LT283, kind user);
 * anything else is a failed attempt, retried with backoff until the
 * database gives up (LT282, kind system).
 */
import { finalize, initialState, processChunk, recordDuplicates, type EngineState } from "../_shared/dataset/engine.ts";
import type { TokenCounter } from "../_shared/dataset/tokens.ts";
import type { TokenizerFamily } from "../../types/dataset.ts";
import { Budget, type BudgetOptions } from "./budget.ts";
import { ObjectMissingError, type ObjectReader } from "./object-reader.ts";
import { LeaseLostError, type ClaimedRun, type ValidationStore } from "./store.ts";
import { verdictError } from "./verdict.ts";

export type WorkerDeps = {
  store: ValidationStore;
  reader: ObjectReader;
  /** The token counter of a family, loaded once per instance (tokenizer-loader.ts). */
  loadCounter: (family: TokenizerFamily) => Promise<TokenCounter>;
  budget?: Partial<BudgetOptions>;
  /** Most runs one invocation claims (default 20). */
  maxRuns?: number;
  /** Monotonic clock in ms (default performance.now). */
  now?: () => number;
  log?: (message: string, data?: Record<string, unknown>) => void;
  /** The instance's memory (Deno.memoryUsage), reported after the invocation for operators. */
  memory?: () => { rss: number; heapUsed: number; external: number };
};

export type RunOutcome = "ready" | "error" | "continued" | "retrying" | "failed" | "lost";

/** What happened to one claimed run in this invocation. */
export type RunReport = {
  datasetId: string;
  generation: number;
  outcome: RunOutcome;
  chunks: number;
  /** Byte offset of the cursor before and after this invocation. */
  fromByte: number;
  toByte: number;
  error?: string;
};

export type WorkerReport = {
  runs: RunReport[];
  /** Synchronous work this invocation did (ms), the figure the budget limits. */
  workMs: number;
  /** Instance memory after the invocation, MiB. */
  memoryMiB?: { rss: number; heapUsed: number; external: number };
};

const EMPTY = new Uint8Array(0);
const mib = (bytes: number) => Math.round(bytes / 1048576);

/** Claim and work on runs until the queue is empty or the budget is spent. */
export async function runWorker(deps: WorkerDeps): Promise<WorkerReport> {
  const now = deps.now ?? (() => performance.now());
  const budget = new Budget(deps.budget, now);
  const runs: RunReport[] = [];
  const maxRuns = deps.maxRuns ?? 20;
  while (runs.length < maxRuns && !budget.exhausted) {
    const run = await deps.store.claim();
    if (!run) break;
    runs.push(await validateRun(run, deps, budget, now));
  }
  const report: WorkerReport = { runs, workMs: Math.round(budget.workMs) };
  const m = deps.memory?.();
  if (m) report.memoryMiB = { rss: mib(m.rss), heapUsed: mib(m.heapUsed), external: mib(m.external) };
  return report;
}

async function validateRun(run: ClaimedRun, deps: WorkerDeps, budget: Budget, now: () => number): Promise<RunReport> {
  const fromByte = run.cursor?.bytes ?? 0;
  const report = (outcome: RunOutcome, state: EngineState | null, chunks: number, error?: string): RunReport => ({
    datasetId: run.datasetId, generation: run.generation, outcome, chunks, fromByte, toByte: state?.bytes ?? fromByte,
    ...(error === undefined ? {} : { error }),
  });
  let state: EngineState | null = null;
  let chunks = 0;
  try {
    state = run.cursor ??
      budget.measure(() => initialState({ ...run.options, ...(run.sizeBytes === null ? {} : { fileSize: run.sizeBytes }) }));
    const counters = await loadCounters(state.options.families, deps, budget, now);
    const size = run.sizeBytes ?? (await deps.reader.size(run.objectName));
    let seq = run.seq;
    while (!state.done) {
      if (chunks > 0 && budget.exhausted) {
        await deps.store.continueRun(run);
        return report("continued", state, chunks);
      }
      const offset: number = state.bytes;
      let bytes: Uint8Array = EMPTY;
      if (offset < size) {
        const got = await deps.reader.read(run.objectName, offset, Math.min(budget.nextChunkBytes(), size - offset));
        if (got.total !== size) throw new Error(`The object changed size during validation (${size} -> ${got.total} bytes)`);
        bytes = got.bytes;
      }
      const before: EngineState = state;
      const workBefore = budget.workMs;
      const r = budget.measure(() => processChunk(before, bytes, { isLast: offset + bytes.length >= size, counters }));
      state = await deps.store.saveChunk(run, seq, {
        hashes: r.newHashes,
        skippedLines: r.newSkippedLines,
        bytesDone: r.state.bytes,
        progressPct: size === 0 ? 100 : (100 * r.state.bytes) / size,
        next: (dups) => budget.measure(() => {
          const s = recordDuplicates(r.state, dups);
          return { state: s, json: JSON.stringify(s) };
        }),
      });
      seq++;
      chunks++;
      budget.observe(bytes.length, budget.workMs - workBefore, r.state.line > before.line);
    }
    const done = state;
    const result = budget.measure(() => finalize(done));
    await deps.store.finish(run, seq, result, verdictError(result));
    return report(result.verdict, state, chunks);
  } catch (err) {
    return await onFailure(run, deps, err, (outcome, error) => report(outcome, state, chunks, error));
  }
}

/** Load the counters the run needs; time spent loading counts as work. */
async function loadCounters(
  families: readonly TokenizerFamily[], deps: WorkerDeps, budget: Budget, now: () => number,
): Promise<Partial<Record<TokenizerFamily, TokenCounter>>> {
  const counters: Partial<Record<TokenizerFamily, TokenCounter>> = {};
  for (const f of families) {
    const t0 = now();
    counters[f] = await deps.loadCounter(f);
    budget.spend(now() - t0);
  }
  return counters;
}

async function onFailure(
  run: ClaimedRun,
  deps: WorkerDeps,
  err: unknown,
  report: (outcome: RunOutcome, error?: string) => RunReport,
): Promise<RunReport> {
  const log = deps.log ?? (() => {});
  if (err instanceof LeaseLostError) {
    log("validate-dataset: run lost (taken over or re-uploaded)", { datasetId: run.datasetId, generation: run.generation });
    return report("lost");
  }
  const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  try {
    if (err instanceof ObjectMissingError) {
      await deps.store.fail(run, {
        code: "LT283", kind: "user",
        message: "The file was deleted from Storage before validation finished",
        hint: "Upload the file again.",
      });
      return report("error", message);
    }
    // Count the attempt first: when the run was voided meanwhile (a re-upload often makes the old
    // generation's reads fail), the error is expected and the outcome is "lost".
    const outcome = await deps.store.retry(run, message);
    log("validate-dataset: attempt failed", { datasetId: run.datasetId, generation: run.generation, outcome, error: message });
    return report(outcome, message);
  } catch (again) {
    if (again instanceof LeaseLostError) return report("lost", message);
    throw again;
  }
}
