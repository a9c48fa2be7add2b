/**
 * The fine-step ODE baseline ("ODE-based PNN") that DSTD is measured against: explicit Euler on
 * eq. (1) with K steps over the horizon, differentiated by plain autodiff through every step.
 *
 * So that spike times of the inputs are differentiable, each input's step is averaged over each
 * Euler step exactly as DSTD averages it over a bin (binFractions); the crossing is linear
 * interpolation inside the first step whose end reaches threshold. First order in the step.
 * Same API shape as dstdDense; autodiff memory grows as B x K x N per op in the loop.
 */

import * as tf from '@tensorflow/tfjs-core';
import {
  binFractions,
  checkDense,
  denseDrives,
  finishTimes,
  firstCrossing,
  spikesToInputs,
  type DenseLayerTensors,
  type LayerSpikes,
} from './spike-tensors.ts';

export interface EulerOptions {
  /** Number of Euler steps K over the layer's horizon. */
  steps: number;
}

export function eulerDense(p: DenseLayerTensors, inputTimes: tf.Tensor2D, opts: EulerOptions): LayerSpikes {
  checkDense(p, inputTimes, opts.steps, 'steps');
  const [times, mask] = tf.tidy(() => {
    const K = opts.steps;
    const [B] = inputTimes.shape;
    const n = p.gE.shape[1];
    const h = p.horizon / K;
    const { G, A } = denseDrives(p, binFractions(inputTimes, K, p.horizon));
    const theta = p.thresholdScale ?? tf.ones([n]);
    const gs = tf.unstack(G, 1);
    const as = tf.unstack(A, 1);
    let u: tf.Tensor = tf.zeros([B, n]);
    const starts: tf.Tensor[] = [];
    const ends: tf.Tensor[] = [];
    for (let k = 0; k < K; k++) {
      starts.push(u);
      u = tf.add(u, tf.mul(tf.sub(as[k], tf.mul(gs[k], u)), h));
      ends.push(u);
    }
    const uStart = tf.stack(starts, 1);
    const uEnd = tf.stack(ends, 1);
    const first = firstCrossing(uEnd, theta);
    const fired = tf.greaterEqual(tf.sum(first, 1), 0.5);
    const u0 = tf.sum(tf.mul(first, uStart), 1);
    const u1 = tf.sum(tf.mul(first, uEnd), 1);
    const step = tf.sum(tf.mul(first, tf.reshape(tf.range(0, K, 1, 'float32'), [1, K, 1])), 1);
    const rise = tf.where(fired, tf.sub(u1, u0), tf.onesLike(u0));
    const frac = tf.div(tf.sub(theta, u0), rise);
    const raw = tf.where(fired, tf.mul(tf.add(step, frac), h), tf.fill([B, n], Infinity));
    const out = finishTimes(raw, p.horizon, p.delay);
    return [out.times, out.mask];
  });
  return { times: times as tf.Tensor2D, mask: mask as tf.Tensor2D };
}

export function eulerNetwork(
  layers: readonly DenseLayerTensors[],
  inputTimes: tf.Tensor2D,
  opts: EulerOptions | readonly EulerOptions[],
): LayerSpikes[] {
  const per = Array.isArray(opts) ? opts : layers.map(() => opts as EulerOptions);
  if (per.length !== layers.length) throw new RangeError(`got ${per.length} option objects for ${layers.length} layers`);
  const out: LayerSpikes[] = [];
  let x = inputTimes;
  for (let l = 0; l < layers.length; l++) {
    const s = eulerDense(layers[l], x, per[l]);
    if (l > 0) x.dispose();
    out.push(s);
    if (l + 1 < layers.length) x = spikesToInputs(s);
  }
  return out;
}
