/**
 * Eq. (1) with a membrane capacitance that is linear in u: C(u) = C(0) (1 + k u), `k` the
 * capacitance slope per unit of u (docs/MODEL.md §2, "Capacitance slope"). Between input events
 * (fixed G = sum of conductances, A = sum of g E) the membrane follows
 *
 *   (1 + k u) du/dt = A - G u,
 *
 * which has no closed form for u(t), but its inverse, the time to go from u0 to u1, has one:
 *
 *   F(u0, u1) = integral from u0 to u1 of (1 + k s) / (A - G s) ds
 *             = du (1 + k u0) / W0 + du^2 (G + k A) h(y) / W0^2,
 *   du = u1 - u0, W0 = A - G u0, y = G du / W0, h(y) = (-log1p(-y) - y) / y^2,
 *
 * written so that G -> 0 (the ideal model, or a weak layer) does not cancel. A crossing time is
 * F(u, theta); the state at the next event solves F(u0, u1) = d by Newton from the k = 0 solution.
 * k = 0 gives eq. (2) exactly. Pure functions, no allocation: they run per sample in the fits.
 */

import { phi1 } from './exact.ts';

/**
 * The largest |k| a chip may be given: 0.5 per unit of u is a capacitance 50 % larger at the threshold than at
 * rest, where the arrays measured have 0.0006-0.006 (docs/MODEL.md §2).
 */
export const MAX_CAP_SLOPE = 0.5;

/** h(y) = (-log1p(-y) - y) / y^2 = sum over n >= 0 of y^n / (n + 2), for 0 <= y < 1. */
export function hLog(y: number): number {
  if (y < 0.05) {
    let s = 0;
    let p = 1;
    for (let n = 0; n < 13; n++) {
      s += p / (n + 2);
      p *= y;
    }
    return s;
  }
  return (-Math.log1p(-y) - y) / (y * y);
}

/** h'(y) = sum over n >= 1 of n y^(n-1) / (n + 2) = (1 / (1 - y) - 2 h(y)) / y. */
export function dhLog(y: number): number {
  if (y < 0.05) {
    let s = 0;
    let p = 1;
    for (let n = 1; n < 14; n++) {
      s += (n * p) / (n + 2);
      p *= y;
    }
    return s;
  }
  return (1 / (1 - y) - 2 * hLog(y)) / y;
}

/**
 * Time from u0 to u0 + du at fixed G, A; +Infinity when the membrane cannot get there (it would
 * have to pass the asymptote A / G, or it is not driven that way).
 */
export function slopedTime(u0: number, du: number, G: number, A: number, k: number): number {
  if (du === 0) return 0;
  const W0 = A - G * u0;
  // Moving up needs a positive drive, moving down a negative one.
  if (!(du > 0 ? W0 > 0 : W0 < 0)) return Infinity;
  const y = (G * du) / W0;
  if (!(y < 1)) return Infinity;
  // du / W0 factored out, so a drive near the smallest doubles does not square into an underflow.
  return (du / W0) * (1 + k * u0 + (y + (k * du * A) / W0) * hLog(y));
}

/** Time to reach theta from u (0 when already there), +Infinity when it never does: eq. (3) with the slope. */
export function slopedTimeToThreshold(u: number, G: number, A: number, theta: number, k: number): number {
  if (u >= theta) return 0;
  return slopedTime(u, theta - u, G, A, k);
}

/** u after a time d at fixed G, A, from u0: F(u0, u1) = d solved by safeguarded Newton. */
export function slopedAdvance(u0: number, d: number, G: number, A: number, k: number): number {
  if (!(d > 0)) return u0;
  const W0 = A - G * u0;
  if (W0 === 0) return u0;
  const z = G * d;
  // k = 0: du = d W0 phi1(z) (eq. (2)); the slope only slows the membrane by a few per cent.
  const du = d * W0 * phi1(z);
  if (k === 0) return u0 + du;
  // Newton on m = |du|: the time grows with m, which stays short of the asymptote, m < |W0| / G.
  const sgn = W0 > 0 ? 1 : -1;
  let m = Math.abs(du);
  let lo = 0;
  let hi = G > 0 ? Math.abs(W0) / G : Infinity;
  for (let it = 0; it < 40; it++) {
    const f = slopedTime(u0, sgn * m, G, A, k) - d;
    if (f > 0) hi = m;
    else lo = m;
    const u1 = u0 + sgn * m;
    // dF/dm: the time per unit of u at u1.
    const rate = Math.abs((1 + k * u1) / (A - G * u1));
    let next = m - f / rate;
    if (Math.abs(next - m) <= 1e-14 * m) return u0 + sgn * next;
    // Outside the bracket (or not a number): bisect, or widen while the bracket is open.
    if (!(next > lo && next < hi)) next = hi === Infinity ? 2 * Math.max(m, lo) : 0.5 * (lo + hi);
    m = next;
  }
  return u0 + sgn * m;
}

/** Partials of the end state u1 of one interval (u0 -> u1 at fixed G, A, fixed duration) with respect to u0, A and G. */
export interface SegmentPartials {
  du0: number;
  dA: number;
  dG: number;
}

/**
 * Partials of u1 when F(u0, u1) = d holds at fixed d: du1/du0 = f(u0) / f(u1) with f(s) = (1 + k s) / (A - G s),
 * du1/dA = -F_A / f(u1), du1/dG = -F_G / f(u1), F_A and F_G from the closed form of F (u0 and u1 held).
 * An interval that ends at a crossing (u1 = theta at the free time T) uses the same partials with
 * dT/du(T) = -1 / f(theta) (the reverse pass of neuron-model.ts).
 */
export function slopedPartials(u0: number, u1: number, G: number, A: number, k: number, out: SegmentPartials): SegmentPartials {
  const du = u1 - u0;
  const W0 = A - G * u0;
  const W1 = A - G * u1;
  const f0 = (1 + k * u0) / W0;
  const f1 = (1 + k * u1) / W1;
  if (du === 0) {
    out.du0 = 1;
    out.dA = 0;
    out.dG = 0;
    return out;
  }
  const y = (G * du) / W0;
  const h = hLog(y);
  const dh = dhLog(y);
  const P = du * (1 + k * u0);
  const Q = du * du * (G + k * A);
  const W2 = W0 * W0;
  const yA = -y / W0;
  const yG = (du + y * u0) / W0;
  const FA = -P / W2 + (du * du * k * h) / W2 + (Q * dh * yA) / W2 - (2 * Q * h) / (W2 * W0);
  const FG = (P * u0) / W2 + (du * du * h) / W2 + (Q * dh * yG) / W2 + (2 * Q * h * u0) / (W2 * W0);
  out.du0 = f0 / f1;
  out.dA = -FA / f1;
  out.dG = -FG / f1;
  return out;
}
