/**
 * The DSTD bin recurrence and its adjoint as plain loops over typed arrays (float64 inside).
 *
 * Inputs are per-bin conductance G and drive A, laid out [batch, bins, neurons] row-major, and the
 * firing level theta per neuron. Forward: u_0 = 0, u_{m+1} = u_m e_m + A_m phi_m (eq. 2 over a
 * bin, e = exp(-G dt), phi = dt phi1(G dt)); the first bin whose end reaches theta holds the spike,
 * at m* dt + s with s from eq. (3). Backward: the implicit function theorem at u = theta inside bin
 * m*, then the adjoint of u carried back through the bins before it (lambda_m = lambda_{m+1} e_m).
 *
 * These run inside a tf.customGrad op (dstd.ts). Every backend used from Node keeps tensors in
 * host memory, and one pass over B x M x N numbers here is cheaper than the dozens of small tensor
 * ops (and slices along the bin axis) the same recurrence costs in tfjs.
 */

import { dphi1FromExpm1 as dphi1Of, phi1FromExpm1 as phi1Of, timeToThreshold } from './exact.ts';

/** Rounding can put eq. (3) a hair outside the bin whose end crossed (or give Infinity): clamp. */
function clampToBin(s: number, dt: number): number {
  return s >= 0 ? (s < dt ? s : dt) : 0;
}

export interface BinDims {
  batch: number;
  bins: number;
  neurons: number;
  /** Bin width. */
  dt: number;
}

/** u at the end of a bin of length dt with constant drives g, a, from u at its start (exact within the bin). */
function membraneAtBinEnd(u0: number, g: number, a: number, dt: number): number {
  const z = g * dt;
  const em1 = Math.expm1(-z);
  return u0 * (1 + em1) + a * dt * phi1Of(z, em1);
}

/**
 * Raw crossing times [batch, neurons]; +Infinity where u never reaches theta on the grid. Neuron by
 * neuron, each walking its bins until it crosses (a sample's [bins, neurons] blocks of G and A are
 * tens of KB, so the strided reads stay in cache): u stays in a register, and there is no per-bin
 * test of "fired already?", which was mispredicted at random across a layer.
 */
export function dstdForwardKernel(G: ArrayLike<number>, A: ArrayLike<number>, theta: ArrayLike<number>, d: BinDims): Float32Array {
  const { batch, bins, neurons: n, dt } = d;
  const out = new Float32Array(batch * n).fill(Infinity);
  for (let b = 0; b < batch; b++) {
    const start = b * bins * n;
    for (let i = 0; i < n; i++) {
      const th = theta[i];
      let u = 0;
      for (let m = 0, k = start + i; m < bins; m++, k += n) {
        const g = G[k];
        const a = A[k];
        const uEnd = membraneAtBinEnd(u, g, a, dt);
        if (uEnd >= th) {
          out[b * n + i] = m * dt + clampToBin(timeToThreshold(u, g, a, th), dt);
          break;
        }
        u = uEnd;
      }
    }
  }
  return out;
}

export interface BinGradients {
  G: Float32Array;
  A: Float32Array;
  theta: Float32Array;
}

/**
 * Gradients of L given dL/d(raw time) `dy` [batch, neurons] (ignored where silent). `minSlope`
 * bounds du/dt at the crossing from below so near-tangent crossings give large, not huge,
 * gradients. Neuron by neuron, as the forward kernel: its walk to the crossing recomputed (keeping u
 * at each bin start and each bin's expm1(-G dt)), then its adjoint carried back bin by bin.
 */
export function dstdBackwardKernel(
  G: ArrayLike<number>,
  A: ArrayLike<number>,
  theta: ArrayLike<number>,
  dy: ArrayLike<number>,
  d: BinDims,
  minSlope: number,
  /** Arrays of at least batch x bins x neurons to write dG, dA into (zeroed first) instead of new ones. */
  into?: { G: Float32Array; A: Float32Array },
): BinGradients {
  const { batch, bins, neurons: n, dt } = d;
  const size = batch * bins * n;
  const gBar = into ? into.G.subarray(0, size).fill(0) : new Float32Array(size);
  const aBar = into ? into.A.subarray(0, size).fill(0) : new Float32Array(size);
  const thetaBar = new Float64Array(n);
  const uStart = new Float64Array(bins);
  const em1Of = new Float64Array(bins);
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < n; i++) {
      const up = dy[b * n + i];
      if (up === 0) continue;
      const th = theta[i];
      // The forward walk, up to the crossing bin m (k its entry); m = bins when the neuron is silent.
      let u = 0;
      let s = 0;
      let m = 0;
      let k = b * bins * n + i;
      for (; m < bins; m++, k += n) {
        uStart[m] = u;
        const g = G[k];
        const a = A[k];
        const z = g * dt;
        const em1 = Math.expm1(-z);
        em1Of[m] = em1;
        const uEnd = u * (1 + em1) + a * dt * phi1Of(z, em1);
        if (uEnd >= th) {
          s = clampToBin(timeToThreshold(u, g, a, th), dt);
          break;
        }
        u = uEnd;
      }
      if (m === bins) continue;
      // Inside the crossing bin: T = m dt + s(u*, G*, A*, theta), IFT at u(s) = theta.
      const g = G[k];
      const a = A[k];
      const uS = uStart[m];
      const slope = Math.max(a - g * th, minSlope);
      const c = up / slope;
      const zS = g * s;
      const em1S = Math.expm1(-zS);
      const eS = 1 + em1S;
      gBar[k] = c * (s * eS * uS - a * s * s * dphi1Of(zS, em1S));
      aBar[k] = -c * s * phi1Of(zS, em1S);
      thetaBar[i] += c;
      // Bins before the crossing: u_{q+1} = u_q e_q + A_q phi_q.
      binsAdjoint(G, A, uStart, em1Of, -c * eS, gBar, aBar, k - n, m - 1, n, dt);
    }
  }
  return { G: gBar, A: aBar, theta: Float32Array.from(thetaBar) };
}

/**
 * The membrane at the grid's end [batch, neurons], integrating every bin and ignoring the firing
 * level: for a neuron that stays silent it is the u the forward recursion ends on. Why: a silent
 * neuron's clamped time carries no gradient, but how far this u stays below threshold does (the
 * trainer's surrogate for silent neurons, models/training/losses.ts).
 */
export function membraneEndKernel(G: ArrayLike<number>, A: ArrayLike<number>, d: BinDims): Float32Array {
  const { batch, bins, neurons: n, dt } = d;
  const out = new Float32Array(batch * n);
  const u = new Float64Array(n);
  for (let b = 0; b < batch; b++) {
    u.fill(0);
    for (let m = 0; m < bins; m++) {
      const base = (b * bins + m) * n;
      for (let i = 0; i < n; i++) {
        u[i] = membraneAtBinEnd(u[i], G[base + i], A[base + i], dt);
      }
    }
    for (let i = 0; i < n; i++) out[b * n + i] = u[i];
  }
  return out;
}

/** Adjoint of membraneEndKernel: dL/dG, dL/dA [batch, bins, neurons] from dL/du_end `dy` [batch, neurons]. */
export function membraneEndBackwardKernel(G: ArrayLike<number>, A: ArrayLike<number>, dy: ArrayLike<number>, d: BinDims): { G: Float32Array; A: Float32Array } {
  const { batch, bins, neurons: n, dt } = d;
  const gBar = new Float32Array(batch * bins * n);
  const aBar = new Float32Array(batch * bins * n);
  const uStart = new Float64Array(bins);
  const em1Of = new Float64Array(bins);
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < n; i++) {
      const up = dy[b * n + i];
      if (up === 0) continue;
      const first = b * bins * n + i;
      let u = 0;
      for (let m = 0, k = first; m < bins; m++, k += n) {
        uStart[m] = u;
        const z = G[k] * dt;
        const em1 = Math.expm1(-z);
        em1Of[m] = em1;
        u = u * (1 + em1) + A[k] * dt * phi1Of(z, em1);
      }
      // u_{m+1} = u_m e_m + A_m dt phi1(G_m dt), carried back from the last bin.
      binsAdjoint(G, A, uStart, em1Of, up, gBar, aBar, first + (bins - 1) * n, bins - 1, n, dt);
    }
  }
  return { G: gBar, A: aBar };
}

/**
 * One neuron's adjoint of u_{q+1} = u_q e_q + A_q dt phi1(G_q dt) (e_q = exp(-G_q dt)) through bins
 * `last` down to 0, starting from dL/du_{last+1} = `lam`: writes each bin's dL/dG and dL/dA (its entry
 * `k` for bin `last`, one row of `n` earlier per bin) and carries lam back. `uStart` and `em1Of` hold
 * the neuron's u at each bin start and expm1(-G_q dt), from its forward walk.
 */
function binsAdjoint(
  G: ArrayLike<number>,
  A: ArrayLike<number>,
  uStart: Float64Array,
  em1Of: Float64Array,
  lam: number,
  gBar: Float32Array,
  aBar: Float32Array,
  k: number,
  last: number,
  n: number,
  dt: number,
): void {
  // lam can underflow to 0 on the way back: nothing more to carry.
  for (let q = last; q >= 0 && lam !== 0; q--, k -= n) {
    const g = G[k];
    const a = A[k];
    const z = g * dt;
    const em1 = em1Of[q];
    const e = 1 + em1;
    gBar[k] = lam * (a * dt * dt * dphi1Of(z, em1) - dt * e * uStart[q]);
    aBar[k] = lam * dt * phi1Of(z, em1);
    lam = lam * e;
  }
}
