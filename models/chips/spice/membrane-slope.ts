/**
 * The membrane capacitance's slope per unit of u (docs/MODEL.md §2, "Capacitance slope"), for the
 * sloped eq. (1) calibration can fit: a layer's characterised C(v) (table mode's parasitics: the MIM
 * capacitor, the base load and every row's drain junctions) as a straight line in
 * u = (vRest - v) / (vRest - vThreshold), C(u) = C(0) (1 + k u), over the voltages a membrane spends
 * its time at: from the highest precharge calibration programs down to SLOPE_KNEE_VOLTS above the
 * threshold.
 *
 * Below that knee the comparator's input capacitance rises steeply (about 2 % of C in the last
 * tenth of a volt on the dies measured). A charge excess right at the threshold delays a crossing
 * as a higher threshold does, which each neuron's fitted threshold takes up; a straight line drawn
 * through it would tilt the whole swing instead.
 */

import type { LayerGeometry } from '../chip-backend.ts';
import { NOMINAL_CIRCUIT } from '../sky130-nominal.ts';
import { capacitanceJob, DEFAULT_PARASITICS, leakageJob, parasiticsFrom } from './characterise.ts';
import type { Grid } from './characterise-netlists.ts';
import { DEFAULT_DESIGN, type RcSpikeDesign } from './design.ts';
import { type EngineKind, spiceEngineVersion } from './engine.ts';
import { SpicePool } from './pool.ts';
import { cachedJob, spiceCacheDir } from './table-cache.ts';
import { drainGrid, membraneCapacitanceCurve } from './tables.ts';

/** Volts above the threshold where the comparator's input capacitance starts to rise; the line stops there. */
export const SLOPE_KNEE_VOLTS = 0.1;

export interface SlopeRange {
  vRest: number;
  vThreshold: number;
  /** The highest membrane voltage calibration starts from (its highest precharge). */
  vTop: number;
}

/**
 * Least-squares line of C against u at the drain-grid points in [vThreshold + SLOPE_KNEE_VOLTS, vTop]:
 * its slope over its value at u = 0.
 */
export function capacitanceSlope(curve: Float64Array, vd: Grid, r: SlopeRange): number {
  const lo = r.vThreshold + SLOPE_KNEE_VOLTS;
  const swing = r.vRest - r.vThreshold;
  if (!(swing > 0)) throw new RangeError(`vRest ${r.vRest} V must be above vThreshold ${r.vThreshold} V`);
  let n = 0;
  let su = 0;
  let sc = 0;
  let suu = 0;
  let suc = 0;
  for (let k = 0; k < vd.count; k++) {
    const v = vd.start + k * vd.step;
    if (v < lo - 1e-9 || v > r.vTop + 1e-9) continue;
    const u = (r.vRest - v) / swing;
    const c = curve[k];
    n++;
    su += u;
    sc += c;
    suu += u * u;
    suc += u * c;
  }
  if (n < 3) throw new RangeError(`the slope needs at least 3 grid points between ${lo.toFixed(3)} and ${r.vTop.toFixed(3)} V, found ${n}`);
  const b = (n * suc - su * sc) / (n * suu - su * su);
  const a = (sc - b * su) / n;
  return b / a;
}

export interface CapSlopeSetup {
  /** The die's supply and temperature as measured (the board's sensors); no temperature = the design's. */
  supply: number;
  temperatureC?: number;
  geometry: readonly LayerGeometry[];
  /** The highest precharge calibration programs, volts (calibrate-chip.ts `highestPrecharge`). */
  vTop: number;
  vRest?: number;
  vThreshold?: number;
  /** MIM capacitance, farads (default the nominal 103.3 fF: a die's own draw moves k by a few per cent of itself). */
  mim?: number;
  engine?: EngineKind;
  ngspicePath?: string;
  /** Table cache folder (default $SPIKELOOP_CACHE/spice); null = no cache. */
  cacheDir?: string | null;
  design?: RcSpikeDesign;
}

/**
 * Per layer, the slope k of the nominal array's membrane at the measured supply and temperature:
 * the leakage and capacitance characterisations of table mode (two transients, cached), then
 * `capacitanceSlope` of each layer's C(v).
 */
export async function characteriseCapSlopes(s: CapSlopeSetup): Promise<number[]> {
  if (!(Number.isFinite(s.supply) && s.supply > 1 && s.supply < 2.2))
    throw new RangeError(`supply must be a measured supply in volts (1-2.2), got ${s.supply}`);
  if (s.temperatureC !== undefined && !Number.isFinite(s.temperatureC)) throw new RangeError(`temperatureC must be finite, got ${s.temperatureC}`);
  const vRest = s.vRest ?? NOMINAL_CIRCUIT.vRest;
  const vThreshold = s.vThreshold ?? NOMINAL_CIRCUIT.vThreshold;
  const engine = s.engine ?? 'wasm';
  const base = s.design ?? DEFAULT_DESIGN;
  const design = s.temperatureC === undefined ? base : { ...base, temperatureC: s.temperatureC };
  const vd = drainGrid(s.supply);
  const cacheDir = s.cacheDir === null ? undefined : spiceCacheDir(s.cacheDir);
  const version = await spiceEngineVersion(engine, s.ngspicePath);
  const pool = new SpicePool({ engine, workers: 0, ngspicePath: s.ngspicePath });
  try {
    const run = (netlist: string) => pool.run(netlist);
    const leak = await cachedJob(leakageJob(s.supply, vRest, vd, DEFAULT_PARASITICS, design), run, version, cacheDir);
    const cap = await cachedJob(capacitanceJob(s.supply, vRest, vd, leak, DEFAULT_PARASITICS, design), run, version, cacheDir);
    const p = parasiticsFrom(vd, leak, cap);
    const mim = s.mim ?? NOMINAL_CIRCUIT.capacitance;
    return s.geometry.map((g) => capacitanceSlope(membraneCapacitanceCurve(p, g, mim), vd, { vRest, vThreshold, vTop: s.vTop }));
  } finally {
    await pool.close();
  }
}
