/**
 * postgres_changes filters as Supabase Realtime accepts them:
 * `column=op.value` with op one of eq, neq, lt, lte, gt, gte, in
 * (`in.(a,b,c)`), compared by the column's type.
 */
export type FilterOp = "eq" | "neq" | "lt" | "lte" | "gt" | "gte" | "in";
export type Filter = { column: string; op: FilterOp; values: string[] };

const OPS = new Set<FilterOp>(["eq", "neq", "lt", "lte", "gt", "gte", "in"]);
const NUMERIC = new Set(["int2", "int4", "int8", "float4", "float8", "numeric", "oid"]);
const TIME = new Set(["timestamptz", "timestamp", "date"]);

/** Parse a filter string; undefined when it is not one Realtime accepts. */
export function parseFilter(text: string): Filter | undefined {
  const m = /^([^=]+)=([a-z]+)\.(.*)$/s.exec(text);
  if (!m) return undefined;
  const [, column, op, raw] = m as unknown as [string, string, string, string];
  if (!OPS.has(op as FilterOp)) return undefined;
  if (op === "in") {
    const list = /^\((.*)\)$/s.exec(raw);
    if (!list) return undefined;
    return { column, op: "in", values: list[1]!.split(",").map((v) => v.trim().replace(/^"(.*)"$/s, "$1")) };
  }
  return { column, op: op as FilterOp, values: [raw] };
}

function compare(type: string, a: string, b: string): number {
  if (NUMERIC.has(type)) return Number(a) - Number(b);
  if (TIME.has(type)) return Date.parse(a.replace(" ", "T")) - Date.parse(b.replace(" ", "T"));
  if (type === "bool") return (a.startsWith("t") ? 1 : 0) - (b.startsWith("t") ? 1 : 0);
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Does a row image (text values) pass the filter? A missing or null column never does. */
export function matchesFilter(f: Filter, type: string, row: Record<string, string | null>): boolean {
  const v = row[f.column];
  if (v === undefined || v === null) return false;
  const c = (x: string) => compare(type, v, x);
  switch (f.op) {
    case "eq": return c(f.values[0]!) === 0;
    case "neq": return c(f.values[0]!) !== 0;
    case "lt": return c(f.values[0]!) < 0;
    case "lte": return c(f.values[0]!) <= 0;
    case "gt": return c(f.values[0]!) > 0;
    case "gte": return c(f.values[0]!) >= 0;
    case "in": return f.values.some((x) => c(x) === 0);
  }
}
