/**
 * One neuron of eq. (1) (docs/MODEL.md §2) as the calibration fits it: a spike time from a short list
 * of active inputs, and the closed-form inversions that turn a single-synapse spike time into that
 * synapse's conductance.
 *
 * Inputs are given per active input: time (normalised), gE, gI and the kick of its switching on.
 * For the ideal (current-based) model pass ePlus = 1, eMinus = -1, `ideal = true`: gE and gI are
 * then drives (du/dt contributions) and nothing depends on u. The crossing level is `theta`; the
 * returned time excludes the neuron's delay. There is no window: a neuron that never crosses
 * returns +Infinity.
 */

import { dphi1, phi1, timeToThreshold } from '../models/solvers/exact.ts';
import { slopedAdvance, slopedPartials, slopedTimeToThreshold } from '../models/solvers/sloped-membrane.ts';

/** The sloped reverse sweep's per-interval partials (one buffer: this runs per sample and fit step). */
const partials = { du0: 0, dA: 0, dG: 0 };

export interface NeuronInputs {
  /** Number of active inputs (entries used in the arrays below). */
  count: number;
  /** Switch-on times, ascending. */
  times: Float64Array;
  gE: Float64Array;
  gI: Float64Array;
  kick: Float64Array;
  /**
   * Per active input, its NMOS's E over ePlus and its PMOS's E over eMinus (a transistor's reversal potential at its
   * own gate, reversal-curve.ts `reversalShape`); absent = 1 (one E+ and one E- for every synapse).
   */
  fE?: Float64Array;
  fI?: Float64Array;
}

export interface NeuronPhysics {
  ePlus: number;
  eMinus: number;
  theta: number;
  ideal: boolean;
  /**
   * The membrane capacitance's slope per unit of u, C(u) = C(0) (1 + capSlope u) (models/solvers/sloped-membrane.ts);
   * absent or 0 = eq. (1)'s constant C. Not used by the ideal model.
   */
  capSlope?: number;
}

/** Spike crossing time of one neuron (no delay), +Infinity when it never reaches theta. */
export function neuronCrossing(inp: NeuronInputs, p: NeuronPhysics): number {
  const { count, times, gE, gI, kick, fE, fI } = inp;
  const { ePlus, eMinus, theta, ideal } = p;
  // With a capacitance slope each interval goes through sloped-membrane.ts (eq. (1c)); without, eqs. (2)-(3).
  const cs = ideal ? 0 : (p.capSlope ?? 0);
  let u = 0;
  let G = 0;
  let A = 0;
  let tPrev = 0;
  for (let k = 0; k < count; k++) {
    const t = times[k];
    if (k > 0 && t > tPrev) {
      const d = t - tPrev;
      const s = cs === 0 ? timeToThreshold(u, G, A, theta) : slopedTimeToThreshold(u, G, A, theta, cs);
      if (s <= d) return tPrev + s;
      if (cs === 0) {
        const z = G * d;
        u = u * Math.exp(-z) + A * d * phi1(z);
      } else u = slopedAdvance(u, d, G, A, cs);
    }
    if (!ideal) G += gE[k] + gI[k];
    A += gE[k] * ePlus * (fE ? fE[k] : 1) + gI[k] * eMinus * (fI ? fI[k] : 1);
    u += kick[k];
    if (u >= theta) return t;
    tPrev = t;
  }
  if (count === 0) return Infinity;
  const s = cs === 0 ? timeToThreshold(u, G, A, theta) : slopedTimeToThreshold(u, G, A, theta, cs);
  return s < Infinity ? tPrev + s : Infinity;
}

/** Buffers of `neuronCrossingGrad` (per active input; reuse one per neuron fit). */
export interface CrossingGrad {
  /** dT/dgE, dT/dgI per active input (zero for inputs after the crossing). */
  dgE: Float64Array;
  dgI: Float64Array;
  /**
   * dT/dfE, dT/dfI per active input (the E factors of `NeuronInputs`, 1 when absent): what a change of a transistor's
   * own E does, e.g. of the card shape's strength in eq. (1a) (d fE / dk = fE ln e).
   */
  dfE: Float64Array;
  dfI: Float64Array;
  /** dT/dtheta, dT/dE+, dT/dE- of the last call. */
  dTheta: number;
  dEPlus: number;
  dEMinus: number;
  /** Forward trace (u, G, A after each applied event; uEnd: u at the end of the interval that follows it). */
  u: Float64Array;
  uEnd: Float64Array;
  G: Float64Array;
  A: Float64Array;
}

export function crossingGradBuffers(maxInputs: number): CrossingGrad {
  const n = Math.max(1, maxInputs);
  return {
    dgE: new Float64Array(n),
    dgI: new Float64Array(n),
    dfE: new Float64Array(n),
    dfI: new Float64Array(n),
    dTheta: 0,
    dEPlus: 0,
    dEMinus: 0,
    u: new Float64Array(n),
    uEnd: new Float64Array(n),
    G: new Float64Array(n),
    A: new Float64Array(n),
  };
}

/**
 * `neuronCrossing` plus its exact derivatives (docs/MODEL.md eqs. (2)-(3) and the implicit function
 * theorem at u(T) = theta, the reverse pass of models/solvers/exact.ts for one neuron): one
 * backward sweep over the intervals gives dT/dg of every active input, so a sample costs
 * O(active inputs) instead of O(active^2) for finite differences. A silent neuron, or one that a
 * kick alone lifts over threshold, has zero derivatives.
 */
export function neuronCrossingGrad(inp: NeuronInputs, p: NeuronPhysics, out: CrossingGrad): number {
  const { count, times, gE, gI, kick, fE, fI } = inp;
  const { ePlus, eMinus, theta, ideal } = p;
  const cs = ideal ? 0 : (p.capSlope ?? 0);
  const { u: trU, uEnd, G: trG, A: trA, dgE, dgI, dfE, dfI } = out;
  dgE.fill(0, 0, count);
  dgI.fill(0, 0, count);
  dfE.fill(0, 0, count);
  dfI.fill(0, 0, count);
  out.dTheta = 0;
  out.dEPlus = 0;
  out.dEMinus = 0;
  let u = 0;
  let G = 0;
  let A = 0;
  let tPrev = 0;
  let kc = -1;
  let T = Infinity;
  for (let k = 0; k < count; k++) {
    const t = times[k];
    if (k > 0 && t > tPrev) {
      const d = t - tPrev;
      const s = cs === 0 ? timeToThreshold(u, G, A, theta) : slopedTimeToThreshold(u, G, A, theta, cs);
      if (s <= d) {
        T = tPrev + s;
        kc = k - 1;
        break;
      }
      if (cs === 0) {
        const z = G * d;
        u = u * Math.exp(-z) + A * d * phi1(z);
      } else u = slopedAdvance(u, d, G, A, cs);
    }
    // The sloped reverse sweep needs each interval's end state (unchanged across a zero-length interval).
    if (k > 0) uEnd[k - 1] = u;
    if (!ideal) G += gE[k] + gI[k];
    A += gE[k] * ePlus * (fE ? fE[k] : 1) + gI[k] * eMinus * (fI ? fI[k] : 1);
    u += kick[k];
    trU[k] = u;
    trG[k] = G;
    trA[k] = A;
    if (u >= theta) return t;
    tPrev = t;
  }
  if (count === 0) return Infinity;
  if (kc < 0) {
    const s = cs === 0 ? timeToThreshold(u, G, A, theta) : slopedTimeToThreshold(u, G, A, theta, cs);
    if (!(s < Infinity)) return Infinity;
    T = tPrev + s;
    kc = count - 1;
  }
  // du/dt at the crossing (over 1 + k theta with a slope).
  const slope = cs === 0 ? trA[kc] - trG[kc] * theta : (trA[kc] - trG[kc] * theta) / (1 + cs * theta);
  let lam = -1 / slope;
  out.dTheta = 1 / slope;
  let cg = 0;
  let ca = 0;
  let dEp = 0;
  let dEm = 0;
  for (let k = kc; k >= 0; k--) {
    if (cs === 0) {
      const d = (k === kc ? T : times[k + 1]) - times[k];
      const Gk = trG[k];
      const z = Gk * d;
      const e = Math.exp(-z);
      // u_end = u e^{-z} + A d phi1(z): partials with respect to G and A of this interval.
      if (!ideal) cg += lam * (-d * e * trU[k] + trA[k] * d * d * dphi1(z));
      ca += lam * d * phi1(z);
      lam *= e;
    } else {
      // The end state solves F(u0, u1) = d: its partials from sloped-membrane.ts, ending at theta in the crossing's interval.
      slopedPartials(trU[k], k === kc ? theta : uEnd[k], trG[k], trA[k], cs, partials);
      cg += lam * partials.dG;
      ca += lam * partials.dA;
      lam *= partials.du0;
    }
    const fe = fE ? fE[k] : 1;
    const fi = fI ? fI[k] : 1;
    dgE[k] = cg + ca * ePlus * fe;
    dgI[k] = cg + ca * eMinus * fi;
    dEp += ca * gE[k] * fe;
    dEm += ca * gI[k] * fi;
    dfE[k] = ca * gE[k] * ePlus;
    dfI[k] = ca * gI[k] * eMinus;
  }
  out.dEPlus = dEp;
  out.dEMinus = dEm;
  return T;
}

/**
 * Conductance (or, ideal, drive) of an excitatory synapse firing its neuron alone after `tau`
 * (spike time minus switch-on minus delay), starting from the kick `u0`:
 * PNN: tau = ln((E+ - u0)/(E+ - theta)) / g; ideal: tau = (theta - u0) / w. NaN when impossible.
 * With a capacitance slope k, tau is sloped-membrane.ts's crossing time, ((1 + k E+) ln((E+ - u0)/(E+ - theta)) - k (theta - u0)) / g.
 */
export function excitatoryFromTime(tau: number, u0: number, p: NeuronPhysics): number {
  if (!(tau > 0)) return NaN;
  if (p.ideal) return (p.theta - u0) / tau;
  if (!(p.ePlus > p.theta) || u0 >= p.theta) return NaN;
  return excitatoryTime(1, u0, p) / tau;
}

/** Time for an excitatory synapse of conductance g alone to fire its neuron from `u0` (PNN; the inverse of excitatoryFromTime). */
export function excitatoryTime(g: number, u0: number, p: NeuronPhysics): number {
  const { ePlus, theta } = p;
  const k = p.capSlope ?? 0;
  return k === 0 ? Math.log((ePlus - u0) / (ePlus - theta)) / g : slopedTimeToThreshold(u0, g, g * ePlus, theta, k);
}

/** Firing time of an NMOS + PMOS pair switched on together (module-level: this runs per sweep sample and fit step). */
function pairTime(gE: number, gI: number, ePlus: number, eMinus: number, theta: number, u0: number, k: number): number {
  const G = gE + gI;
  const U = (gE * ePlus + gI * eMinus) / G;
  if (!(U > theta)) return Infinity;
  return k === 0 ? Math.log((U - u0) / (U - theta)) / G : slopedTimeToThreshold(u0, G, G * U, theta, k);
}

/**
 * Inhibitory conductance of a PMOS synapse switched on together with a known excitatory one
 * (`gE`), given the pair's firing time `tau` (after switch-on, delay removed). Solved by safeguarded
 * Newton on the closed-form time (monotone in gI). NaN when tau is shorter than gE alone allows.
 */
export function inhibitoryFromPairTime(tau: number, gE: number, u0: number, p: NeuronPhysics, guess = 0): number {
  if (!(tau > 0) || !(gE > 0)) return NaN;
  const { ePlus, eMinus, theta } = p;
  if (p.ideal) {
    // tau = (theta - u0) / (wE - wI)  (wE = gE * 1, wI = gI * 1 with ePlus = 1, eMinus = -1)
    const wI = (gE * ePlus - (theta - u0) / tau) / -eMinus;
    return wI >= 0 ? wI : NaN;
  }
  const k = p.capSlope ?? 0;
  if (pairTime(gE, 0, ePlus, eMinus, theta, u0, k) >= tau) return NaN;
  // U > theta  <=>  gI < gE (E+ - theta) / (theta - E-)
  const hi = (gE * (ePlus - theta)) / (theta - eMinus);
  let lo = 0;
  let up = hi;
  let x = guess > 0 && guess < hi ? guess : 0.5 * hi;
  for (let it = 0; it < 40; it++) {
    const t = pairTime(gE, x, ePlus, eMinus, theta, u0, k);
    if (t > tau) up = x;
    else lo = x;
    const G = gE + x;
    const U = (gE * ePlus + x * eMinus) / G;
    // t G = (1 + k U) L - k (theta - u0), with dU/dx = (E- - U) / G and dL/dU = (u0 - theta) / ((U - u0)(U - theta)).
    const deriv =
      k === 0
        ? ((eMinus - U) * (u0 - theta)) / ((U - u0) * (U - theta)) / (G * G) - t / G
        : ((((u0 - theta) / ((U - u0) * (U - theta))) * (1 + k * U) + k * Math.log((U - u0) / (U - theta))) * (eMinus - U)) / (G * G) - t / G;
    let next = x - (t - tau) / deriv;
    if (!(next > lo && next < up) || !Number.isFinite(next)) next = 0.5 * (lo + up);
    if (Math.abs(next - x) <= 1e-12 * Math.max(x, 1e-12)) return next;
    x = next;
  }
  return x;
}
