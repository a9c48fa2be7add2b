/**
 * Table mode's characterised chip: device tables (shared by every chip with the same design and
 * engine) and per-chip trip points, assembled into per-layer integrator models (table-neuron.ts).
 */

import { NMOS, type DacSpec, type LayerGeometry } from '../chip-backend.ts';
import {
  capacitanceJob,
  DEFAULT_PARASITICS,
  leakageJob,
  parasiticsFrom,
  synapseJob,
  tripPointJob,
  kickJob,
  releaseJob,
  type IvTable,
  type ReleaseTable,
  type KickTable,
  type Parasitics,
} from './characterise.ts';
import type { Grid } from './characterise-netlists.ts';
import type { RcSpikeDesign } from './design.ts';
import type { SpiceVectors } from './engine.ts';
import { cachedJob, type CacheStats } from './table-cache.ts';
import { gateColumn, type TableLayerModel } from './table-neuron.ts';

export interface DeviceTables {
  nmos: IvTable;
  pmos: IvTable;
  kickN: KickTable;
  kickP: KickTable;
  parasitics: Parasitics;
  /** Precharge switch charge injection against the precharge level (absent: ideal switch, none). */
  release?: ReleaseTable;
}

/** The precharge switch opens within the first picosecond; inputs before then kick nothing. */
export const PRECHARGE_RELEASE = 1e-12;

export interface TableSetup {
  run: (netlist: string) => Promise<SpiceVectors>;
  engineVersion: string;
  /** Cache folder; undefined = characterise every time. */
  cacheDir: string | undefined;
  design: RcSpikeDesign;
  supply: number;
  vRest: number;
  dac: DacSpec;
  stats?: CacheStats;
  /** Called as each characterisation job ends (`cached`: read from the cache, no simulation). */
  onJob?: (name: string, cached: boolean) => void;
}

/** Jobs `characteriseDevices` runs (for progress totals): five sweeps, the capacitance, and the release with MOS switches. */
export function deviceJobCount(design: RcSpikeDesign): number {
  return design.switches === 'mos' ? 7 : 6;
}

/** Drain grid: the supply range in 10 mV steps. */
export function drainGrid(supply: number): Grid {
  const count = Math.round(supply / 0.01) + 1;
  return { start: 0, step: supply / (count - 1), count };
}

/**
 * Gate grid: every DAC code's voltage, extended by 64 codes on each side so that gates shifted by
 * threshold mismatch (several sigma) stay on the table.
 */
export function gateGrid(dac: DacSpec): Grid {
  const levels = 2 ** dac.bits;
  const step = (dac.vMax - dac.vMin) / (levels - 1);
  return { start: dac.vMin - 64 * step, step, count: levels + 128 };
}

export async function characteriseDevices(s: TableSetup): Promise<DeviceTables> {
  const vd = drainGrid(s.supply);
  const vg = gateGrid(s.dac);
  const job = <T>(j: Parameters<typeof cachedJob<T>>[0]) => runJob(s, j);
  const [nmos, pmos, leak, kickN, kickP] = await Promise.all([
    job(synapseJob(false, s.supply, vd, vg, s.design)),
    job(synapseJob(true, s.supply, vd, vg, s.design)),
    job(leakageJob(s.supply, s.vRest, vd, DEFAULT_PARASITICS, s.design)),
    job(kickJob(false, s.supply, undefined, undefined, s.design)),
    job(kickJob(true, s.supply, undefined, undefined, s.design)),
  ]);
  const cap = await job(capacitanceJob(s.supply, s.vRest, vd, leak, DEFAULT_PARASITICS, s.design));
  const release = s.design.switches === 'mos' ? await job(releaseJob(s.supply, s.vRest, vd, cap, undefined, DEFAULT_PARASITICS, s.design)) : undefined;
  return { nmos, pmos, kickN, kickP, parasitics: parasiticsFrom(vd, leak, cap), release };
}

export async function characteriseTripPoints(s: TableSetup, inverterDvth: Float64Array): Promise<Float64Array> {
  return runJob(s, tripPointJob(s.supply, inverterDvth, undefined, s.design));
}

/** One job through the cache, reported to `onJob` with whether it was a cache hit. */
async function runJob<T>(s: TableSetup, j: Parameters<typeof cachedJob<T>>[0]): Promise<T> {
  // Jobs run concurrently: each counts into its own stats, added to the shared ones after.
  const own: CacheStats = { hits: 0, misses: 0 };
  const value = await cachedJob(j, s.run, s.engineVersion, s.cacheDir, own);
  if (s.stats) {
    s.stats.hits += own.hits;
    s.stats.misses += own.misses;
  }
  s.onJob?.(j.name, own.hits > 0);
  return value;
}

export interface TableLayerInputs {
  geometry: LayerGeometry;
  /** Programmed gate voltages, rows x outputs. */
  gates: Float64Array;
  synapseDvth: Float64Array;
  vTrip: Float64Array;
  capacitance: number;
  vRest: number;
  horizon: number;
  delay: number;
  /** Inputs switching before this (seconds) kick nothing: the precharge switch still holds the membrane. */
  kickAfter?: number;
  /** Model switch-on charge kicks (default true). */
  kicks?: boolean;
}

/** A layer's membrane capacitance on the drain grid (farads): the MIM capacitor, the base load and every row's junctions. */
export function membraneCapacitanceCurve(p: Parasitics, g: LayerGeometry, mim: number): Float64Array {
  let nN = 0;
  for (let r = 0; r < g.rowInput.length; r++) if (g.rowPolarity[r] === NMOS) nN++;
  const nP = g.rowInput.length - nN;
  return p.capBase.map((c, k) => mim + c + nN * p.capRowN[k] + nP * p.capRowP[k]);
}

export function buildTableLayer(t: DeviceTables, x: TableLayerInputs): TableLayerModel {
  const g = x.geometry;
  const rows = g.rowInput.length;
  const n = rows * g.outputs;
  const column = new Int32Array(n);
  const fraction = new Float64Array(n);
  const gateEff = new Float64Array(n);
  let nN = 0;
  for (let r = 0; r < rows; r++) {
    const nm = g.rowPolarity[r] === NMOS;
    if (nm) nN++;
    const vg = (nm ? t.nmos : t.pmos).vg;
    for (let i = 0; i < g.outputs; i++) {
      const k = r * g.outputs + i;
      const veff = nm ? x.gates[k] - x.synapseDvth[k] : x.gates[k] + x.synapseDvth[k];
      gateEff[k] = veff;
      const c = gateColumn(vg, veff);
      column[k] = c.column;
      fraction[k] = c.fraction;
    }
  }
  const nP = rows - nN;
  const p = t.parasitics;
  const capacitance = membraneCapacitanceCurve(p, g, x.capacitance);
  const leak = p.leakBase.map((c, k) => c + nN * p.leakRowN[k] + nP * p.leakRowP[k]);
  // The precharge switch's injection lands on the whole membrane: the start moves by Q / C(vRest).
  const vStart = t.release ? x.vRest + onGridValue(t.release.vr, t.release.charge, x.vRest) / onGridValue(p.vd, capacitance, x.vRest) : x.vRest;
  return {
    nIn: g.inputs,
    nOut: g.outputs,
    rowInput: g.rowInput,
    rowPolarity: g.rowPolarity,
    nmos: t.nmos,
    pmos: t.pmos,
    kickN: x.kicks === false ? undefined : t.kickN,
    kickP: x.kicks === false ? undefined : t.kickP,
    kickAfter: x.kickAfter ?? PRECHARGE_RELEASE,
    gateEff,
    column,
    fraction,
    capacitance,
    leak,
    vTrip: x.vTrip,
    vRest: vStart,
    horizon: x.horizon,
    delay: x.delay,
  };
}

/** Linear interpolation on a grid, clamped at its ends. */
function onGridValue(g: Grid, values: Float64Array, v: number): number {
  const x = (v - g.start) / g.step;
  const j = Math.min(g.count - 2, Math.max(0, Math.floor(x)));
  const f = Math.min(1, Math.max(0, x - j));
  return values[j] + f * (values[j + 1] - values[j]);
}
