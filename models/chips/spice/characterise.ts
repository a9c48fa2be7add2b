/**
 * Table-mode characterisation: SPICE DC sweeps and a ramp transient turned into the tables the
 * membrane integrator (table-neuron.ts) uses. Each step is a `CharacterisationJob`: a netlist and
 * a parser of its output, so that a cache (table-cache.ts) can key on the netlist text.
 */

import {
  driveNetlist,
  gridEnd,
  gridValue,
  inverterSweepNetlist,
  kickNetlist,
  leakageNetlist,
  releaseNetlist,
  synapseSweepNetlist,
  type DriveSettings,
  type Grid,
  type ParasiticGroup,
  type ParasiticsProbe,
} from './characterise-netlists.ts';
import { DEFAULT_DESIGN, type RcSpikeDesign } from './design.ts';
import { getVector, type SpiceVectors } from './engine.ts';
import { SpiceError } from './errors.ts';

/** Drain current of one synapse branch, amperes INTO the membrane (NMOS < 0, PMOS > 0). */
export interface IvTable {
  vg: Grid;
  vd: Grid;
  /** `vg.count x vd.count`, index `ig * vd.count + id`: a gate voltage's column is contiguous. */
  current: Float64Array;
}

/** The membrane node's own load on the drain-voltage grid: base circuit and one idle row of each kind. */
export interface Parasitics {
  vd: Grid;
  /** Capacitance, farads (excluding the MIM capacitor). */
  capBase: Float64Array;
  capRowN: Float64Array;
  capRowP: Float64Array;
  /** DC current into the membrane, amperes (leakage; sign as in IvTable). */
  leakBase: Float64Array;
  leakRowN: Float64Array;
  leakRowP: Float64Array;
}

export interface CharacterisationJob<T> {
  /** Names the cache entry. */
  name: string;
  netlist: string;
  parse(result: SpiceVectors): T;
  /** Flat arrays for the cache, and back. */
  toArrays(value: T): Record<string, Float64Array>;
  fromArrays(arrays: Record<string, Float64Array>): T;
}

const CLOSE = 1e-6;

function checkGridVector(name: string, values: Float64Array, expect: (k: number) => number, netlist: string): void {
  for (let k = 0; k < values.length; k++) {
    const e = expect(k);
    if (Math.abs(values[k] - e) > CLOSE) {
      throw new SpiceError(`sweep vector ${name}[${k}] = ${values[k]}, expected ${e}: the DC sweep did not follow its grid`, netlist);
    }
  }
}

export function synapseJob(pmos: boolean, supply: number, vd: Grid, vg: Grid, design: RcSpikeDesign = DEFAULT_DESIGN): CharacterisationJob<IvTable> {
  const netlist = synapseSweepNetlist(pmos, supply, vd, vg, design);
  return {
    name: pmos ? 'iv-pmos' : 'iv-nmos',
    netlist,
    parse(res) {
      const i = getVector(res, 'i(vm)', netlist);
      const n = vd.count * vg.count;
      if (i.length !== n) {
        throw new SpiceError(`I-V sweep returned ${i.length} points, expected ${vd.count} x ${vg.count} = ${n}`, netlist);
      }
      checkGridVector('v(g)', getVector(res, 'v(g)', netlist), (k) => gridValue(vg, Math.floor(k / vd.count)), netlist);
      checkGridVector('v(v-sweep)', getVector(res, 'v(v-sweep)', netlist), (k) => gridValue(vd, k % vd.count), netlist);
      return { vg, vd, current: Float64Array.from(i) };
    },
    toArrays: (t) => ({ current: t.current }),
    fromArrays: (a) => {
      if (a.current?.length !== vd.count * vg.count) throw new Error('cached I-V table has the wrong size');
      return { vg, vd, current: a.current };
    },
  };
}

export interface ParasiticsSettings {
  rows: number;
  gateN: number;
  gateP: number;
  drive: DriveSettings;
}

/**
 * 100 nA into 100 fF plus the load slews about 0.4-0.8 V/us, the pace of a neuron driven by a few
 * weak-inversion synapses; 2 us covers rest to near ground and rest to the supply.
 */
export const DEFAULT_PARASITICS: Readonly<ParasiticsSettings> = Object.freeze({
  rows: 16,
  gateN: 0.5,
  gateP: 1.3,
  drive: Object.freeze({ current: 100e-9, reference: 100e-15, time: 2e-6, step: 0.5e-9 }),
});

export interface GroupArrays {
  base: Float64Array;
  rowN: Float64Array;
  rowP: Float64Array;
}

function perRow(group: Float64Array, base: Float64Array, rows: number): Float64Array {
  return group.map((g, k) => (g - base[k]) / rows);
}

function probeOf(s: ParasiticsSettings, vRest: number): ParasiticsProbe {
  return { rows: s.rows, vRest, gateN: s.gateN, gateP: s.gateP };
}

/** DC leakage (current into the membrane) of the base circuit and of one idle row, on the drain grid. */
export function leakageJob(
  supply: number,
  vRest: number,
  vd: Grid,
  s: ParasiticsSettings = DEFAULT_PARASITICS,
  design: RcSpikeDesign = DEFAULT_DESIGN,
): CharacterisationJob<GroupArrays> {
  const netlist = leakageNetlist(supply, probeOf(s, vRest), vd, design);
  return {
    name: 'leakage',
    netlist,
    parse(res) {
      const v = getVector(res, 'v(v-sweep)', netlist);
      if (v.length !== vd.count) throw new SpiceError(`leakage sweep returned ${v.length} points, expected ${vd.count}`, netlist);
      checkGridVector('v(v-sweep)', v, (k) => gridValue(vd, k), netlist);
      // i(va_g) is the current the drive pushes into the group; the group injects its negative.
      const into = (g: string) => getVector(res, `i(va_${g})`, netlist).map((x) => -x);
      const base = into('base');
      return { base, rowN: perRow(into('nrows'), base, s.rows), rowP: perRow(into('prows'), base, s.rows) };
    },
    toArrays: (t) => ({ base: t.base, rowN: t.rowN, rowP: t.rowP }),
    fromArrays: (a) => ({ base: a.base, rowN: a.rowN, rowP: a.rowP }),
  };
}

/** Linear interpolation of scattered (x ascending, y) samples onto a grid, flat beyond the ends. */
export function resample(xs: Float64Array, ys: Float64Array, grid: Grid): Float64Array {
  const out = new Float64Array(grid.count);
  let j = 0;
  for (let k = 0; k < grid.count; k++) {
    const x = gridValue(grid, k);
    if (x <= xs[0]) {
      out[k] = ys[0];
      continue;
    }
    if (x >= xs[xs.length - 1]) {
      out[k] = ys[ys.length - 1];
      continue;
    }
    while (xs[j + 1] < x) j++;
    const f = (x - xs[j]) / (xs[j + 1] - xs[j] || 1);
    out[k] = ys[j] + f * (ys[j + 1] - ys[j]);
  }
  return out;
}

function onGrid(values: Float64Array, vd: Grid, v: number): number {
  const x = (v - vd.start) / vd.step;
  const j = Math.min(vd.count - 2, Math.max(0, Math.floor(x)));
  const f = Math.min(1, Math.max(0, x - j));
  return values[j] + f * (values[j + 1] - values[j]);
}

/**
 * Capacitance C(v) from the current-driven transient (driveNetlist): on each node
 * (Cref + C(v)) dv/dt = -/+ I + leak(v), with dv/dt from a centred difference over the output
 * points. Falling copies give C below vRest, rising copies above it.
 */
export function capacitanceJob(
  supply: number,
  vRest: number,
  vd: Grid,
  leak: GroupArrays,
  s: ParasiticsSettings = DEFAULT_PARASITICS,
  design: RcSpikeDesign = DEFAULT_DESIGN,
): CharacterisationJob<GroupArrays> {
  const d = s.drive;
  const netlist = driveNetlist(supply, probeOf(s, vRest), d, design);
  const groupLeak = {
    base: leak.base,
    nrows: leak.base.map((b, k) => b + s.rows * leak.rowN[k]),
    prows: leak.base.map((b, k) => b + s.rows * leak.rowP[k]),
  };
  return {
    name: 'capacitance',
    netlist,
    parse(res) {
      const t = getVector(res, 'time', netlist);
      const cap = (g: ParasiticGroup) => {
        const xs: number[] = [];
        const ys: number[] = [];
        for (const dir of ['dn', 'up'] as const) {
          const v = getVector(res, `v(m_${g}_${dir})`, netlist);
          const sign = dir === 'dn' ? -1 : 1;
          const part: [number, number][] = [];
          for (let k = 2; k + 2 < t.length; k++) {
            if (t[k] < 4 * d.step) continue; // the release at t = 0
            const x = v[k];
            if (dir === 'dn' ? !(x < vRest - 1e-3 && x > vd.start) : !(x > vRest + 1e-3 && x < gridEnd(vd))) continue;
            const slope = (v[k + 2] - v[k - 2]) / (t[k + 2] - t[k - 2]);
            if (!(sign * slope > 0)) continue;
            part.push([x, (sign * d.current + onGrid(groupLeak[g], vd, x)) / slope - d.reference]);
          }
          if (part.length < 10) throw new SpiceError(`capacitance drive (${g}, ${dir}) gave only ${part.length} usable points`, netlist);
          for (const [x, y] of part) {
            xs.push(x);
            ys.push(y);
          }
        }
        const idx = xs.map((_, k) => k).sort((a, b) => xs[a] - xs[b]);
        return resample(
          Float64Array.from(idx, (k) => xs[k]),
          Float64Array.from(idx, (k) => ys[k]),
          vd,
        );
      };
      const base = cap('base');
      return { base, rowN: perRow(cap('nrows'), base, s.rows), rowP: perRow(cap('prows'), base, s.rows) };
    },
    toArrays: (c) => ({ base: c.base, rowN: c.rowN, rowP: c.rowP }),
    fromArrays: (a) => ({ base: a.base, rowN: a.rowN, rowP: a.rowP }),
  };
}

/** Charge (coulombs, into the membrane) a synapse branch injects when its switch closes. */
export interface KickTable {
  vg: Grid;
  vd: Grid;
  /** `vg.count x vd.count`, index `ig * vd.count + id`. */
  charge: Float64Array;
}

/** Gate grid of the kick tables: 50 mV steps over the DAC range plus a mismatch margin. */
export const KICK_VG: Readonly<Grid> = Object.freeze({ start: -0.1, step: 0.05, count: 41 });
/** Membrane levels at which inputs can arrive before the neuron fires (rest, and pushed up or down). */
export const KICK_VD: Readonly<Grid> = Object.freeze({ start: 0.8, step: 0.2, count: 6 });

const KICK_AT = 2e-9;
const KICK_END = 8e-9;
const KICK_STEP = 4e-12;

export function kickJob(
  pmos: boolean,
  supply: number,
  vg: Grid = KICK_VG,
  vd: Grid = KICK_VD,
  design: RcSpikeDesign = DEFAULT_DESIGN,
): CharacterisationJob<KickTable> {
  const netlist = kickNetlist(pmos, supply, vg, vd, KICK_AT, KICK_END, KICK_STEP, design);
  return {
    name: pmos ? 'kick-pmos' : 'kick-nmos',
    netlist,
    parse(res) {
      const t = getVector(res, 'time', netlist);
      const n = t.length;
      if (n < 10 || t[n - 1] < KICK_END * (1 - 1e-9)) throw new SpiceError('switch-on transient ended early', netlist);
      const charge = new Float64Array(vg.count * vd.count);
      for (let a = 0; a < vg.count; a++) {
        for (let b = 0; b < vd.count; b++) {
          const i = getVector(res, `i(vd${a}_${b})`, netlist);
          const before = i[0];
          const after = i[n - 1];
          // i(vd) is the current into the held node (the membrane); subtract the steady currents.
          let q = 0;
          for (let m = 1; m < n; m++) {
            const base = 0.5 * (t[m] + t[m - 1]) < KICK_AT ? before : after;
            q += 0.5 * (i[m] + i[m - 1] - 2 * base) * (t[m] - t[m - 1]);
          }
          charge[a * vd.count + b] = q;
        }
      }
      return { vg, vd, charge };
    },
    toArrays: (k) => ({ charge: k.charge }),
    fromArrays: (a) => {
      if (a.charge?.length !== vg.count * vd.count) throw new Error('cached kick table has the wrong size');
      return { vg, vd, charge: a.charge };
    },
  };
}

export const DEFAULT_TRIP_SWEEP: Readonly<Grid> = Object.freeze({ start: 0.5, step: 0.5e-3, count: 1601 });

/** Trip point (input voltage where the output crosses VDD/2) of each inverter, volts. */
export function tripPointJob(
  supply: number,
  dvth: Float64Array,
  sweep: Grid = DEFAULT_TRIP_SWEEP,
  design: RcSpikeDesign = DEFAULT_DESIGN,
): CharacterisationJob<Float64Array> {
  const netlist = inverterSweepNetlist(supply, dvth, sweep, design);
  const n = dvth.length / 2;
  return {
    name: 'trip-points',
    netlist,
    parse(res) {
      const x = getVector(res, 'v(v-sweep)', netlist);
      const trips = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        const o = getVector(res, `v(o${i})`, netlist);
        let t = NaN;
        for (let k = 1; k < o.length; k++) {
          if (o[k - 1] >= supply / 2 && o[k] < supply / 2) {
            t = x[k - 1] + ((supply / 2 - o[k - 1]) / (o[k] - o[k - 1])) * (x[k] - x[k - 1]);
            break;
          }
        }
        if (!Number.isFinite(t)) throw new SpiceError(`inverter ${i} does not trip inside the sweep ${sweep.start}..${x[x.length - 1]} V`, netlist);
        trips[i] = t;
      }
      return trips;
    },
    toArrays: (t) => ({ trips: t }),
    fromArrays: (a) => {
      if (a.trips?.length !== n) throw new Error('cached trip points have the wrong size');
      return a.trips;
    },
  };
}

/** Assembles the parasitics from the leakage and capacitance results. */
export function parasiticsFrom(vd: Grid, leak: GroupArrays, cap: GroupArrays): Parasitics {
  return { vd, capBase: cap.base, capRowN: cap.rowN, capRowP: cap.rowP, leakBase: leak.base, leakRowN: leak.rowN, leakRowP: leak.rowP };
}

/** Charge (coulombs, into the membrane) the precharge switch dumps on release, per precharge level. */
export interface ReleaseTable {
  vr: Grid;
  charge: Float64Array;
}

/** Precharge levels of the release table: below nominal rest up to 20 mV under the supply. */
export const RELEASE_VR: Readonly<Grid> = Object.freeze({ start: 1.0, step: 0.02, count: 40 });
const RELEASE_END = 0.3e-9;
const RELEASE_STEP = 1e-12;

/**
 * The injection charge: the base group's jump on release times the node's capacitance (reference
 * plus the base load's C at the precharge level, from the capacitance job).
 */
export function releaseJob(
  supply: number,
  vRest: number,
  vd: Grid,
  cap: GroupArrays,
  vr: Grid = RELEASE_VR,
  s: ParasiticsSettings = DEFAULT_PARASITICS,
  design: RcSpikeDesign = DEFAULT_DESIGN,
): CharacterisationJob<ReleaseTable> {
  const ref = s.drive.reference;
  const netlist = releaseNetlist(supply, probeOf(s, vRest), vr, ref, RELEASE_END, RELEASE_STEP, design);
  return {
    name: 'precharge-release',
    netlist,
    parse(res) {
      const t = getVector(res, 'time', netlist);
      if (t.length < 10 || t[t.length - 1] < RELEASE_END * (1 - 1e-9)) throw new SpiceError('precharge release transient ended early', netlist);
      const charge = new Float64Array(vr.count);
      for (let k = 0; k < vr.count; k++) {
        const v = getVector(res, `v(m${k})`, netlist);
        const v0 = v[0];
        charge[k] = (v[v.length - 1] - v0) * (ref + onGrid(cap.base, vd, v0));
      }
      return { vr, charge };
    },
    toArrays: (r) => ({ charge: r.charge }),
    fromArrays: (a) => {
      if (a.charge?.length !== vr.count) throw new Error('cached release table has the wrong size');
      return { vr, charge: a.charge };
    },
  };
}
