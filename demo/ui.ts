/**
 * Terminal output for `npm start`: headings, status lines, tables, progress
 * bars with ETA, and a live region (progress + chart) redrawn in place while
 * log lines scroll above it. When stdout is not a terminal (CI, a pipe, the
 * test suite) nothing is redrawn: the live region is dropped and callers
 * print plain progress lines instead; colours follow the same rule (and
 * NO_COLOR).
 */
import type { Writable } from "node:stream";

export type Term = { tty: boolean; color: boolean; columns: number };

export function terminalOf(out: NodeJS.WriteStream): Term {
  const tty = Boolean(out.isTTY);
  return { tty, color: tty && !process.env.NO_COLOR, columns: Math.max(60, Math.min(out.columns ?? 100, 120)) };
}

const CODES = { bold: [1, 22], dim: [2, 22], red: [31, 39], green: [32, 39], yellow: [33, 39], cyan: [36, 39], magenta: [35, 39] } as const;
export type Style = keyof typeof CODES;

/** `text` in the style when colours are on. */
export function paint(term: Term, style: Style, text: string): string {
  if (!term.color) return text;
  const [on, off] = CODES[style];
  return `\x1b[${on}m${text}\x1b[${off}m`;
}

/** Visible width: ANSI codes take no room. */
export function visibleLength(text: string): number {
  // eslint-disable-next-line no-control-regex
  return [...text.replace(/\x1b\[[0-9;]*m/g, "")].length;
}

function pad(text: string, width: number, right = false): string {
  const fill = " ".repeat(Math.max(0, width - visibleLength(text)));
  return right ? fill + text : text + fill;
}

/** `█████░░░░░` for a fraction in 0..1. */
export function bar(fraction: number, width: number): string {
  const f = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
  const eighths = Math.round(f * width * 8);
  const full = Math.floor(eighths / 8);
  const partial = eighths % 8 === 0 ? "" : "▏▎▍▌▋▊▉"[(eighths % 8) - 1]!;
  return ("█".repeat(full) + partial).padEnd(width, "░");
}

/** 0:07, 1:05, 1:02:03. */
export function clock(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
}

/** 264 KiB, 3.1 MiB. */
export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10 * 1024 ? 1 : 0)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export function thousands(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

/** Rows as aligned columns (the first row is the header, dimmed). */
export function table(term: Term, rows: string[][], opts: { rightAlign?: number[] } = {}): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => visibleLength(r[i] ?? ""))));
  return rows.map((r, ri) => {
    const line = r.map((cell, i) => pad(cell, i === r.length - 1 && !opts.rightAlign?.includes(i) ? 0 : widths[i]!, opts.rightAlign?.includes(i))).join("  ");
    return ri === 0 ? paint(term, "dim", line) : line;
  });
}

/** Steps per second from recent samples, for an ETA that follows the actual pace. */
export class Pace {
  #samples: Array<{ at: number; step: number }> = [];

  add(step: number, at = Date.now()): void {
    const last = this.#samples.at(-1);
    if (last && step <= last.step) return;
    this.#samples.push({ at, step });
    if (this.#samples.length > 20) this.#samples.shift();
  }

  /** Seconds left for `remaining` steps, or null before two samples. */
  eta(remaining: number): number | null {
    const first = this.#samples[0];
    const last = this.#samples.at(-1);
    if (!first || !last || last.step === first.step) return null;
    const rate = (last.step - first.step) / ((last.at - first.at) / 1000);
    return rate > 0 ? remaining / rate : null;
  }
}

/**
 * The bottom of the screen that is redrawn in place (TTY only): lines logged
 * with `log()` scroll above it.
 */
export class LiveRegion {
  readonly #out: Writable;
  readonly #tty: boolean;
  #height = 0;
  #lines: string[] = [];

  constructor(out: Writable, term: Term) {
    this.#out = out;
    this.#tty = term.tty;
  }

  /** Replace the live lines (no-op when not a terminal). */
  set(lines: string[]): void {
    if (!this.#tty) return;
    this.#lines = lines;
    this.#out.write(this.#erase() + this.#draw());
  }

  /** Print a line above the live region. */
  log(line: string): void {
    this.#out.write(this.#erase() + line + "\n" + this.#draw());
  }

  /** Leave the live lines on screen as ordinary output and stop redrawing them. */
  freeze(): void {
    this.#height = 0;
    this.#lines = [];
  }

  #erase(): string {
    if (!this.#tty || this.#height === 0) return "";
    const h = this.#height;
    this.#height = 0;
    return `\x1b[${h}F\x1b[0J`;
  }

  #draw(): string {
    if (!this.#tty || this.#lines.length === 0) return "";
    this.#height = this.#lines.length;
    return this.#lines.join("\n") + "\n";
  }
}

/** Where the demo writes: status lines, sections and the live region. */
export class Screen {
  readonly term: Term;
  readonly live: LiveRegion;
  readonly #out: NodeJS.WriteStream;

  constructor(out: NodeJS.WriteStream = process.stdout) {
    this.#out = out;
    this.term = terminalOf(out);
    this.live = new LiveRegion(out, this.term);
  }

  line(text = ""): void {
    this.live.log(text);
  }

  section(title: string): void {
    this.line();
    this.line(paint(this.term, "bold", `━━ ${title} `) + paint(this.term, "dim", "━".repeat(Math.max(0, Math.min(this.term.columns, 80) - title.length - 4))));
  }

  ok(text: string): void {
    this.line(`${paint(this.term, "green", "✔")} ${text}`);
  }

  info(text: string): void {
    this.line(`${paint(this.term, "cyan", "•")} ${text}`);
  }

  warn(text: string): void {
    this.line(`${paint(this.term, "yellow", "!")} ${text}`);
  }

  fail(text: string): void {
    this.line(`${paint(this.term, "red", "✘")} ${text}`);
  }

  /** Indented detail lines. */
  detail(lines: string[]): void {
    for (const l of lines) this.line(`    ${l}`);
  }

  write(text: string): void {
    this.#out.write(text);
  }
}
