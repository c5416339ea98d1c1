/**
 * Collecting issues into the cursor: totals per code for all of them, and
 * the first N errors and N warnings by position.
 *
 * "First" is by (line, column, code, message), not by arrival: duplicates
 * are recorded after their chunk, and the list must be the same however the
 * file was cut into chunks. Kept sorted; inserting past a full list's end is
 * a no-op, so the list never grows beyond N.
 */
import type { Issue } from "../../../types/dataset.ts";
import { severityOf, type IssueCode } from "./codes.ts";

export type IssueLog = {
  totals: Record<string, number>;
  errors: Issue[];
  warnings: Issue[];
};

function compare(a: Issue, b: Issue): number {
  return (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0) || (a.code < b.code ? -1 : a.code > b.code ? 1 : 0) || (a.message < b.message ? -1 : a.message > b.message ? 1 : 0);
}

function insertSorted(list: Issue[], issue: Issue, cap: number): void {
  if (list.length >= cap && compare(issue, list[list.length - 1]!) >= 0) return;
  let i = list.length;
  while (i > 0 && compare(issue, list[i - 1]!) < 0) i--;
  list.splice(i, 0, issue);
  if (list.length > cap) list.pop();
}

/** Build an issue with the code's severity. */
export function makeIssue(code: IssueCode, line: number | null, message: string, extra: { column?: number; hint?: string } = {}): Issue {
  const issue: Issue = { code, severity: severityOf(code), line, message };
  if (extra.column !== undefined) issue.column = extra.column;
  if (extra.hint !== undefined) issue.hint = extra.hint;
  return issue;
}

/** Count the issue and keep it if it is among the first `cap` of its severity. */
export function record(log: IssueLog, issue: Issue, cap: number): void {
  log.totals[issue.code] = (log.totals[issue.code] ?? 0) + 1;
  insertSorted(issue.severity === "error" ? log.errors : log.warnings, issue, cap);
}

/** Sum of the totals of codes with the given severity. */
export function countBySeverity(totals: Record<string, number>, severity: "error" | "warning"): number {
  let n = 0;
  for (const [code, c] of Object.entries(totals)) if (severityOf(code as IssueCode) === severity) n += c;
  return n;
}
