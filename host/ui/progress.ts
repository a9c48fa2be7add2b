/**
 * A terminal progress bar.
 *
 * On a TTY it redraws one line in place (at most every `minRedrawMs`) with a bar,
 * percentage, count, rate, ETA and custom fields such as loss and accuracy. Anywhere
 * else (CI, files, pipes) it prints a plain line each time another `everyPercent` of the
 * work is done, or after `everySeconds` without a line, and a final summary: a bounded
 * number of lines, never a flood.
 *
 * Rate and ETA: the rate is the work rate over the last few seconds with pauses left out (a
 * test pass between training epochs, far longer than a step), so it neither drops after a pause
 * nor, for short pauses, reads low for the ten seconds after one; the ETA adds the pause time
 * seen so far per unit of work for the work still to do, since such pauses recur (once an epoch).
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
  /**
   * Seconds the serial line needs per unit of work (its bytes at the link's rate), when known:
   * the status shows the wire time left, and the ETA is never below it (before the rate is known
   * too, it is the ETA).
   */
  wireSecondsPerUnit?: number;
  /**
   * Show the rate and ETA (default true). False for work in a few uneven steps that end in bursts
   * (concurrent jobs), where a rate says nothing: the time elapsed is shown instead.
   */
  estimate?: boolean;
}

const RATE_WINDOW_MS = 10_000;
/** An interval between updates is a pause when it is this many times the typical step... */
const PAUSE_FACTOR = 20;
/** ...and at least this long (ms): a slow step of a fast loop is not a pause. */
const PAUSE_MIN_MS = 1000;
/** Weight of the newest step in the typical step interval (moving average). */
const STEP_EMA = 0.1;

export class Progress {
  readonly total: number | undefined;
  private done = 0;
  private fields: ProgressFields = {};
  private readonly start: number;
  /** Updates in the rate window; `pause` marks an interval (from the previous sample) that was one. */
  private readonly samples: { t: number; done: number; pause: boolean }[] = [];
  /** Moving average of the intervals between updates that were not pauses (ms); undefined until one. */
  private stepMs: number | undefined;
  private pausedMs = 0;
  /** The part of pausedMs inside the rate window. */
  private windowPausedMs = 0;
  private lastDraw = -Infinity;
  private lastLine: number;
  private lastStep = 0;
  private finished = false;
  private readonly stream: ProgressStream;
  private readonly tty: boolean;
  private readonly now: () => number;
  private readonly wirePerUnit: number | undefined;
  private readonly o: Required<Pick<ProgressOptions, 'label' | 'unit' | 'barWidth' | 'everyPercent' | 'everySeconds' | 'minRedrawMs' | 'estimate'>>;

  constructor(opts: ProgressOptions = {}) {
    if (opts.total !== undefined && !(Number.isFinite(opts.total) && opts.total >= 0)) {
      throw new RangeError(`progress total must be a non-negative number, got ${opts.total}`);
    }
    this.total = opts.total;
    this.stream = opts.stream ?? process.stderr;
    this.tty = opts.tty ?? Boolean(this.stream.isTTY);
    this.now = opts.now ?? (() => performance.now());
    const w = opts.wireSecondsPerUnit;
    if (w !== undefined && !(Number.isFinite(w) && w >= 0)) throw new RangeError(`wireSecondsPerUnit must be a non-negative number, got ${w}`);
    this.wirePerUnit = w !== undefined && w > 0 ? w : undefined;
    this.o = {
      label: opts.label ?? '',
      unit: opts.unit ?? 'it',
      barWidth: opts.barWidth ?? 24,
      everyPercent: Math.max(1, opts.everyPercent ?? 10),
      everySeconds: Math.max(1, opts.everySeconds ?? 30),
      minRedrawMs: opts.minRedrawMs ?? 100,
      estimate: opts.estimate ?? true,
    };
    this.start = this.now();
    this.lastLine = this.start;
    this.samples.push({ t: this.start, done: 0, pause: false });
  }

  /** Units done per second over the last few seconds, pauses left out (0 until measurable). */
  get rate(): number {
    let units = 0;
    let ms = 0;
    for (let i = 1; i < this.samples.length; i++) {
      const a = this.samples[i - 1]!;
      const b = this.samples[i]!;
      if (b.pause) continue;
      units += b.done - a.done;
      ms += b.t - a.t;
    }
    return ms > 0 ? (units * 1000) / ms : 0;
  }

  /** Seconds left: the work at the current rate plus the pauses it will bring; undefined when unknown. */
  get eta(): number | undefined {
    if (this.total === undefined) return undefined;
    const wire = this.wireLeft;
    const r = this.rate;
    if (!(r > 0)) return wire;
    const left = Math.max(0, this.total - this.done);
    const pausePerUnit = this.done > 0 ? this.pausedMs / 1000 / this.done : 0;
    return Math.max(left / r + left * pausePerUnit, wire ?? 0);
  }

  /** Seconds of wire time the work left needs, when the option gives the time per unit. */
  get wireLeft(): number | undefined {
    const w = this.wirePerUnit;
    if (this.total === undefined || w === undefined) return undefined;
    return Math.max(0, this.total - this.done) * w;
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
    const dt = t - this.samples[this.samples.length - 1]!.t;
    const pause = this.stepMs !== undefined && dt >= PAUSE_MIN_MS && dt > PAUSE_FACTOR * this.stepMs;
    if (pause) {
      this.pausedMs += dt;
      this.windowPausedMs += dt;
    } else if (dt > 0) this.stepMs = this.stepMs === undefined ? dt : this.stepMs + STEP_EMA * (dt - this.stepMs);
    this.samples.push({ t, done: this.done, pause });
    // The window spans RATE_WINDOW_MS of work, not of wall time: after a pause it still holds the
    // steps before it, so the rate is known again from the first step after a pause.
    while (this.samples.length > 2 && t - this.samples[0]!.t - this.windowPausedMs > RATE_WINDOW_MS) {
      const [a, b] = [this.samples[0]!, this.samples[1]!];
      if (b.pause) this.windowPausedMs -= b.t - a.t;
      this.samples.shift();
    }
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
    const rate = this.o.estimate ? `(${formatRate(avg, this.o.unit)})` : '';
    const parts = [this.o.label, `done ${count} in ${formatDuration(elapsed)}`, rate, formatFields(this.fields)];
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
    if (this.o.estimate) {
      parts.push(formatRate(this.rate, this.o.unit));
      const eta = this.eta;
      if (eta !== undefined) parts.push(`ETA ${formatDuration(eta)}`);
    } else {
      parts.push(`${formatDuration((this.now() - this.start) / 1000)} so far`);
    }
    const wire = this.wireLeft;
    if (wire !== undefined) parts.push(`wire ${formatDuration(wire)}`);
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
