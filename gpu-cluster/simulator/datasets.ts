/**
 * How the simulated cluster reads a job's data when it starts: one GET of
 * the training file's signed URL (and of the validation file's, if the
 * configuration names one), every non-empty line a JSON object, and a
 * validation split held out from the end of the training file as
 * `train_test_split(test_size=fraction)` sizes it: ceil(examples x fraction).
 * With a `dataset_spec`, the listed `skip_lines` are left out and every other
 * non-blank line must be an example of its `line_format` (./lines.ts).
 */
import type { DatasetSpec, GpuTrainingConfig } from "../../functions/_shared/gpu/types.ts";
import { readExample } from "./lines.ts";

/**
 * The examples to train on, how many are evaluated on (null without
 * validation data), and the tokens in the loss per epoch under the spec's
 * masking rule (null without a spec).
 */
export type TrainingData = { train: string[]; validationExamples: number | null; trainableTokens: number | null };

/** Why the data cannot be trained on: a JobError code (a user error) and a message. */
export type DataProblem = { code: string; message: string };

type ReadFile = { lines: string[]; trainedChars?: number[] } | { problem: "unreachable" | "invalid"; message: string };

function isJsonObject(line: string): boolean {
  try {
    const v: unknown = JSON.parse(line);
    return v !== null && typeof v === "object" && !Array.isArray(v);
  } catch {
    return false;
  }
}

async function readJsonl(
  doFetch: typeof fetch, url: string, what: string, read?: { spec: DatasetSpec; skip: readonly number[] },
): Promise<ReadFile> {
  let text: string;
  try {
    const res = await doFetch(url, { signal: AbortSignal.timeout(30_000) });
    text = await res.text();
    if (!res.ok) return { problem: "unreachable", message: `${what} URL answered ${res.status}` };
  } catch (err) {
    return { problem: "unreachable", message: `${what} URL could not be fetched: ${(err as Error).message}` };
  }
  if (read !== undefined) return readWithSpec(text, what, read.spec, new Set(read.skip));
  const lines = text.split("\n").filter((l) => l.trim().length > 0);
  if (lines.length === 0) return { problem: "invalid", message: `${what} has no examples` };
  const bad = lines.findIndex((l) => !isJsonObject(l));
  if (bad >= 0) return { problem: "invalid", message: `${what} line ${bad + 1} is not a JSON object` };
  return { lines };
}

/** Physical lines, less blank and skipped ones; each must be an example of the spec's format. */
function readWithSpec(text: string, what: string, spec: DatasetSpec, skip: ReadonlySet<number>): ReadFile {
  const lines: string[] = [];
  const trainedChars: number[] = [];
  const physical = text.split("\n");
  for (let i = 0; i < physical.length; i++) {
    const line = physical[i]!;
    if (skip.has(i + 1) || line.trim().length === 0) continue;
    const example = readExample(line, spec);
    if ("problem" in example) return { problem: "invalid", message: `${what} line ${i + 1} ${example.problem}` };
    lines.push(line);
    trainedChars.push(example.trainedChars);
  }
  if (lines.length === 0) return { problem: "invalid", message: `${what} has no examples` };
  return { lines, trainedChars };
}

/**
 * Read a job's data: `dataset_unreachable` / `dataset_invalid` for the
 * training file, `validation_dataset_unreachable` / `validation_dataset_invalid`
 * for the validation file, `dataset_invalid` when a split would leave nothing
 * to train on.
 */
export async function readTrainingData(
  doFetch: typeof fetch, datasetUrl: string, config: GpuTrainingConfig, spec?: DatasetSpec,
): Promise<TrainingData | DataProblem> {
  const data = await readJsonl(doFetch, datasetUrl, "Dataset", spec && { spec, skip: spec.skip_lines });
  if ("problem" in data) return { code: `dataset_${data.problem}`, message: data.message };
  const trained = data.trainedChars;
  const tokensOf = (n: number) => (trained === undefined ? null : Math.ceil(trained.slice(0, n).reduce((a, b) => a + b, 0) / 4));
  const trainableTokens = tokensOf(data.lines.length);
  const validation = config.validation;
  if (validation === undefined) return { train: data.lines, validationExamples: null, trainableTokens };
  if ("dataset_url" in validation) {
    const file = await readJsonl(doFetch, validation.dataset_url, "Validation dataset", spec && { spec, skip: spec.validation_skip_lines ?? [] });
    if ("problem" in file) return { code: `validation_dataset_${file.problem}`, message: file.message };
    return { train: data.lines, validationExamples: file.lines.length, trainableTokens };
  }
  const n = data.lines.length;
  // The epsilon keeps a product such as 0.1 x 30 = 3.0000000000000004 from rounding up.
  const held = Math.ceil(n * validation.split_fraction - 1e-9);
  if (held >= n) {
    return {
      code: "dataset_invalid",
      message: `Dataset has ${n} examples: too few to hold out ${validation.split_fraction} of them for validation and train on the rest`,
    };
  }
  // The held-out examples are not trained on, so their loss tokens do not count.
  return { train: data.lines.slice(0, n - held), validationExamples: held, trainableTokens: tokensOf(n - held) };
}
