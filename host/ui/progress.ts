/**
 * A terminal progress bar.
 *
 * On a TTY it redraws one line in place (at most every `minRedrawMs`) with a bar,
 * percentage, count, rate, ETA and custom fields such as loss and accuracy. Anywhere
 * else (CI, files, pipes) it prints a plain line each time another `everyPercent` of the
 * work is done, or after `everySeconds` without a line, and a final summary: a bounded
 * number of lines, never a flood.
 */
import { formatDuration, formatFields, formatRate } from './format.ts';

export interface ProgressStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export type ProgressFields = Record<string, number | string | undefined>;

export interface ProgressOptions {
  /** Units of work in all; omit when unknown (no bar, percentage or ETA). */
  total?: number;
  label?: string;
  /** Name of one unit of work in the rate ("it", "samples", "batches"). */
  unit?: string;
  /** Default: process.stderr (keeps stdout clean for results). */
  stream?: ProgressStream;
  /** Force TTY or line mode instead of asking the stream. */
  tty?: boolean;
  /** Bar width in characters (TTY). Default 24. */
  barWidth?: number;
  /** Line mode: a line each time this many more percent are done. Default 10. */
  everyPercent?: number;
  /** Line mode: a line at least this often (seconds) while work continues. Default 30. */
  everySeconds?: number;
  /** TTY mode: minimum milliseconds between redraws. Default 100. */
  minRedrawMs?: number;
  /** Millisecond clock (tests inject a fake). */
  now?: () => number;
}

const RATE_WINDOW_MS = 10_000;

export class Progress {
  readonly total: number | undefined;
  private done = 0;
  private fields: ProgressFields = {};
  private readonly start: number;
  private readonly samples: { t: number; done: number }[] = [];
  private lastDraw = -Infinity;
  private lastLine: number;
  private lastStep = 0;
  private finished = false;
  private readonly stream: ProgressStream;
  private readonly tty: boolean;
  private readonly now: () => number;
  private readonly o: Required<Pick<ProgressOptions, 'label' | 'unit' | 'barWidth' | 'everyPercent' | 'everySeconds' | 'minRedrawMs'>>;

  constructor(opts: ProgressOptions = {}) {
    if (opts.total !== undefined && !(Number.isFinite(opts.total) && opts.total >= 0)) {
      throw new RangeError(`progress total must be a non-negative number, got ${opts.total}`);
    }
    this.total = opts.total;
    this.stream = opts.stream ?? process.stderr;
    this.tty = opts.tty ?? Boolean(this.stream.isTTY);
    this.now = opts.now ?? (() => performance.now());
    this.o = {
      label: opts.label ?? '',
      unit: opts.unit ?? 'it',
      barWidth: opts.barWidth ?? 24,
      everyPercent: Math.max(1, opts.everyPercent ?? 10),
      everySeconds: Math.max(1, opts.everySeconds ?? 30),
      minRedrawMs: opts.minRedrawMs ?? 100,
    };
    this.start = this.now();
    this.lastLine = this.start;
    this.samples.push({ t: this.start, done: 0 });
  }

  /** Units done per second over the last few seconds (0 until measurable). */
  get rate(): number {
    const first = this.samples[0]!;
    const last = this.samples[this.samples.length - 1]!;
    const dt = (last.t - first.t) / 1000;
    // Only the step across a pause (an evaluation between epochs) in the window: its rate would be
    // one step per pause; the mean since the start counts the pauses as often as they recur.
    if (this.samples.length <= 2 && last.t - first.t > RATE_WINDOW_MS && last.t > this.start) return (this.done * 1000) / (last.t - this.start);
    return dt > 0 ? (last.done - first.done) / dt : 0;
  }

  /** Seconds left at the current rate; undefined when unknown. */
  get eta(): number | undefined {
    if (this.total === undefined) return undefined;
    const r = this.rate;
    return r > 0 ? Math.max(0, this.total - this.done) / r : undefined;
  }

  get value(): number {
    return this.done;
  }

  /** Set the amount done (absolute) and optionally update fields. */
  update(done: number, fields?: ProgressFields): void {
    if (this.finished) return;
    if (Number.isFinite(done)) this.done = Math.max(0, done);
    if (fields) this.fields = { ...this.fields, ...fields };
    const t = this.now();
    this.samples.push({ t, done: this.done });
    while (this.samples.length > 2 && t - this.samples[0]!.t > RATE_WINDOW_MS) this.samples.shift();
    if (this.tty) {
      // Throttled, except that reaching the total is always shown.
      const complete = this.total !== undefined && this.done >= this.total;
      if (t - this.lastDraw >= this.o.minRedrawMs || complete) this.draw(t);
    } else {
      this.maybeLine(t);
    }
  }

  /** Add `n` units done. */
  tick(n = 1, fields?: ProgressFields): void {
    this.update(this.done + n, fields);
  }

  /** Print a message without breaking the bar (it is redrawn below the message). */
  log(message: string): void {
    if (this.tty && !this.finished) {
      this.stream.write(`\r\x1b[K${message}\n`);
      this.draw(this.now());
    } else {
      this.stream.write(`${message}\n`);
    }
  }

  /** Final state: completes the TTY line or prints the summary line. Idempotent. */
  finish(fields?: ProgressFields): void {
    if (this.finished) return;
    if (fields) this.fields = { ...this.fields, ...fields };
    const t = this.now();
    this.finished = true;
    const elapsed = (t - this.start) / 1000;
    const avg = elapsed > 0 ? this.done / elapsed : 0;
    const count = this.total !== undefined ? `${this.done}/${this.total}` : `${this.done} ${this.o.unit}`;
    const parts = [this.o.label, `done ${count} in ${formatDuration(elapsed)}`, `(${formatRate(avg, this.o.unit)})`, formatFields(this.fields)];
    const line = parts.filter(Boolean).join(' ');
    this.stream.write(this.tty ? `\r\x1b[K${this.fit(line)}\n` : `${line}\n`);
  }

  private pct(): number | undefined {
    if (this.total === undefined) return undefined;
    return this.total === 0 ? 100 : Math.min(100, (100 * this.done) / this.total);
  }

  private status(withBar: boolean): string {
    const parts: string[] = [];
    if (this.o.label) parts.push(this.o.label);
    const pct = this.pct();
    if (pct !== undefined) {
      if (withBar) {
        const w = this.o.barWidth;
        const full = Math.round((pct / 100) * w);
        parts.push(`${'\u2588'.repeat(full)}${'\u2591'.repeat(w - full)}`);
      }
      parts.push(`${pct.toFixed(0).padStart(3)}%`, `${this.done}/${this.total}`);
    } else {
      parts.push(`${this.done} ${this.o.unit}`);
    }
    parts.push(formatRate(this.rate, this.o.unit));
    const eta = this.eta;
    if (eta !== undefined) parts.push(`ETA ${formatDuration(eta)}`);
    const f = formatFields(this.fields);
    if (f) parts.push(f);
    return parts.join(' ');
  }

  private fit(line: string): string {
    const cols = this.stream.columns;
    return cols && cols > 1 && line.length > cols - 1 ? line.slice(0, cols - 1) : line;
  }

  private draw(t: number): void {
    this.lastDraw = t;
    this.stream.write(`\r${this.fit(this.status(true))}\x1b[K`);
  }

  private maybeLine(t: number): void {
    const pct = this.pct();
    const step = pct === undefined ? 0 : Math.floor(pct / this.o.everyPercent);
    const stepped = pct !== undefined && step > this.lastStep;
    const stale = t - this.lastLine >= this.o.everySeconds * 1000;
    if (!stepped && !stale) return;
    if (pct !== undefined) this.lastStep = step;
    this.lastLine = t;
    this.stream.write(`${this.status(false)}\n`);
  }
}

export function createProgress(opts: ProgressOptions = {}): Progress {
  return new Progress(opts);
}
