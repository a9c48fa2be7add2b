/**
 * Differentiable spike-time discretisation (DSTD), docs/MODEL.md §5.2, on tfjs-core.
 *
 * A fixed grid of M bins of width dt covers [0, horizon]. Each input's step is replaced by its
 * average over each bin (binFractions, eq. 4); per bin G(m) = s(m)(gE + gI) (+ gL) and
 * A(m) = s(m)(gE E+ + gI E-) are two matrix products over all bins at once; eq. (2) advances u exactly from bin edge to
 * bin edge, and eq. (3) inside the first bin whose end reaches threshold gives the spike time.
 *
 * The bin loop and the crossing are one custom-gradient op (spikeTimesFromDrives) whose forward
 * and backward passes are hand-written loops (dstd-kernel.ts): training keeps only G and A
 * (B x M x N) for it, never B x N_in x N, and no per-bin tensors. Everything upstream of (G, A)
 * -- the bin fractions and the matrix products -- is ordinary autodiff, so convolutional layers
 * can reuse spikeTimesFromDrives with conv2d in place of matMul.
 */

import * as tf from '@tensorflow/tfjs-core';
import { dstdBackwardKernel, dstdForwardKernel, membraneEndBackwardKernel, membraneEndKernel } from './dstd-kernel.ts';
import { tensorCopy, viewSync } from '../tf/tensor-io.ts';
import { binFractions, checkDense, denseDrives, finishTimes, spikesToInputs, type DenseLayerTensors, type LayerSpikes } from './spike-tensors.ts';

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

let gradScratch: { G: Float32Array; A: Float32Array } = { G: new Float32Array(0), A: new Float32Array(0) };

/** Reused arrays for the backward kernel's dG, dA: tensorCopy copies them at once, so they are free again after each call. */
function scratch(size: number): { G: Float32Array; A: Float32Array } {
  if (gradScratch.G.length < size) gradScratch = { G: new Float32Array(size), A: new Float32Array(size) };
  return gradScratch;
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
  const [batch, bins, neurons] = G.shape;
  if (theta.rank !== 1 || theta.shape[0] !== neurons) {
    throw new RangeError(`theta has shape ${JSON.stringify(theta.shape)}, expected [${neurons}]`);
  }
  if (!(dt > 0) || !(minSlope > 0)) throw new RangeError(`dt (${dt}) and minSlope (${minSlope}) must be > 0`);
  const dims = { batch, bins, neurons, dt };
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [g, a, th] = args as tf.Tensor[];
    (args[3] as tf.GradSaveFunc)([g, a, th]);
    // Operands through views of the backend's memory (tensor-io.ts): no copies for V8 to collect.
    const raw = dstdForwardKernel(viewSync(g!), viewSync(a!), viewSync(th!), dims);
    return {
      value: tf.tensor2d(raw, [batch, neurons]),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sg, sa, sth] = saved;
        const r = dstdBackwardKernel(viewSync(sg!), viewSync(sa!), viewSync(sth!), viewSync(dy), dims, minSlope, scratch(batch * bins * neurons));
        return [tensorCopy(r.G, [batch, bins, neurons]), tensorCopy(r.A, [batch, bins, neurons]), tf.tensor1d(r.theta)];
      },
    };
  });
  return op(G, A, theta) as tf.Tensor2D;
}

/**
 * The membrane at the end of the grid [B, N] from per-bin G and A [B, M, N] (bin width dt), every
 * bin integrated and no firing level applied: for a silent neuron, the u the DSTD recursion ends
 * on at the horizon. Differentiable in G and A, so a silent neuron gets a gradient through it.
 */
export function membraneAtEnd(G: tf.Tensor3D, A: tf.Tensor3D, dt: number): tf.Tensor2D {
  if (G.rank !== 3 || A.shape.join() !== G.shape.join()) {
    throw new RangeError(`G ${JSON.stringify(G.shape)} and A ${JSON.stringify(A.shape)} must be equal [batch, bins, neurons]`);
  }
  if (!(dt > 0)) throw new RangeError(`dt must be > 0, got ${dt}`);
  const [batch, bins, neurons] = G.shape;
  const dims = { batch, bins, neurons, dt };
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [g, a] = args as tf.Tensor[];
    (args[2] as tf.GradSaveFunc)([g, a]);
    return {
      value: tf.tensor2d(membraneEndKernel(viewSync(g!), viewSync(a!), dims), [batch, neurons]),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const r = membraneEndBackwardKernel(viewSync(saved[0]!), viewSync(saved[1]!), viewSync(dy), dims);
        return [tf.tensor3d(r.G, [batch, bins, neurons]), tf.tensor3d(r.A, [batch, bins, neurons])];
      },
    };
  });
  return op(G, A) as tf.Tensor2D;
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
export function dstdNetwork(layers: readonly DenseLayerTensors[], inputTimes: tf.Tensor2D, opts: DstdOptions | readonly DstdOptions[]): LayerSpikes[] {
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
