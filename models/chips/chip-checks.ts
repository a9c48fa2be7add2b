/**
 * The argument checks every chip model shares: seed, layer widths, timing, layer index and gate
 * voltages. One copy, so the ideal, behavioural and SPICE chips refuse the same inputs with the
 * same words.
 */

import type { ChipTiming, DacSpec, LayerGeometry } from './chip-backend.ts';
import { DEFAULT_LAYER_WINDOW_TICKS, DEFAULT_TICK_SECONDS, MAX_LAYERS } from './sky130-nominal.ts';
import { SILENT_TICK } from '../../wire/ticks.ts';

/** Largest chip seed: seeds are 32-bit everywhere (URIs, flags, the generators). */
export const MAX_SEED = 2 ** 32 - 1;

export function checkSeed(seed: number): number {
  if (!Number.isSafeInteger(seed) || seed < 0 || seed > MAX_SEED) throw new RangeError(`seed must be an integer in 0..${MAX_SEED}, got ${seed}`);
  return seed;
}

/** Checks layer widths, inputs first; throws RangeError naming the problem. */
export function checkSizes(sizes: readonly number[]): void {
  if (sizes.length < 2) throw new RangeError(`a network needs at least 2 sizes (inputs and one layer), got ${sizes.length}`);
  if (sizes.length - 1 > MAX_LAYERS) {
    throw new RangeError(`at most ${MAX_LAYERS} layers fit the 16-bit tick windows, got ${sizes.length - 1}`);
  }
  for (const [k, n] of sizes.entries()) {
    if (!Number.isInteger(n) || n < 1 || n > 32767) {
      throw new RangeError(`size ${k} = ${n} must be an integer in 1..32767`);
    }
  }
}

/** The board's time base: the given values, checked, or the defaults (1 ns ticks, 2000 (l + 1)-tick windows). */
export function resolveTiming(nLayers: number, opts: { tickSeconds?: number; horizonTicks?: readonly number[] }): ChipTiming {
  const tickSeconds = opts.tickSeconds ?? DEFAULT_TICK_SECONDS;
  if (!(Number.isFinite(tickSeconds) && tickSeconds > 0)) {
    throw new RangeError(`tickSeconds must be positive and finite, got ${tickSeconds}`);
  }
  const horizonTicks = opts.horizonTicks ? [...opts.horizonTicks] : Array.from({ length: nLayers }, (_, l) => DEFAULT_LAYER_WINDOW_TICKS * (l + 1));
  if (horizonTicks.length !== nLayers) {
    throw new RangeError(`horizonTicks has ${horizonTicks.length} entries, expected one per layer (${nLayers})`);
  }
  for (const [l, h] of horizonTicks.entries()) {
    if (!Number.isInteger(h) || h < 1 || h >= SILENT_TICK) {
      throw new RangeError(`horizonTicks[${l}] = ${h} must be an integer in 1..${SILENT_TICK - 1}`);
    }
  }
  return Object.freeze({ tickSeconds, horizonTicks: Object.freeze(horizonTicks) as number[] });
}

export function checkLayerIndex(layer: number, nLayers: number): void {
  if (!Number.isInteger(layer) || layer < 0 || layer >= nLayers) {
    throw new RangeError(`layer ${layer} does not exist; this chip has layers 0..${nLayers - 1}`);
  }
}

/** A layer's gate voltages: rows x outputs volts, each inside the DAC's range. */
export function checkGateVoltages(layer: number, g: LayerGeometry, dac: DacSpec, volts: Float64Array): void {
  const n = g.rowInput.length * g.outputs;
  if (!(volts instanceof Float64Array) || volts.length !== n) {
    throw new RangeError(`layer ${layer} gate voltages must be a Float64Array of rows*outputs = ${n} values`);
  }
  const { vMin, vMax } = dac;
  for (let k = 0; k < n; k++) {
    const v = volts[k];
    if (!(v >= vMin && v <= vMax)) {
      throw new RangeError(`gate voltage [${k}] = ${v} V is outside the DAC range ${vMin}..${vMax} V`);
    }
  }
}

/** A RUN's input ticks: `batch` rows of the first layer's inputs. */
export function checkRunInputs(g: LayerGeometry, inputTicks: Uint16Array, batch: number): void {
  if (!Number.isInteger(batch) || batch < 0) throw new RangeError(`batch must be a non-negative integer, got ${batch}`);
  if (!(inputTicks instanceof Uint16Array) || inputTicks.length !== batch * g.inputs) {
    throw new RangeError(`inputTicks must be a Uint16Array of batch*inputs = ${batch}*${g.inputs} values`);
  }
}
