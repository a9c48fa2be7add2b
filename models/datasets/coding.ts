/**
 * Time-to-first-spike input coding (docs/MODEL.md §6, eq. (8)): a value x in [0, 1] fires at
 * t = tIn * (1 - x), so brighter means earlier. Optionally values at or below
 * `silentThreshold` do not fire at all (t = +Infinity; tick SILENT_TICK), which saves
 * synapse activity for the many zero pixels of an image.
 */

import { MAX_HORIZON_TICKS, SILENT_TICK } from '../../wire/ticks.ts';

export interface TtfsOptions {
  /** Input window: x = 0 fires at tIn, x = 1 at 0. Any time unit; must be > 0. */
  tIn: number;
  /** x <= silentThreshold is silent. Default: none (x = 0 fires at tIn). Use 0 to silence zeros. */
  silentThreshold?: number;
}

export interface TtfsTickOptions {
  /** Input window in ticks (integer 1..MAX_HORIZON_TICKS): x = 0 fires at this tick. */
  horizonTicks: number;
  silentThreshold?: number;
}

function badValue(i: number, v: number): never {
  throw new RangeError(`ttfs: input ${i} is ${v}; values must lie in [0, 1] (scale the data first, e.g. pixels / 255)`);
}

/**
 * Checks the threshold and `out`, then writes each value's code: `silent` at or below the
 * threshold, `fire(v)` otherwise (values must lie in [0, 1]).
 */
function encode<T extends Float32Array | Uint16Array>(
  x: ArrayLike<number>,
  silentThreshold: number | undefined,
  t: T,
  silent: number,
  fire: (v: number) => number,
): T {
  const thr = silentThreshold ?? -Infinity;
  if (Number.isNaN(thr)) throw new RangeError('ttfs: silentThreshold is NaN');
  if (t.length !== x.length) throw new RangeError(`ttfs: out has ${t.length} elements, input has ${x.length}`);
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    if (!(v >= 0 && v <= 1)) badValue(i, v);
    t[i] = v <= thr ? silent : fire(v);
  }
  return t;
}

/** Spike times for every element of `x` (any shape, flattened); Infinity = silent. */
export function ttfsTimes(x: ArrayLike<number>, opts: TtfsOptions, out?: Float32Array): Float32Array {
  const { tIn } = opts;
  if (!(tIn > 0) || !Number.isFinite(tIn)) throw new RangeError(`ttfs: tIn must be a positive finite number, got ${tIn}`);
  return encode(x, opts.silentThreshold, out ?? new Float32Array(x.length), Infinity, (v) => tIn * (1 - v));
}

/** Spike ticks: round(horizonTicks * (1 - x)); SILENT_TICK = silent. */
export function ttfsTicks(x: ArrayLike<number>, opts: TtfsTickOptions, out?: Uint16Array): Uint16Array {
  const h = opts.horizonTicks;
  if (!Number.isInteger(h) || h < 1 || h > MAX_HORIZON_TICKS) {
    throw new RangeError(`ttfs: horizonTicks must be an integer in 1..${MAX_HORIZON_TICKS}, got ${h}`);
  }
  return encode(x, opts.silentThreshold, out ?? new Uint16Array(x.length), SILENT_TICK, (v) => Math.round(h * (1 - v)));
}
