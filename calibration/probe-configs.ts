/**
 * Weight configurations for probing a chip: pure builders of a layer's weight memory (rows x outputs
 * DAC codes, row-major) for bring-up and calibration patterns. Every code they return lies inside
 * its row's announced safe window (PROTOCOL.md 10.1), so the result can be uploaded as it is; a code
 * asked for outside the window is refused with a RangeError, never clamped silently.
 *
 * "Off" is the least drive inside the safe window (NMOS: the window's lowest code, PMOS: its
 * highest), the state the board powers up in. "Full on" is the strongest safe drive (NMOS highest,
 * PMOS lowest code), not the DAC's extreme.
 */

import { NMOS, PMOS, type DacSpec, type LayerGeometry, type SafeRange } from '../models/chips/chip-backend.ts';
import { Rng } from '../models/datasets/rng.ts';
import { offCode, safeCodes } from './weight-mapping.ts';

/** A gate code for every row, or one code per polarity. */
export type RowCode = number | { nmos: number; pmos: number };

/** The safe code window [lo, hi] of a polarity (0 = NMOS, 1 = PMOS). */
export function codeWindow(dac: DacSpec, safe: SafeRange, polarity: number): [number, number] {
  return safeCodes(dac, polarity === NMOS ? safe.nmos : safe.pmos);
}

/** The strongest safe drive of a polarity: NMOS the window's highest code, PMOS its lowest. */
export function fullOnCode(dac: DacSpec, safe: SafeRange, polarity: number): number {
  const [lo, hi] = codeWindow(dac, safe, polarity);
  return polarity === NMOS ? hi : lo;
}

/** The code halfway through a polarity's safe window (rounded toward off). */
export function midCode(dac: DacSpec, safe: SafeRange, polarity: number): number {
  const [lo, hi] = codeWindow(dac, safe, polarity);
  return polarity === NMOS ? Math.floor((lo + hi) / 2) : Math.ceil((lo + hi) / 2);
}

/** Every synapse of a layer switched off. */
export function allOffCodes(geom: LayerGeometry, dac: DacSpec, safe: SafeRange): Uint16Array {
  const n = geom.outputs;
  const codes = new Uint16Array(geom.rowInput.length * n);
  const offN = offCode(dac, safe, NMOS);
  const offP = offCode(dac, safe, PMOS);
  for (let r = 0; r < geom.rowInput.length; r++) codes.fill(geom.rowPolarity[r] === NMOS ? offN : offP, r * n, (r + 1) * n);
  return codes;
}

/** The rows of a layer, optionally only those of some inputs and/or one polarity, in row order. */
export function selectRows(geom: LayerGeometry, which: { inputs?: Iterable<number>; polarity?: number } = {}): number[] {
  const inputs = which.inputs === undefined ? undefined : new Set(which.inputs);
  const rows: number[] = [];
  for (let r = 0; r < geom.rowInput.length; r++) {
    if (inputs && !inputs.has(geom.rowInput[r])) continue;
    if (which.polarity !== undefined && geom.rowPolarity[r] !== which.polarity) continue;
    rows.push(r);
  }
  return rows;
}

function checkedCode(geom: LayerGeometry, dac: DacSpec, safe: SafeRange, row: number, code: RowCode): number {
  if (!Number.isInteger(row) || row < 0 || row >= geom.rowInput.length) {
    throw new RangeError(`row ${row} does not exist: the layer has rows 0..${geom.rowInput.length - 1}`);
  }
  const pol = geom.rowPolarity[row];
  const c = typeof code === 'number' ? code : pol === NMOS ? code.nmos : code.pmos;
  const [lo, hi] = codeWindow(dac, safe, pol);
  if (!Number.isInteger(c) || c < lo || c > hi) {
    throw new RangeError(`code ${c} for row ${row} (${pol === NMOS ? 'NMOS' : 'PMOS'}) is outside its safe window ${lo}..${hi}; pick a code in it`);
  }
  return c;
}

/**
 * The given rows at `code` (one code, or one per polarity) for every output neuron, everything else
 * off. Throws RangeError when a code is outside its row's safe window.
 */
export function rowsAtCodes(geom: LayerGeometry, dac: DacSpec, safe: SafeRange, rows: Iterable<number>, code: RowCode): Uint16Array {
  const codes = allOffCodes(geom, dac, safe);
  const n = geom.outputs;
  for (const r of rows) codes.fill(checkedCode(geom, dac, safe, r, code), r * n, (r + 1) * n);
  return codes;
}

/**
 * A relay: neuron i is driven by input i - shift through every NMOS row of that input at `onCode`
 * (when 0 <= i - shift < inputs); every other synapse is off. With shift 0 this is the identity
 * relay: a spike on input j fires neuron j alone (j < min(inputs, outputs)), so a chain of relays
 * carries one external input to exactly one neuron of a deeper layer. Neurons that are not reached
 * stay silent; cover them with other shifts.
 */
export function relayCodes(geom: LayerGeometry, dac: DacSpec, safe: SafeRange, onCode: number, shift = 0): Uint16Array {
  if (!Number.isInteger(shift)) throw new RangeError(`relay shift ${shift} must be a whole number`);
  const codes = allOffCodes(geom, dac, safe);
  const n = geom.outputs;
  for (let r = 0; r < geom.rowInput.length; r++) {
    if (geom.rowPolarity[r] !== NMOS) continue;
    const i = geom.rowInput[r] + shift;
    if (i >= 0 && i < n) codes[r * n + i] = checkedCode(geom, dac, safe, r, onCode);
  }
  return codes;
}

/** A copy of `codes` with every row of the given inputs switched off (e.g. inputs fed by a neuron stuck at t = 0). */
export function withInputsOff(codes: Uint16Array, geom: LayerGeometry, dac: DacSpec, safe: SafeRange, inputs: Iterable<number>): Uint16Array {
  checkLength(codes, geom);
  const out = codes.slice();
  const n = geom.outputs;
  const off = [offCode(dac, safe, NMOS), offCode(dac, safe, PMOS)];
  for (const r of selectRows(geom, { inputs })) out.fill(off[geom.rowPolarity[r] === NMOS ? 0 : 1], r * n, (r + 1) * n);
  return out;
}

/** Weight-memory test patterns, each inside every row's safe window. */
export const MEMORY_PATTERNS = ['low', 'high', 'checkerboard', 'random'] as const;
export type MemoryPattern = (typeof MEMORY_PATTERNS)[number];

/**
 * A memory test pattern: `low` every cell at its row's lowest safe code ("zeros"), `high` at its
 * highest ("full scale": the safe window's extreme, not the DAC's), `checkerboard` low and high
 * alternating with (row + output) parity, `random` uniform inside each row's window (from `seed`).
 */
export function memoryPatternCodes(geom: LayerGeometry, dac: DacSpec, safe: SafeRange, pattern: MemoryPattern, seed = 1): Uint16Array {
  if (!MEMORY_PATTERNS.includes(pattern)) throw new RangeError(`memory pattern '${pattern}' is not one of ${MEMORY_PATTERNS.join(', ')}`);
  const windows = [codeWindow(dac, safe, NMOS), codeWindow(dac, safe, PMOS)];
  const n = geom.outputs;
  const codes = new Uint16Array(geom.rowInput.length * n);
  const rng = new Rng(seed);
  for (let r = 0; r < geom.rowInput.length; r++) {
    const [lo, hi] = windows[geom.rowPolarity[r] === NMOS ? 0 : 1];
    for (let i = 0; i < n; i++) {
      codes[r * n + i] =
        pattern === 'low' ? lo : pattern === 'high' ? hi : pattern === 'checkerboard' ? ((r + i) % 2 === 0 ? lo : hi) : lo + rng.int(hi - lo + 1);
    }
  }
  return codes;
}

function checkLength(codes: Uint16Array, geom: LayerGeometry): void {
  const want = geom.rowInput.length * geom.outputs;
  if (!(codes instanceof Uint16Array) || codes.length !== want) {
    throw new RangeError(`codes must be a Uint16Array of rows x outputs = ${want} values, got ${codes?.length}`);
  }
}
