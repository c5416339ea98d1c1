/**
 * The `error` a dataset row carries when its file fails validation: the
 * file-level problem that decided the verdict, with the engine's message and
 * hint. The line-numbered details are in the stored report.
 */
import type { ValidationResult } from "../../types/dataset.ts";
import type { DatasetError } from "./store.ts";

// The codes that can fail a whole file, most fundamental first: a file that
// could not be read at all says so before "too few examples".
const DECIDING = ["LT200", "LT201", "LT203", "LT202", "LT205", "LT207", "LT246", "LT206"] as const;

/** The dataset `error` for a result, or null when the verdict is ready. */
export function verdictError(result: ValidationResult): DatasetError | null {
  if (result.verdict === "ready") return null;
  const { totals, errors } = result.report;
  const code = DECIDING.find((c) => (totals[c] ?? 0) > 0) ?? errors[0]?.code ?? "LT207";
  const issue = errors.find((e) => e.code === code);
  const error: DatasetError = {
    code,
    kind: "user",
    message: issue?.message ?? `The file failed validation (${result.report.errorCount} errors)`,
  };
  if (issue?.hint) error.hint = issue.hint;
  if (issue?.line) error.line = issue.line;
  return error;
}
