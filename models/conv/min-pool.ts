/**
 * Pooling for time-to-first-spike coding: the earliest spike of each size x size window (stride
 * size, NHWC). With times coded as "earlier = stronger" the earliest spike plays the part max
 * pooling plays for activations: min over times = -maxPool(-times), and its gradient flows to the
 * window's earliest neuron only (maxPool's gradient goes to the argmax). A window fires when any of
 * its neurons fired (mask = maxPool(mask)); silent neurons sit at the horizon (LayerSpikes
 * convention), so they win a window only when the whole window is silent.
 */

import * as tf from '@tensorflow/tfjs-core';
import type { LayerSpikes } from '../solvers/spike-tensors.ts';

/**
 * The largest value per window (a pooled neuron's membrane: the one closest to firing),
 * differentiable (gradient to the argmax). The values are shifted to >= 1 before pooling: the wasm
 * backend's MaxPoolGrad (tfjs 4.22) sends no gradient out of a window whose values are all
 * negative, and negated spike times always are.
 */
export function maxPool(x: tf.Tensor4D, size: number): tf.Tensor4D {
  return tf.tidy(() => {
    const lo = tf.min(x).dataSync()[0]!;
    if (!Number.isFinite(lo) || lo >= 1) return tf.maxPool(x, size, size, 'valid');
    const shift = 1 - lo;
    return tf.sub(tf.maxPool(tf.add(x, shift) as tf.Tensor4D, size, size, 'valid'), shift) as tf.Tensor4D;
  });
}

/** Earliest value per window of a [B, H, W, C] tensor, differentiable (gradient to the argmin). */
export function minPool(x: tf.Tensor4D, size: number): tf.Tensor4D {
  return tf.tidy(() => tf.neg(maxPool(tf.neg(x) as tf.Tensor4D, size)) as tf.Tensor4D);
}

/**
 * Pools a layer's spikes laid out as [B, H W C] (NHWC flattened) over size x size windows:
 * times [B, (H/size)(W/size) C] (earliest in each window, clamped at the horizon when all are
 * silent) and the mask (1 when any fired).
 */
export function minPoolSpikes(s: LayerSpikes, h: number, w: number, c: number, size: number): LayerSpikes {
  const B = s.times.shape[0];
  if (s.times.shape[1] !== h * w * c) throw new RangeError(`spikes have ${s.times.shape[1]} neurons, expected ${h}x${w}x${c}`);
  const [times, mask] = tf.tidy(() => {
    const t = minPool(tf.reshape(s.times, [B, h, w, c]) as tf.Tensor4D, size);
    const m = maxPool(tf.reshape(s.mask, [B, h, w, c]) as tf.Tensor4D, size);
    const n = t.shape[1] * t.shape[2] * c;
    return [tf.reshape(t, [B, n]), tf.reshape(m, [B, n])];
  });
  return { times: times as tf.Tensor2D, mask: mask as tf.Tensor2D };
}
