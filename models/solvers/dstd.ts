/**
 * Differentiable spike-time discretisation (DSTD), PNN-MODEL.md section 4, on tfjs-core.
 *
 * A fixed grid of M bins of width dt covers [0, horizon]. Each input's step is replaced by its
 * average over each bin (binFractions, eq. 4); per bin G(m) = s(m)(gE + gI) (+ gL) and
 * A(m) = s(m)(gE E+ + gI E-) are one matrix product; eq. (2) advances u exactly from bin edge to
 * bin edge, and eq. (3) inside the first bin whose end reaches threshold gives the spike time.
 *
 * The bin loop and the crossing are one custom-gradient op (spikeTimesFromDrives): its backward
 * pass is written by hand and vectorised over bins (the adjoint of u_m before the crossing bin is
 * lambda* exp(-dt sum G) over the bins in between, a cumulative sum), so training keeps
 * O(B x M x N) tensors (G, A, u at bin starts) and never B x N_in x N. Everything upstream of
 * (G, A) -- the bin fractions and the matrix product -- is ordinary autodiff, so convolutional
 * layers can reuse spikeTimesFromDrives with conv2d in place of matMul.
 */

import * as tf from '@tensorflow/tfjs-core';
import {
  binFractions,
  checkDense,
  denseDrives,
  dphi1Tensor,
  finishTimes,
  phi1Tensor,
  spikesToInputs,
  type DenseLayerTensors,
  type LayerSpikes,
} from './spike-tensors.ts';

export interface DstdOptions {
  /** Number of bins M over the layer's horizon. */
  bins: number;
  /**
   * Lower bound on du/dt at the crossing used in the backward pass (default 1e-3 / horizon):
   * keeps near-tangent crossings from producing huge gradients.
   */
  minSlope?: number;
}

export interface DriveOptions {
  /** Bin width. */
  dt: number;
  minSlope: number;
}

/**
 * The DSTD core. G and A are [B, M, N] (per-bin conductance >= 0 and drive), theta is [N]
 * (firing levels). Returns the raw crossing times [B, N], +Infinity where u never reaches theta on
 * the grid. Gradients flow to G, A and theta.
 */
export function spikeTimesFromDrives(G: tf.Tensor3D, A: tf.Tensor3D, theta: tf.Tensor1D, opts: DriveOptions): tf.Tensor2D {
  const { dt, minSlope } = opts;
  if (G.rank !== 3 || A.shape.join() !== G.shape.join()) {
    throw new RangeError(`G ${JSON.stringify(G.shape)} and A ${JSON.stringify(A.shape)} must be equal [batch, bins, neurons]`);
  }
  const [B, M, N] = G.shape;
  if (theta.rank !== 1 || theta.shape[0] !== N) throw new RangeError(`theta has shape ${JSON.stringify(theta.shape)}, expected [${N}]`);
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [g, a, th] = args as tf.Tensor[];
    const save = args[3] as tf.GradSaveFunc;
    const z = tf.mul(g, dt);
    const e = tf.exp(tf.neg(z));
    const inc = tf.mul(a, tf.mul(phi1Tensor(z), dt));
    const es = tf.unstack(e, 1);
    const incs = tf.unstack(inc, 1);
    let u: tf.Tensor = tf.zeros([B, N]);
    const starts: tf.Tensor[] = [];
    const ends: tf.Tensor[] = [];
    for (let m = 0; m < M; m++) {
      starts.push(u);
      u = tf.add(tf.mul(u, es[m]), incs[m]);
      ends.push(u);
    }
    const uStart = tf.stack(starts, 1);
    const crossed = tf.cast(tf.greaterEqual(tf.stack(ends, 1), th), 'float32');
    // First crossing bin as a one-hot over bins (all zero if u never reaches theta).
    const first = tf.mul(crossed, tf.cast(tf.lessEqual(tf.cumsum(crossed, 1), 1), 'float32'));
    const fired = tf.sum(first, 1);
    const bin = tf.sum(tf.mul(first, binIndex(M)), 1);
    const uS = tf.sum(tf.mul(first, uStart), 1);
    const gS = tf.sum(tf.mul(first, g), 1);
    const aS = tf.sum(tf.mul(first, a), 1);
    const s = crossingDelay(uS, gS, aS, th, fired, dt);
    const raw = tf.where(tf.greater(fired, 0.5), tf.add(tf.mul(bin, dt), s), tf.fill([B, N], Infinity));
    save([g, a, th, uStart, bin, fired, s]);
    return {
      value: raw as tf.Tensor2D,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => backward(dy, saved, dt, minSlope),
    };
  });
  return op(G, A, theta) as tf.Tensor2D;
}

function binIndex(M: number): tf.Tensor {
  return tf.reshape(tf.range(0, M, 1, 'float32'), [1, M, 1]);
}

/** Eq. (3) in the stable form s = (D/r) psi(x), clamped to the bin. */
function crossingDelay(u: tf.Tensor, g: tf.Tensor, a: tf.Tensor, theta: tf.Tensor, fired: tf.Tensor, dt: number): tf.Tensor {
  const D = tf.sub(theta, u);
  const r = tf.sub(a, tf.mul(g, u));
  const rSafe = tf.where(tf.greater(fired, 0.5), tf.maximum(r, 1e-30), tf.onesLike(r));
  const x = tf.clipByValue(tf.div(tf.mul(g, D), rSafe), 0, 1 - 1e-6);
  const series = tf.add(1, tf.mul(x, tf.add(0.5, tf.mul(x, tf.add(1 / 3, tf.mul(x, 0.25))))));
  const xs = tf.maximum(x, 1e-3);
  const psi = tf.where(tf.less(x, 1e-3), series, tf.div(tf.neg(tf.log1p(tf.neg(xs))), xs));
  return tf.clipByValue(tf.mul(tf.div(D, rSafe), psi), 0, dt);
}

function backward(dy: tf.Tensor, saved: tf.Tensor[], dt: number, minSlope: number): tf.Tensor[] {
  return tf.tidy(() => {
    const [g, a, th, uStart, bin, fired, s] = saved;
    const M = g.shape[1]!;
    const firedB = tf.greater(fired, 0.5);
    const first = tf.mul(tf.cast(tf.equal(binIndex(M), tf.expandDims(bin, 1)), 'float32'), tf.expandDims(fired, 1));
    const uS = tf.sum(tf.mul(first, uStart), 1);
    const gS = tf.sum(tf.mul(first, g), 1);
    const aS = tf.sum(tf.mul(first, a), 1);
    const tBar = tf.where(firedB, dy, tf.zerosLike(dy));
    // Crossing inside bin m*: T = m* dt + s(u*, G*, A*, theta); implicit function theorem at u = theta.
    const slope = tf.maximum(tf.sub(aS, tf.mul(gS, th)), minSlope);
    const zS = tf.mul(gS, s);
    const eS = tf.exp(tf.neg(zS));
    const phiS = tf.mul(s, phi1Tensor(zS));
    const dphiS = tf.mul(tf.square(s), dphi1Tensor(zS));
    const k = tf.div(tBar, slope);
    const lamStar = tf.neg(tf.mul(k, eS)); // dL/du at the start of the crossing bin
    const gBarStar = tf.mul(k, tf.sub(tf.mul(tf.mul(s, eS), uS), tf.mul(aS, dphiS)));
    const aBarStar = tf.neg(tf.mul(k, phiS));
    const thetaBar = tf.sum(k, 0);
    // Bins m < m*: adjoint of u_{m+1} is lamStar * exp(-dt * sum_{l=m+1}^{m*-1} G_l).
    const cIncl = tf.cumsum(g, 1);
    const cStar = tf.sum(tf.mul(first, tf.sub(cIncl, g)), 1);
    const before = tf.greater(tf.sub(1, tf.cumsum(first, 1)), 0.5);
    const expo = tf.minimum(tf.mul(tf.sub(tf.expandDims(cStar, 1), cIncl), -dt), 0);
    const lamNext = tf.where(before, tf.mul(tf.expandDims(lamStar, 1), tf.exp(expo)), tf.zerosLike(g));
    const z = tf.mul(g, dt);
    const e = tf.exp(tf.neg(z));
    const phi = tf.mul(phi1Tensor(z), dt);
    const dphi = tf.mul(dphi1Tensor(z), dt * dt);
    // u_{m+1} = u_m e_m + A_m phi_m: d/dG_m = -dt e_m u_m + A_m dt^2 phi1'(z_m), d/dA_m = phi_m.
    const gBar = tf.add(
      tf.mul(lamNext, tf.sub(tf.mul(a, dphi), tf.mul(tf.mul(e, uStart), dt))),
      tf.mul(first, tf.expandDims(gBarStar, 1)),
    );
    const aBar = tf.add(tf.mul(lamNext, phi), tf.mul(first, tf.expandDims(aBarStar, 1)));
    return [gBar, aBar, tf.reshape(thetaBar, th.shape)];
  });
}

/** One dense layer: input spike times [B, N_in] (+Infinity = silent) to output spikes. */
export function dstdDense(p: DenseLayerTensors, inputTimes: tf.Tensor2D, opts: DstdOptions): LayerSpikes {
  checkDense(p, inputTimes, opts.bins, 'bins');
  const [times, mask] = tf.tidy(() => {
    const n = p.gE.shape[1];
    const dt = p.horizon / opts.bins;
    const S = binFractions(inputTimes, opts.bins, p.horizon);
    const { G, A } = denseDrives(p, S);
    const theta = p.thresholdScale ?? tf.ones([n]);
    const raw = spikeTimesFromDrives(G, A, theta as tf.Tensor1D, { dt, minSlope: opts.minSlope ?? 1e-3 / p.horizon });
    const out = finishTimes(raw, p.horizon, p.delay);
    return [out.times, out.mask];
  });
  return { times: times as tf.Tensor2D, mask: mask as tf.Tensor2D };
}

/**
 * A dense network: every layer's spikes. Layer l's inputs are layer l-1's times with silent
 * neurons as +Infinity; `opts` is one options object for all layers or one per layer.
 */
export function dstdNetwork(
  layers: readonly DenseLayerTensors[],
  inputTimes: tf.Tensor2D,
  opts: DstdOptions | readonly DstdOptions[],
): LayerSpikes[] {
  const per = Array.isArray(opts) ? opts : layers.map(() => opts as DstdOptions);
  if (per.length !== layers.length) throw new RangeError(`got ${per.length} option objects for ${layers.length} layers`);
  const out: LayerSpikes[] = [];
  let x = inputTimes;
  for (let l = 0; l < layers.length; l++) {
    const s = dstdDense(layers[l], x, per[l]);
    if (l > 0) x.dispose();
    out.push(s);
    if (l + 1 < layers.length) x = spikesToInputs(s);
  }
  return out;
}
