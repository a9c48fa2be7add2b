/**
 * The fine-step ODE baseline ("ODE-based PNN") that DSTD is measured against: explicit Euler on
 * eq. (1) with K steps over the horizon, differentiated by plain autodiff through every step.
 *
 * So that spike times of the inputs are differentiable, each input's step is averaged over each
 * Euler step exactly as DSTD averages it over a bin (eq. 4); the drive is recomputed every step
 * (one product per step, as an ODE right-hand side would be) and the crossing is linear
 * interpolation inside the first step whose end reaches threshold. First order in the step.
 * Same API shape as dstdDense; autodiff keeps every step's intermediates, about
 * K x B x (N_in + 10 N) numbers, which is the cost DSTD removes.
 */

import * as tf from '@tensorflow/tfjs-core';
import { matMul } from '../tf/matmul.ts';
import { checkDense, finishTimes, spikesToInputs, type DenseLayerTensors, type LayerSpikes } from './spike-tensors.ts';

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
    const pnn = (p.model ?? 'pnn') === 'pnn';
    const wA = tf.add(tf.mul(p.gE, p.ePlus), tf.mul(p.gI, p.eMinus)) as tf.Tensor2D;
    const wG = pnn ? (tf.add(p.gE, p.gI) as tf.Tensor2D) : null;
    const theta = p.thresholdScale ?? tf.ones([n]);
    // Input times in steps; silent inputs clamped past the window (zero gradient).
    const tSteps = tf.mul(tf.minimum(inputTimes, 2 * p.horizon), 1 / h);
    let u: tf.Tensor = tf.zeros([B, n]);
    let fired: tf.Tensor = tf.zeros([B, n]);
    let tCross: tf.Tensor = tf.zeros([B, n]);
    const zeros = tf.zeros([B, n]);
    const ones = tf.ones([B, n]);
    for (let k = 0; k < K; k++) {
      // Each input's step averaged over [k h, (k + 1) h] (eq. 4 on the Euler grid).
      const sk = tf.clipByValue(tf.sub(k + 1, tSteps), 0, 1) as tf.Tensor2D;
      let G: tf.Tensor = wG ? matMul(sk, wG) : zeros;
      if (p.gL) G = tf.add(G, p.gL);
      const next = tf.add(u, tf.mul(tf.sub(matMul(sk, wA), tf.mul(G, u)), h));
      // Newly crossed in this step: 1/0 built from ops whose gradient is zero.
      const newly = tf.mul(tf.cast(tf.greaterEqual(next, theta), 'float32'), tf.sub(1, fired));
      const isNew = tf.greaterEqual(newly, 0.5);
      const frac = tf.div(tf.sub(theta, u), tf.where(isNew, tf.sub(next, u), ones));
      tCross = tf.add(tCross, tf.where(isNew, tf.mul(tf.add(frac, k), h), zeros));
      fired = tf.add(fired, newly);
      u = next;
    }
    const raw = tf.where(tf.greaterEqual(fired, 0.5), tCross, tf.fill([B, n], Infinity));
    const out = finishTimes(raw, p.horizon, p.delay);
    return [out.times, out.mask];
  });
  return { times: times as tf.Tensor2D, mask: mask as tf.Tensor2D };
}

export function eulerNetwork(layers: readonly DenseLayerTensors[], inputTimes: tf.Tensor2D, opts: EulerOptions | readonly EulerOptions[]): LayerSpikes[] {
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
