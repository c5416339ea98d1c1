/**
 * The loss chart of `npm start`: training loss against step, with the
 * evaluation loss on top. In a terminal it is drawn in braille (2 x 4 dots a
 * cell, train in cyan, eval in magenta); in plain output, with ASCII marks
 * (`*` train, `o` eval, `@` both), so logs and the test read it too.
 */
import { paint, type Term } from "./ui.ts";

export type LossPoint = { step: number; train: number | null; eval: number | null };

type Opts = { width: number; height: number; totalSteps: number };

/** Dot bits of a braille cell, indexed [x][y]. */
const DOTS = [[0x01, 0x02, 0x04, 0x40], [0x08, 0x10, 0x20, 0x80]];

function range(points: LossPoint[]): { lo: number; hi: number } {
  const values = points.flatMap((p) => [p.train, p.eval]).filter((v): v is number => v !== null && Number.isFinite(v));
  if (values.length === 0) return { lo: 0, hi: 1 };
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (hi - lo < 1e-6) {
    lo -= 0.5;
    hi += 0.5;
  }
  const margin = (hi - lo) * 0.05;
  return { lo: Math.max(0, lo - margin), hi: hi + margin };
}

/** Plot one series on a pixel grid, joining consecutive points with straight segments. */
function plot(grid: boolean[][], points: Array<[number, number]>): void {
  const h = grid.length;
  const w = grid[0]!.length;
  const set = (x: number, y: number) => {
    if (x >= 0 && x < w && y >= 0 && y < h) grid[y]![x] = true;
  };
  points.forEach(([x, y], i) => {
    const prev = points[i - 1];
    if (!prev) return set(x, y);
    const steps = Math.max(Math.abs(x - prev[0]), Math.abs(y - prev[1]), 1);
    for (let s = 1; s <= steps; s++) {
      set(Math.round(prev[0] + ((x - prev[0]) * s) / steps), Math.round(prev[1] + ((y - prev[1]) * s) / steps));
    }
  });
}

function series(points: LossPoint[], key: "train" | "eval", px: (step: number) => number, py: (v: number) => number): Array<[number, number]> {
  return points.filter((p) => p[key] !== null).map((p) => [px(p.step), py(p[key]!)]);
}

/** The chart as lines (y labels on the left, step axis below, legend last). */
export function lossChart(term: Term, points: LossPoint[], opts: Opts): string[] {
  const braille = term.tty;
  const { lo, hi } = range(points);
  const xPerCell = braille ? 2 : 1;
  const yPerCell = braille ? 4 : 1;
  const w = opts.width * xPerCell;
  const h = opts.height * yPerCell;
  const total = Math.max(1, opts.totalSteps);
  const px = (step: number) => Math.round(((step - 1) / Math.max(1, total - 1)) * (w - 1));
  const py = (v: number) => Math.round(((hi - v) / (hi - lo)) * (h - 1));
  const train = Array.from({ length: h }, () => Array<boolean>(w).fill(false));
  const evals = Array.from({ length: h }, () => Array<boolean>(w).fill(false));
  plot(train, series(points, "train", px, py));
  plot(evals, series(points, "eval", px, py));

  const label = (v: number) => v.toFixed(2).padStart(6);
  const rows: string[] = [];
  for (let r = 0; r < opts.height; r++) {
    let line = "";
    for (let c = 0; c < opts.width; c++) {
      let t = 0;
      let e = 0;
      for (let dx = 0; dx < xPerCell; dx++) {
        for (let dy = 0; dy < yPerCell; dy++) {
          const y = r * yPerCell + dy;
          const x = c * xPerCell + dx;
          const bit = braille ? DOTS[dx]![dy]! : 1;
          if (train[y]![x]) t |= bit;
          if (evals[y]![x]) e |= bit;
        }
      }
      if (braille) {
        if (e) line += paint(term, "magenta", String.fromCharCode(0x2800 + (e | t)));
        else if (t) line += paint(term, "cyan", String.fromCharCode(0x2800 + t));
        else line += String.fromCharCode(0x2800);
      } else {
        line += e && t ? "@" : e ? "o" : t ? "*" : " ";
      }
    }
    const mid = Math.floor(opts.height / 2);
    const value = r === 0 ? hi : r === opts.height - 1 ? lo : r === mid ? (hi + lo) / 2 : null;
    const tick = value === null ? (braille ? "│" : "|") : (braille ? "┤" : "+");
    rows.push(`${paint(term, "dim", value === null ? " ".repeat(6) : label(value))} ${paint(term, "dim", tick)}${line}`);
  }
  const axis = braille ? `${" ".repeat(7)}└${"─".repeat(opts.width)}` : `${" ".repeat(7)}+${"-".repeat(opts.width)}`;
  const ends = `step 1`.padEnd(opts.width - String(total).length - 5) + `step ${total}`;
  const legend = braille
    ? `${paint(term, "cyan", "━━ train loss")}   ${paint(term, "magenta", "━━ eval loss")}`
    : "* train loss   o eval loss   @ both";
  return [...rows, paint(term, "dim", axis), `${" ".repeat(8)}${paint(term, "dim", ends)}`, `${" ".repeat(8)}${legend}`];
}
