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

/** Raw crossing times [batch, neurons]; +Infinity where u never reaches theta on the grid. */
export function dstdForwardKernel(G: ArrayLike<number>, A: ArrayLike<number>, theta: ArrayLike<number>, d: BinDims): Float32Array {
  const { batch, bins, neurons: n, dt } = d;
  const out = new Float32Array(batch * n).fill(Infinity);
  const u = new Float64Array(n);
  const done = new Uint8Array(n);
  for (let b = 0; b < batch; b++) {
    u.fill(0);
    done.fill(0);
    let left = n;
    for (let m = 0; m < bins && left > 0; m++) {
      const base = (b * bins + m) * n;
      for (let i = 0; i < n; i++) {
        if (done[i]) continue;
        const g = G[base + i];
        const a = A[base + i];
        const uEnd = membraneAtBinEnd(u[i], g, a, dt);
        if (uEnd >= theta[i]) {
          out[b * n + i] = m * dt + clampToBin(timeToThreshold(u[i], g, a, theta[i]), dt);
          done[i] = 1;
          left--;
        } else {
          u[i] = uEnd;
        }
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
 * gradients.
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
  const uStart = new Float64Array(bins * n);
  // expm1(-G dt) of every bin the recomputation passes, so the adjoint need not call it again.
  const em1Of = new Float64Array(bins * n);
  const u = new Float64Array(n);
  const bin = new Int32Array(n);
  const s = new Float64Array(n);
  const lam = new Float64Array(n);
  const order = new Int32Array(n);
  const atBin = new Int32Array(bins);
  for (let b = 0; b < batch; b++) {
    // Recompute the forward pass, keeping u at every bin start up to the crossing.
    u.fill(0);
    bin.fill(-1);
    let left = n;
    let last = -1;
    for (let m = 0; m < bins && left > 0; m++) {
      const base = (b * bins + m) * n;
      for (let i = 0; i < n; i++) {
        if (bin[i] >= 0) continue;
        uStart[m * n + i] = u[i];
        const g = G[base + i];
        const a = A[base + i];
        const z = g * dt;
        const em1 = Math.expm1(-z);
        em1Of[m * n + i] = em1;
        const uEnd = u[i] * (1 + em1) + a * dt * phi1Of(z, em1);
        if (uEnd >= theta[i]) {
          s[i] = clampToBin(timeToThreshold(u[i], g, a, theta[i]), dt);
          bin[i] = m;
          left--;
          if (m > last) last = m;
        } else {
          u[i] = uEnd;
        }
      }
    }
    // Inside the crossing bin: T = m* dt + s(u*, G*, A*, theta), IFT at u(s) = theta.
    lam.fill(0);
    for (let i = 0; i < n; i++) {
      const m = bin[i];
      const up = dy[b * n + i];
      if (m < 0 || up === 0) continue;
      const k = (b * bins + m) * n + i;
      const g = G[k];
      const a = A[k];
      const uS = uStart[m * n + i];
      const si = s[i];
      const slope = Math.max(a - g * theta[i], minSlope);
      const c = up / slope;
      const zS = g * si;
      const em1S = Math.expm1(-zS);
      const eS = 1 + em1S;
      gBar[k] = c * (si * eS * uS - a * si * si * dphi1Of(zS, em1S));
      aBar[k] = -c * si * phi1Of(zS, em1S);
      thetaBar[i] += c;
      lam[i] = -c * eS;
    }
    // Bins before the crossing: u_{m+1} = u_m e_m + A_m phi_m. The neurons with a gradient are
    // listed latest crossing first (a counting sort by bin), so bin m walks a prefix of the list
    // (those crossing after it) instead of testing every neuron: which neurons those are is random
    // over the layer, and the test was mispredicted as often as not.
    atBin.fill(0);
    for (let i = 0; i < n; i++) if (lam[i] !== 0) atBin[bins - 1 - bin[i]]++;
    for (let r = 0, sum = 0; r < bins; r++) {
      const c = atBin[r];
      atBin[r] = sum;
      sum += c;
    }
    for (let i = 0; i < n; i++) if (lam[i] !== 0) order[atBin[bins - 1 - bin[i]]++] = i;
    // atBin[r] is now the count of neurons crossing in bin bins - 1 - r or later.
    for (let m = last - 1; m >= 0; m--) binAdjoint(G, A, uStart, em1Of, lam, gBar, aBar, (b * bins + m) * n, m, n, dt, order, atBin[bins - 2 - m]);
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
  const uStart = new Float64Array(bins * n);
  const em1Of = new Float64Array(bins * n);
  const lam = new Float64Array(n);
  const order = new Int32Array(n);
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < n; i++) uStart[i] = 0;
    for (let m = 0; m < bins; m++) {
      const base = (b * bins + m) * n;
      for (let i = 0; i < n; i++) {
        const z = G[base + i] * dt;
        const em1 = Math.expm1(-z);
        em1Of[m * n + i] = em1;
        if (m + 1 < bins) uStart[(m + 1) * n + i] = uStart[m * n + i] * (1 + em1) + A[base + i] * dt * phi1Of(z, em1);
      }
    }
    let count = 0;
    for (let i = 0; i < n; i++) {
      lam[i] = dy[b * n + i];
      if (lam[i] !== 0) order[count++] = i;
    }
    // u_{m+1} = u_m e_m + A_m dt phi1(G_m dt), carried back from the last bin.
    for (let m = bins - 1; m >= 0; m--) binAdjoint(G, A, uStart, em1Of, lam, gBar, aBar, (b * bins + m) * n, m, n, dt, order, count);
  }
  return { G: gBar, A: aBar };
}

/**
 * Adjoint of bin m of u_{m+1} = u_m e_m + A_m dt phi1(G_m dt) (e_m = exp(-G_m dt)) for the neurons
 * `order[0..count)` whose lam is not 0 (the caller lists those the bin lies before the crossing of):
 * writes the bin's dL/dG and dL/dA at `base` and carries lam back to u_m. `uStart` holds u at each
 * bin's start and `em1Of` expm1(-G_m dt), both [bins, n], from the forward recomputation.
 */
function binAdjoint(
  G: ArrayLike<number>,
  A: ArrayLike<number>,
  uStart: Float64Array,
  em1Of: Float64Array,
  lam: Float64Array,
  gBar: Float32Array,
  aBar: Float32Array,
  base: number,
  m: number,
  n: number,
  dt: number,
  order: Int32Array,
  count: number,
): void {
  for (let k = 0; k < count; k++) {
    const i = order[k];
    const l = lam[i];
    // lam can underflow to 0 on the way back: nothing more to carry.
    if (l === 0) continue;
    const g = G[base + i];
    const a = A[base + i];
    const z = g * dt;
    const em1 = em1Of[m * n + i];
    const e = 1 + em1;
    gBar[base + i] = l * (a * dt * dt * dphi1Of(z, em1) - dt * e * uStart[m * n + i]);
    aBar[base + i] = l * dt * phi1Of(z, em1);
    lam[i] = l * e;
  }
}
