/**
 * Board ticks <-> normalised times. The network's time unit t0 is layer 0's window, so
 * `t = tick / ticksPerUnit` with ticksPerUnit = horizonTicks[0].
 */

import { SILENT_TICK } from './chip-backend.ts';

export function ticksToTimes(ticks: Uint16Array, ticksPerUnit: number): Float64Array {
  const out = new Float64Array(ticks.length);
  for (let k = 0; k < ticks.length; k++) out[k] = ticks[k] === SILENT_TICK ? Infinity : ticks[k] / ticksPerUnit;
  return out;
}

/**
 * A timer capture counts whole ticks elapsed at the edge: floor. Times past `horizonTicks` (or
 * non-finite) read as SILENT_TICK.
 */
export function timesToTicks(times: Float64Array, ticksPerUnit: number, horizonTicks: number): Uint16Array {
  const out = new Uint16Array(times.length);
  for (let k = 0; k < times.length; k++) {
    const x = times[k] * ticksPerUnit;
    if (!(x <= horizonTicks)) out[k] = SILENT_TICK;
    else out[k] = x <= 0 ? 0 : Math.floor(x);
  }
  return out;
}
