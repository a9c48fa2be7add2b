/**
 * Table mode's membrane integrator: C(v) dv/dt = sum over switched-on synapses of I(Vg_eff, v)
 * plus the idle load's leakage, with I from SPICE-characterised tables (bilinear in gate and drain
 * voltage) and C(v) the MIM capacitor plus the characterised parasitics. Pure computation, no I/O.
 *
 * Between input spikes the set of active synapses is fixed and the equation is autonomous in v.
 * Bilinear interpolation is linear in v between drain-grid knots at any fixed gate voltage, so the
 * summed current of all active synapses is one piecewise-linear function of v on that grid: it is
 * kept per neuron as a vector over the knots and updated when an input switches on (two table
 * columns per synapse). With I and C both linear inside a grid cell, the travel time across the
 * cell has a closed form,
 *
 *   T(D) = int_v^{v+D} C/I dv = (D / I0) [C0 L1(r) + dC D L2(r)],   r = dI D / I0,
 *   L1(r) = log1p(r)/r,  L2(r) = (r - log1p(r))/r^2,
 *
 * (dI, dC the slopes in the cell), so the membrane is advanced cell by cell exactly for the
 * interpolated model: no time step, and the threshold crossing falls out of the same formula.
 * Threshold mismatch is a gate-voltage shift (Vg - dVth for NMOS, Vg + dVth for PMOS).
 */

import { NMOS } from '../chip-backend.ts';
import type { Grid } from './characterise-netlists.ts';
import type { IvTable, KickTable } from './characterise.ts';

export interface TableLayerModel {
  nIn: number;
  nOut: number;
  rowInput: Uint16Array;
  rowPolarity: Uint8Array;
  nmos: IvTable;
  pmos: IvTable;
  /** Switch-on charge tables; absent = no kicks. */
  kickN?: KickTable;
  kickP?: KickTable;
  /** Inputs arriving before this time (seconds) switch on while the precharge still holds the membrane: no kick. */
  kickAfter: number;
  /** Per synapse (rows x outputs): effective gate voltage (mismatch applied). */
  gateEff: Float64Array;
  /** Per synapse (rows x outputs): lower gate-grid column and the fraction toward the next one. */
  column: Int32Array;
  fraction: Float64Array;
  /** On the drain grid: total membrane capacitance (F) and background current into it (A). */
  capacitance: Float64Array;
  leak: Float64Array;
  /** Per neuron: the inverter's trip point, volts. */
  vTrip: Float64Array;
  vRest: number;
  /** Window end, seconds. */
  horizon: number;
  /** Added to every crossing time (the inverter's response), seconds. */
  delay: number;
}

/** Gate-grid column and fraction of an effective gate voltage (clamped to the table). */
export function gateColumn(vg: Grid, v: number): { column: number; fraction: number } {
  const x = (v - vg.start) / vg.step;
  const column = Math.min(vg.count - 2, Math.max(0, Math.floor(x)));
  const fraction = Math.min(1, Math.max(0, x - column));
  return { column, fraction };
}

/** Linear interpolation on a grid, clamped to its ends. */
function onGrid(values: Float64Array, g: Grid, x: number): number {
  const u = (x - g.start) / g.step;
  const j = Math.min(g.count - 2, Math.max(0, Math.floor(u)));
  const f = Math.min(1, Math.max(0, u - j));
  return values[j] + f * (values[j + 1] - values[j]);
}

/** Bilinear switch-on charge at (gate, membrane voltage), clamped to the table. */
export function kickCharge(t: KickTable, vg: number, v: number): number {
  const a = Math.min(Math.max(0, (vg - t.vg.start) / t.vg.step), t.vg.count - 1 - 1e-12);
  const b = Math.min(Math.max(0, (v - t.vd.start) / t.vd.step), t.vd.count - 1 - 1e-12);
  const ia = Math.floor(a);
  const ib = Math.floor(b);
  const fa = a - ia;
  const fb = b - ib;
  const n = t.vd.count;
  const q = t.charge;
  const lo = q[ia * n + ib] + fb * (q[ia * n + ib + 1] - q[ia * n + ib]);
  const hi = q[(ia + 1) * n + ib] + fb * (q[(ia + 1) * n + ib + 1] - q[(ia + 1) * n + ib]);
  return lo + fa * (hi - lo);
}

/**
 * Synapse k's current (amperes, into the membrane: negative for an NMOS, which sinks) at membrane voltage `v`,
 * bilinear on its polarity's table at its effective gate, as the integrator sees it.
 */
export function synapseCurrent(m: TableLayerModel, k: number, v: number): number {
  const r = Math.floor(k / m.nOut);
  const t = m.rowPolarity[r] === NMOS ? m.nmos : m.pmos;
  const n = t.vd.count;
  const c = m.column[k];
  const f = m.fraction[k];
  const atColumn = (col: number) => onGrid(t.current.subarray(col * n, (col + 1) * n), t.vd, v);
  return (1 - f) * atColumn(c) + f * atColumn(c + 1);
}

/** The membrane's total capacitance (farads) at voltage `v`: MIM plus parasitics, on the drain grid. */
export function membraneCapacitance(m: TableLayerModel, v: number): number {
  return onGrid(m.capacitance, m.nmos.vd, v);
}

/** log1p(r)/r, 1 at r = 0. */
function l1(r: number): number {
  return Math.abs(r) < 1e-5 ? 1 - r / 2 + (r * r) / 3 : Math.log1p(r) / r;
}

/** (r - log1p(r))/r^2, 1/2 at r = 0. */
function l2(r: number): number {
  return Math.abs(r) < 1e-3 ? 0.5 - r / 3 + (r * r) / 4 - (r * r * r) / 5 : (r - Math.log1p(r)) / (r * r);
}

/** Travel time over D volts from a point with current I0, capacitance C0, slopes dI, dC (Infinity past an equilibrium). */
export function cellTime(D: number, I0: number, C0: number, dI: number, dC: number): number {
  if (D === 0) return 0;
  const r = (dI * D) / I0;
  if (!(r > -1)) return Infinity;
  return (D / I0) * (C0 * l1(r) + dC * D * l2(r));
}

/**
 * Advances one neuron. `I` holds its summed current on knots kLo.. of the grid (length nK), `C`
 * the capacitance on the same knots. Moves v for at most `budget` seconds, stopping at vTrip if
 * reached. Returns the time taken to reach vTrip, or -1 if it was not reached; the new voltage is
 * written to state[0].
 */
export function advanceMembrane(
  I: Float64Array,
  iOff: number,
  C: Float64Array,
  nK: number,
  x0: number,
  h: number,
  state: Float64Array,
  budget: number,
  vTrip: number,
): number {
  let v = state[0];
  let elapsed = 0;
  const top = x0 + (nK - 1) * h;
  for (let guard = 0; guard < 4 * nK + 8 && budget > 0; guard++) {
    // Locate the cell in the direction of travel.
    const xf = (v - x0) / h;
    let lo = Math.min(nK - 2, Math.max(0, Math.floor(xf)));
    let f = (v - (x0 + lo * h)) / h;
    let Iv = I[iOff + lo] + f * (I[iOff + lo + 1] - I[iOff + lo]);
    if (Iv === 0) break;
    const up = Iv > 0;
    if (up) {
      lo = Math.min(nK - 2, Math.max(0, Math.floor(xf + 1e-9)));
      if (v >= top) break; // held at the top of the grid (the supply)
    } else {
      lo = Math.min(nK - 2, Math.max(0, Math.ceil(xf - 1e-9) - 1));
      if (v <= x0) break; // cannot happen before firing: the grid starts below every trip point
    }
    const a = x0 + lo * h;
    f = (v - a) / h;
    const i0 = I[iOff + lo];
    const i1 = I[iOff + lo + 1];
    const c0 = C[lo];
    const c1 = C[lo + 1];
    const dI = (i1 - i0) / h;
    const dC = (c1 - c0) / h;
    Iv = i0 + f * (i1 - i0);
    const Cv = c0 + f * (c1 - c0);
    if (up ? !(Iv > 0) : !(Iv < 0)) break; // stalled exactly at an equilibrium knot
    let target = up ? a + h : a;
    let trip = false;
    if (!up && vTrip >= target && vTrip < v) {
      target = vTrip;
      trip = true;
    }
    const D = target - v;
    const T = cellTime(D, Iv, Cv, dI, dC);
    if (T <= budget) {
      elapsed += T;
      budget -= T;
      v = target;
      if (trip) {
        state[0] = v;
        return elapsed;
      }
      continue;
    }
    // The budget ends inside this cell: solve T(x) = budget for the distance x in (0, |D|) (or up
    // to the equilibrium, where T diverges). Newton on a bracket, bisection when Newton leaves it.
    const sgn = up ? 1 : -1;
    let hiX = Math.abs(D);
    if (!Number.isFinite(T) && dI !== 0) hiX = Math.min(hiX, Math.abs(Iv / dI));
    let loX = 0;
    let x = Math.min(hiX * 0.5, (budget * Math.abs(Iv)) / Cv);
    for (let it = 0; it < 80; it++) {
      const t = cellTime(sgn * x, Iv, Cv, dI, dC);
      const g = t - budget;
      if (g > 0) hiX = x;
      else loX = x;
      const Ix = Iv + dI * sgn * x;
      const Cx = Cv + dC * sgn * x;
      let nx = Number.isFinite(t) && Ix !== 0 ? x - g / (Cx / Math.abs(Ix)) : NaN;
      if (!(nx > loX && nx < hiX)) nx = 0.5 * (loX + hiX);
      if (Math.abs(nx - x) < 1e-13 || hiX - loX < 1e-13) {
        x = nx;
        break;
      }
      x = nx;
    }
    v += sgn * x;
    budget = 0;
  }
  state[0] = v;
  return -1;
}

/** Output spike times (seconds, Infinity = silent), `batch x nOut`, for input times `batch x nIn` (seconds). */
export function tableLayerForward(m: TableLayerModel, inputTimes: Float64Array, batch: number): Float64Array {
  const { nIn, nOut, rowInput, rowPolarity } = m;
  const vd = m.nmos.vd;
  const nvd = vd.count;
  if (m.pmos.vd.count !== nvd || m.pmos.vd.start !== vd.start || m.pmos.vd.step !== vd.step) {
    throw new RangeError('NMOS and PMOS tables must share one drain grid');
  }
  if (inputTimes.length !== batch * nIn) throw new RangeError(`inputTimes must hold batch*nIn = ${batch * nIn} values`);
  let minTrip = Infinity;
  for (let i = 0; i < nOut; i++) minTrip = Math.min(minTrip, m.vTrip[i]);
  // Only knots from just below the lowest trip point up to the supply are ever visited.
  const kLo = Math.max(0, Math.min(nvd - 2, Math.floor((minTrip - vd.start) / vd.step) - 1));
  if (!(m.vRest > vd.start + kLo * vd.step && m.vRest < vd.start + (nvd - 1) * vd.step)) {
    throw new RangeError(`vRest ${m.vRest} V lies outside the tabulated drain range above the trip points`);
  }
  const nK = nvd - kLo;
  const x0 = vd.start + kLo * vd.step;
  const C = m.capacitance.subarray(kLo);
  const rowsOf: number[][] = Array.from({ length: nIn }, () => []);
  for (let r = 0; r < rowInput.length; r++) rowsOf[rowInput[r]].push(r);

  const out = new Float64Array(batch * nOut).fill(Infinity);
  const agg = new Float64Array(nOut * nK);
  const v = new Float64Array(nOut);
  const done = new Uint8Array(nOut);
  const state = new Float64Array(1);
  const order = new Int32Array(nIn);

  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < nOut; i++) agg.set(m.leak.subarray(kLo), i * nK);
    v.fill(m.vRest);
    done.fill(0);
    let nAct = 0;
    for (let j = 0; j < nIn; j++) {
      const t = inputTimes[b * nIn + j];
      if (!(t >= 0)) throw new RangeError(`input time [${b}, ${j}] = ${t} must be >= 0 (Infinity = silent)`);
      if (t < m.horizon) order[nAct++] = j;
    }
    const act = Array.from(order.subarray(0, nAct)).sort((p, q) => inputTimes[b * nIn + p] - inputTimes[b * nIn + q]);
    let tNow = 0;
    let remaining = nOut;
    let e = 0;
    while (e <= act.length && remaining > 0) {
      const tNext = e < act.length ? inputTimes[b * nIn + act[e]] : m.horizon;
      const budget = tNext - tNow;
      if (budget > 0) {
        for (let i = 0; i < nOut; i++) {
          if (done[i]) continue;
          state[0] = v[i];
          const dt = advanceMembrane(agg, i * nK, C, nK, x0, vd.step, state, budget, m.vTrip[i]);
          v[i] = state[0];
          if (dt >= 0) {
            done[i] = 1;
            remaining--;
            const ts = tNow + dt + m.delay;
            if (ts <= m.horizon) out[b * nOut + i] = ts;
          }
        }
        tNow = tNext;
      }
      if (e === act.length) break;
      // Switch on every input spiking at tNext: each switch first kicks the membrane by its
      // switch-on charge, then its current joins the neuron's sum.
      const kicks = tNext >= m.kickAfter;
      while (e < act.length && inputTimes[b * nIn + act[e]] === tNext) {
        for (const r of rowsOf[act[e]]) {
          const nm = rowPolarity[r] === NMOS;
          const tab = nm ? m.nmos.current : m.pmos.current;
          const kt = kicks ? (nm ? m.kickN : m.kickP) : undefined;
          for (let i = 0; i < nOut; i++) {
            if (done[i]) continue;
            const k = r * nOut + i;
            if (kt) v[i] += kickCharge(kt, m.gateEff[k], v[i]) / onGrid(m.capacitance, vd, v[i]);
            const f = m.fraction[k];
            const g = 1 - f;
            const p0 = m.column[k] * nvd + kLo;
            const p1 = p0 + nvd;
            const o = i * nK;
            for (let q = 0; q < nK; q++) agg[o + q] += g * tab[p0 + q] + f * tab[p1 + q];
          }
        }
        e++;
      }
      // A kick can carry a membrane through its trip point (PMOS switch-on pulls it down).
      for (let i = 0; i < nOut; i++) {
        if (done[i] || !(v[i] <= m.vTrip[i])) continue;
        done[i] = 1;
        remaining--;
        const ts = tNext + m.delay;
        if (ts <= m.horizon) out[b * nOut + i] = ts;
      }
    }
  }
  return out;
}
