/**
 * Reading a neuron's transient: the spike is the first upward crossing of VDD/2 by the sensing
 * inverter's output, located by linear interpolation between the two samples around it.
 */

import { getVector, type SpiceVectors } from './engine.ts';
import { SpiceError } from './errors.ts';

/**
 * Time of the first crossing of `level` from below (values[k-1] < level <= values[k]), linearly
 * interpolated; Infinity if there is none. A waveform that starts at or above the level is not a
 * crossing at t = 0 unless it first dips below it.
 */
export function firstRisingCrossing(time: Float64Array, values: Float64Array, level: number): number {
  const n = Math.min(time.length, values.length);
  for (let k = 1; k < n; k++) {
    const a = values[k - 1];
    const b = values[k];
    if (a < level && b >= level) {
      const f = (level - a) / (b - a);
      return time[k - 1] + f * (time[k] - time[k - 1]);
    }
  }
  return Infinity;
}

/**
 * The spike time (seconds) of a neuron transient, Infinity when the inverter never fires.
 * Checks that the analysis reached the end of the window (a cut-short run would read as silent).
 */
export function spikeTimeOf(result: SpiceVectors, supply: number, horizon: number, netlist = ''): number {
  const time = getVector(result, 'time', netlist);
  const out = getVector(result, 'v(out)', netlist);
  if (time.length < 2) throw new SpiceError('transient has fewer than 2 points', netlist);
  const end = time[time.length - 1];
  if (!(end >= horizon * (1 - 1e-9))) {
    throw new SpiceError(`transient stopped at ${end} s, before the window end ${horizon} s`, netlist);
  }
  if (!(out[0] < supply / 2)) {
    throw new SpiceError(`inverter output starts at ${out[0]} V, not low: the membrane was not precharged above the trip point`, netlist);
  }
  const t = firstRisingCrossing(time, out, supply / 2);
  return t <= horizon ? t : Infinity;
}
