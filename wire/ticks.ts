/**
 * Ticks on the wire, and the one convention that turns them into twin times (docs/MODEL.md §3,
 * eq. (7)). Tick k stands for the interval [k, k+1) of the board's timer; `ticksPerUnit` ticks
 * make one twin time unit.
 *
 * - An edge the board drives (an input spike) starts on its tick: t = tick / ticksPerUnit.
 * - A spike the board's timer captures is floored to its tick; the unbiased estimate of its time
 *   is the tick's centre: t = (tick + 0.5) / ticksPerUnit.
 * - A twin time becomes a captured tick by the floor (SILENT_TICK past the window).
 */

/** Marks a silent input or output in tick arrays (the wire format's convention). */
export const SILENT_TICK = 0xffff;
/** Largest usable horizon in ticks (SILENT_TICK itself is reserved). */
export const MAX_HORIZON_TICKS = 0xfffe;

/** Time of an edge the board drives on `tick`; +Infinity when silent. */
export function edgeTime(tick: number, ticksPerUnit: number): number {
  return tick === SILENT_TICK ? Infinity : tick / ticksPerUnit;
}

/** Time of a spike the timer captured on `tick` (the tick's centre); +Infinity when silent. */
export function captureTime(tick: number, ticksPerUnit: number): number {
  return tick === SILENT_TICK ? Infinity : (tick + 0.5) / ticksPerUnit;
}

/** Edge times of every tick (edgeTime). */
export function ticksToTimes(ticks: Uint16Array, ticksPerUnit: number): Float64Array {
  const out = new Float64Array(ticks.length);
  for (let k = 0; k < ticks.length; k++) out[k] = edgeTime(ticks[k]!, ticksPerUnit);
  return out;
}

/** Capture times of every tick (captureTime); a plain loop, as this runs over every probe reply. */
export function capturedTimes(ticks: Uint16Array, ticksPerUnit: number): Float64Array {
  const out = new Float64Array(ticks.length);
  for (let k = 0; k < ticks.length; k++) out[k] = captureTime(ticks[k]!, ticksPerUnit);
  return out;
}

/**
 * A timer capture counts whole ticks elapsed at the edge: floor. Times past `horizonTicks` (or
 * non-finite) read as SILENT_TICK.
 */
export function timesToTicks(times: Float64Array, ticksPerUnit: number, horizonTicks: number): Uint16Array {
  const out = new Uint16Array(times.length);
  for (let k = 0; k < times.length; k++) {
    const x = times[k]! * ticksPerUnit;
    if (!(x <= horizonTicks)) out[k] = SILENT_TICK;
    else out[k] = x <= 0 ? 0 : Math.floor(x);
  }
  return out;
}
