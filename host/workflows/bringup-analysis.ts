/**
 * The statistics of bring-up, free of any device: robust location and scale, a robust curve fit,
 * and the inversion of the neuron model (docs/MODEL.md eq. (1) with one excitatory and one inhibitory
 * synapse switched on at t = 0) that turns a spike delay into an inhibitory conductance.
 *
 * Why two gate codes for "weak": a transistor's threshold mismatch changes its current by a factor
 * that shrinks as the gate moves out of weak inversion, while a weak synapse (a current factor F)
 * scales its current by F at every gate voltage. At one gate voltage a weak synapse and a strongly
 * mismatched one can look alike; across two gate voltages the natural synapses lie on one smooth
 * curve (time at the high code against time at the low code) and a weak one lies above it.
 */

import { reversalPotentials } from '../../models/neuron/units.ts';
import { NOMINAL_CIRCUIT } from '../../models/chips/sky130-nominal.ts';

/** Median of the finite values (NaN when there are none). */
export function median(values: ArrayLike<number>): number {
  const v = finiteSorted(values);
  if (v.length === 0) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

/** Median absolute deviation scaled to a Gaussian sigma (1.4826 MAD) of the finite values. */
export function robustSigma(values: ArrayLike<number>, center = median(values)): number {
  const d: number[] = [];
  for (let k = 0; k < values.length; k++) if (Number.isFinite(values[k])) d.push(Math.abs(values[k] - center));
  return 1.4826 * median(d);
}

function finiteSorted(values: ArrayLike<number>): number[] {
  const v: number[] = [];
  for (let k = 0; k < values.length; k++) if (Number.isFinite(values[k])) v.push(values[k]);
  return v.sort((a, b) => a - b);
}

export interface CurveFit {
  /** y = c0 + c1 x + c2 x^2 inside `range`, continued along the tangent outside it. */
  coef: [number, number, number];
  /** The x range of the points kept: a quadratic is not trusted beyond its data. */
  range: [number, number];
  /** Robust sigma of the residuals of the points kept. */
  sigma: number;
  /** Points used in the final fit. */
  used: number;
}

/**
 * Least-squares quadratic y(x) over the points where both are finite, refitted after dropping
 * points beyond `trim` robust sigmas (outliers must not bend the curve they are judged against).
 * Falls back to a line, then to a constant, when there are too few distinct points; `maxDegree` 1
 * fits a line whatever the count.
 */
export function robustQuadraticFit(
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  trim = 5,
  rounds = 4,
  leverage = 3,
  maxDegree: 0 | 1 | 2 = 2,
): CurveFit | undefined {
  const idx: number[] = [];
  for (let k = 0; k < x.length; k++) if (Number.isFinite(x[k]) && Number.isFinite(y[k])) idx.push(k);
  if (idx.length === 0) return undefined;
  // Points far out in x would steer a quadratic (leverage): fit the bulk, continue along the tangent.
  const xs = idx.map((k) => x[k]);
  const xc = median(xs);
  const xsd = robustSigma(xs, xc);
  let keep = xsd > 0 ? idx.filter((k) => Math.abs(x[k] - xc) <= leverage * xsd) : idx;
  if (keep.length < 3) keep = idx;
  let coef: [number, number, number] = [median(Array.from(idx, (k) => y[k])), 0, 0];
  let sigma = 0;
  let range: [number, number] = [-Infinity, Infinity];
  const at = (v: number) => evalFit({ coef, range }, v);
  for (let round = 0; round < rounds; round++) {
    const degree = Math.min(maxDegree, keep.length >= 30 ? 2 : keep.length >= 4 ? 1 : 0);
    coef =
      leastSquares(
        keep.map((k) => x[k]),
        keep.map((k) => y[k]),
        degree,
      ) ?? coef;
    range = [Infinity, -Infinity];
    for (const k of keep) range = [Math.min(range[0], x[k]), Math.max(range[1], x[k])];
    const res = keep.map((k) => y[k] - at(x[k]));
    sigma = robustSigma(res, 0);
    const next = keep.filter((_, n) => !(sigma > 0) || Math.abs(res[n]) <= trim * sigma);
    if (next.length === keep.length || next.length < 3) break;
    keep = next;
  }
  return { coef, range, sigma, used: keep.length };
}

/** The fitted curve at x (tangent continuation outside the fitted range). */
export function evalFit(fit: Pick<CurveFit, 'coef' | 'range'>, x: number): number {
  const [c0, c1, c2] = fit.coef;
  const q = (v: number) => c0 + c1 * v + c2 * v * v;
  const [lo, hi] = fit.range;
  if (x < lo) return q(lo) + (c1 + 2 * c2 * lo) * (x - lo);
  if (x > hi) return q(hi) + (c1 + 2 * c2 * hi) * (x - hi);
  return q(x);
}

/** Least squares polynomial of the given degree (0..2) by the normal equations on centred x; undefined if singular. */
function leastSquares(x: number[], y: number[], degree: number): [number, number, number] | undefined {
  const n = degree + 1;
  const xm = x.reduce((s, v) => s + v, 0) / x.length;
  const m = Array.from({ length: n }, () => new Float64Array(n + 1));
  for (let k = 0; k < x.length; k++) {
    const p = [1, x[k] - xm, (x[k] - xm) ** 2];
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) m[i][j] += p[i] * p[j];
      m[i][n] += p[i] * y[k];
    }
  }
  for (let i = 0; i < n; i++) {
    let piv = i;
    for (let r = i + 1; r < n; r++) if (Math.abs(m[r][i]) > Math.abs(m[piv][i])) piv = r;
    [m[i], m[piv]] = [m[piv], m[i]];
    if (!(Math.abs(m[i][i]) > 1e-12 * (Math.abs(m[0][0]) + 1e-300))) return undefined;
    for (let r = i + 1; r < n; r++) {
      const f = m[r][i] / m[i][i];
      for (let c = i; c <= n; c++) m[r][c] -= f * m[i][c];
    }
  }
  const c = [0, 0, 0];
  for (let i = n - 1; i >= 0; i--) {
    let s = m[i][n];
    for (let j = i + 1; j < n; j++) s -= m[i][j] * c[j];
    c[i] = s / m[i][i];
  }
  // Back from centred x: c0 + c1 (x - xm) + c2 (x - xm)^2.
  return [c[0] - c[1] * xm + c[2] * xm * xm, c[1] - 2 * c[2] * xm, c[2]];
}

/** Reversal potentials of the reference circuit (normalised, docs/MODEL.md §2, eq. (5)). */
export const NOMINAL_REVERSAL = reversalPotentials(NOMINAL_CIRCUIT);

/**
 * Firing time (normalised) of a neuron from rest with excitatory conductance gE and inhibitory gI
 * switched on together at t = 0 and threshold 1 (eq. 2-3); Infinity when it never fires.
 */
export function firingTime(gE: number, gI: number, ePlus = NOMINAL_REVERSAL.ePlus, eMinus = NOMINAL_REVERSAL.eMinus): number {
  const g = gE + gI;
  if (!(g > 0)) return Infinity;
  const u = (gE * ePlus + gI * eMinus) / g;
  if (!(u > 1)) return Infinity;
  return Math.log(u / (u - 1)) / g;
}

/** The excitatory conductance that fires a neuron from rest at time `tau` (> 0) on its own. */
export function excitatoryFromTime(tau: number, ePlus = NOMINAL_REVERSAL.ePlus): number {
  return Math.log(ePlus / (ePlus - 1)) / tau;
}

/**
 * The inhibitory conductance that delays a neuron driven by `gE` until `tau` (normalised);
 * 0 when tau is not later than gE alone would fire, Infinity when no finite gI is that slow.
 */
export function inhibitoryFromTime(gE: number, tau: number, ePlus = NOMINAL_REVERSAL.ePlus, eMinus = NOMINAL_REVERSAL.eMinus): number {
  if (!(gE > 0) || !(tau > 0)) return NaN;
  if (tau <= firingTime(gE, 0, ePlus, eMinus)) return 0;
  if (!Number.isFinite(tau)) return Infinity;
  // Past the balance point gE (E+ - 1) = gI (1 - E-) the neuron never fires.
  let lo = 0;
  let hi = (gE * (ePlus - 1)) / (1 - eMinus);
  for (let k = 0; k < 100; k++) {
    const mid = 0.5 * (lo + hi);
    if (firingTime(gE, mid, ePlus, eMinus) < tau) lo = mid;
    else hi = mid;
  }
  return 0.5 * (lo + hi);
}
