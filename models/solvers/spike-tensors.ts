/**
 * Tensor building blocks shared by the DSTD and Euler solvers (tfjs-core, float32):
 * a layer's parameters as tensors, input spikes as per-bin "switched-on fractions" (eq. (4) of
 * docs/MODEL.md §5.2), the per-bin conductance and drive sums, and the output convention
 * (times clamped at the horizon plus a fired mask).
 *
 * Shapes: B = batch, M = bins (or Euler steps), N_in / N = inputs / neurons.
 * Conductances and times are in the normalised units of models/neuron/units.ts.
 */

import * as tf from '@tensorflow/tfjs-core';
import type { NeuronModel, PnnLayer } from '../neuron/layer.ts';
import { matMul } from '../tf/matmul.ts';
import { viewSync } from '../tf/tensor-io.ts';

/** One dense layer's parameters as tensors (any of them may be tf.Variables being trained). */
export interface DenseLayerTensors {
  model?: NeuronModel;
  /** N_in x N, >= 0. */
  gE: tf.Tensor2D;
  /** N_in x N, >= 0. */
  gI: tf.Tensor2D;
  ePlus: tf.Scalar | number;
  eMinus: tf.Scalar | number;
  /** Finite window end, normalised time. */
  horizon: number;
  /** Leak per neuron [N] (or a scalar), >= 0. */
  gL?: tf.Tensor1D | tf.Scalar;
  /** Firing level per neuron [N], > 0; absent = 1. */
  thresholdScale?: tf.Tensor1D;
  /** Output delay per neuron [N]; absent = 0. */
  delay?: tf.Tensor1D;
}

/**
 * A layer's output: times [B, N] with silent neurons clamped at the horizon, mask 1 = fired.
 * A type alias (not an interface) so that `tf.tidy(() => spikes)` accepts it as a TensorContainer.
 */
export type LayerSpikes = {
  times: tf.Tensor2D;
  mask: tf.Tensor2D;
};

/** Copies a float64 layer into tensors (kicks are not modelled by the tensor solvers). */
export function layerToTensors(layer: PnnLayer): DenseLayerTensors {
  if (layer.kick && layer.kick.some((k) => k !== 0)) {
    throw new RangeError('kick is only supported by the exact solver; DSTD and Euler take kick-free layers');
  }
  if (!Number.isFinite(layer.horizon)) throw new RangeError(`tensor solvers need a finite horizon, got ${layer.horizon}`);
  const { nIn, nOut } = layer;
  return {
    model: layer.model,
    gE: tf.tensor2d(Float32Array.from(layer.gE), [nIn, nOut]),
    gI: tf.tensor2d(Float32Array.from(layer.gI), [nIn, nOut]),
    ePlus: tf.scalar(layer.ePlus),
    eMinus: tf.scalar(layer.eMinus),
    horizon: layer.horizon,
    gL: layer.gL ? tf.tensor1d(Float32Array.from(layer.gL)) : undefined,
    thresholdScale: layer.thresholdScale ? tf.tensor1d(Float32Array.from(layer.thresholdScale)) : undefined,
    delay: layer.delay ? tf.tensor1d(Float32Array.from(layer.delay)) : undefined,
  };
}

/** Disposes the tensors layerToTensors created. */
export function disposeLayerTensors(p: DenseLayerTensors): void {
  for (const t of [p.gE, p.gI, p.gL, p.thresholdScale, p.delay]) t?.dispose();
  if (typeof p.ePlus !== 'number') p.ePlus.dispose();
  if (typeof p.eMinus !== 'number') p.eMinus.dispose();
}

export function checkDense(p: DenseLayerTensors, inputTimes: tf.Tensor, bins: number, what: string): void {
  if (!Number.isInteger(bins) || bins < 1) throw new RangeError(`${what} must be a positive integer, got ${bins}`);
  if (!(Number.isFinite(p.horizon) && p.horizon > 0)) throw new RangeError(`horizon must be finite and > 0, got ${p.horizon}`);
  if (p.gE.rank !== 2 || p.gI.rank !== 2 || p.gE.shape.join() !== p.gI.shape.join()) {
    throw new RangeError(`gE ${JSON.stringify(p.gE.shape)} and gI ${JSON.stringify(p.gI.shape)} must be equal N_in x N matrices`);
  }
  if (inputTimes.rank !== 2 || inputTimes.shape[1] !== p.gE.shape[0]) {
    throw new RangeError(`inputTimes has shape ${JSON.stringify(inputTimes.shape)}, expected [batch, ${p.gE.shape[0]}]`);
  }
  if (p.model !== undefined && p.model !== 'pnn' && p.model !== 'ideal') {
    throw new RangeError(`model must be 'pnn' or 'ideal', got '${String(p.model)}'`);
  }
}

/**
 * Eq. (4): s_j(m) = clip((t_{m+1} - t_j)/dt, 0, 1) on M bins over [0, horizon].
 * `times` is [B, ...] (any trailing shape, e.g. images for convolutions); returns [B, M, ...].
 * +Infinity (silent) and anything at or past the horizon give 0 everywhere, with zero gradient.
 */
export function binFractions(times: tf.Tensor, bins: number, horizon: number): tf.Tensor {
  const dt = horizon / bins;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const x = args[0] as tf.Tensor;
    (args[1] as tf.GradSaveFunc)([x]);
    const value = tf.tidy(() => {
      // Clamp first so +Infinity never enters arithmetic (its gradient is then exactly 0).
      const t = tf.expandDims(tf.minimum(x, 2 * horizon), 1);
      const shape = [1, bins, ...x.shape.slice(1).map(() => 1)];
      const edges = tf.reshape(tf.range(1, bins + 1, 1, 'float32'), shape);
      return tf.clipByValue(tf.sub(edges, tf.mul(t, 1 / dt)), 0, 1);
    });
    return { value, gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => binFractionsGrad(saved[0]!, dy, bins, horizon) };
  });
  return op(times);
}

/**
 * The gradient of binFractions by hand: an input's fraction moves only in the bins where it lies
 * inside [0, 1] (one bin, two when it sits on an edge), so each input collects -dy / dt from at
 * most two bins. The same bins and factor as autodiff of the tf ops above (clip and minimum pass
 * the gradient at their bounds), without its five full-size elementwise tensors.
 */
function binFractionsGrad(times: tf.Tensor, dy: tf.Tensor, bins: number, horizon: number): tf.Tensor {
  const t = viewSync(times);
  const B = times.shape[0] ?? 1;
  const per = t.length / B;
  const inv = Math.fround(1 / (horizon / bins));
  const out = new Float32Array(t.length);
  const g = viewSync(dy);
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < per; j++) {
      const k = b * per + j;
      const tk = t[k]!;
      if (!(tk <= 2 * horizon)) continue;
      const u = Math.fround(tk * inv);
      let sum = 0;
      // Bins m with 0 <= (m + 1) - u <= 1.
      for (let m = Math.max(0, Math.ceil(u) - 1); m < bins && m <= u; m++) {
        const f = Math.fround(m + 1 - u);
        if (f >= 0 && f <= 1) sum += g[(b * bins + m) * per + j]!;
      }
      if (sum !== 0) out[k] = -sum * inv;
    }
  }
  return tf.tensor(out, times.shape, 'float32');
}

/** Per-bin conductance G and drive A, [B, M, N], of a dense layer given bin fractions S [B, M, N_in]. */
export function denseDrives(p: DenseLayerTensors, S: tf.Tensor): { G: tf.Tensor3D; A: tf.Tensor3D } {
  return tf.tidy(() => {
    const [B, M, nIn] = S.shape;
    const n = p.gE.shape[1];
    const S2 = tf.reshape(S, [B * M, nIn]) as tf.Tensor2D;
    const wA = tf.add(tf.mul(p.gE, p.ePlus), tf.mul(p.gI, p.eMinus)) as tf.Tensor2D;
    // Two products rather than one on concatenated weights: slicing the result apart along the
    // neuron axis is slower than the second product on the wasm backend.
    const A = tf.reshape(matMul(S2, wA), [B, M, n]) as tf.Tensor3D;
    let G: tf.Tensor3D;
    if ((p.model ?? 'pnn') === 'pnn') G = tf.reshape(matMul(S2, tf.add(p.gE, p.gI) as tf.Tensor2D), [B, M, n]) as tf.Tensor3D;
    else G = tf.zeros([B, M, n]);
    if (p.gL) G = tf.add(G, p.gL);
    return { G, A };
  });
}

/**
 * Output convention from raw crossing times [B, N] (+Infinity = no crossing): adds the delay,
 * marks silent whatever ends past the horizon, clamps silent times at the horizon (zero gradient).
 */
export function finishTimes(raw: tf.Tensor, horizon: number, delay?: tf.Tensor): LayerSpikes {
  const [times, mask] = tf.tidy(() => {
    const t = delay ? tf.add(raw, delay) : raw;
    const fired = tf.greaterEqual(horizon, t);
    return [tf.where(fired, t, tf.fill(t.shape, horizon)), tf.cast(fired, 'float32')];
  });
  return { times: times as tf.Tensor2D, mask: mask as tf.Tensor2D };
}

/** Next layer's input times: silent neurons become +Infinity (not spikes at the horizon). */
export function spikesToInputs(s: LayerSpikes): tf.Tensor2D {
  return tf.tidy(() => tf.where(tf.greaterEqual(s.mask, 0.5), s.times, tf.fill(s.times.shape, Infinity)) as tf.Tensor2D);
}
