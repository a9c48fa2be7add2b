/**
 * Loss terms for time-to-first-spike training (docs/MODEL.md §6, eq. (9)).
 *
 * - ttfsCrossEntropy: cross-entropy of softmax(-t_out / tauSoft): the target neuron should fire
 *   first, by a margin measured in units of tauSoft.
 * - windowPenalty: keeps fired spikes inside their layer's window [start, horizon] (network.ts):
 *   a spike before the start fired before all of its inputs arrived (the neuron decided on part of
 *   its input, the degenerate "first input wins" regime TTFS training otherwise drifts into), and a
 *   spike that drifts past the horizon becomes silent and stops passing gradient. Zero inside
 *   [start, horizon - margin * width]; quadratic outside, in units of margin * width.
 * - deadNeuronPenalty: a silent neuron's clamped time has zero gradient, so nothing else would
 *   ever revive it. For neurons silent on (nearly) the whole batch, and for output neurons that
 *   should have fired (the label's neuron), this pushes the layer's ideal-limit membrane at the
 *   horizon (SpikeLayer.restPotential, linear in the weights) up to `target` thresholds. For the
 *   PNN that potential overestimates the real membrane (the reversal potentials only reduce the
 *   drive), hence a target above 1; deadMembrane 1 uses the model's own membrane at the horizon
 *   instead (SpikeLayer.horizonMembrane).
 * - silentPseudoTimes (silentScale > 0): silent output neurons enter the cross-entropy at
 *   horizon + silentScale * width * (1 - u_H) (u_H = their membrane at the horizon in thresholds)
 *   instead of at the horizon, so the cross-entropy itself pulls a silent label neuron towards
 *   firing and pushes silent competitors away, in proportion to how far each stayed from
 *   threshold. Continuous at the threshold (u_H -> 1 gives the horizon, where a neuron that just
 *   fired lands) and monotone; the fired times, the mask and so the predictions are unchanged.
 */

import * as tf from '@tensorflow/tfjs-core';
import type { SpikeLayer } from '../network/layer.ts';
import type { LayerSpikes } from '../solvers/spike-tensors.ts';

export interface LossConfig {
  /** Softmax temperature in normalised time units. */
  tauSoft: number;
  /** Weight of the window term (0 = off). */
  windowWeight: number;
  /** The window term starts this fraction of the window before the horizon. */
  windowMargin: number;
  /** Weight of the dead-neuron term (0 = off). */
  deadWeight: number;
  /** A hidden neuron firing for at most this fraction of the batch counts as dead. */
  deadRate: number;
  /** Ideal-limit membrane (in thresholds) the dead-neuron term pushes silent neurons to. */
  deadTarget: number;
  /**
   * The membrane the dead-neuron term pushes: 0 = restPotential (ideal limit, linear in the
   * weights, overestimates the PNN), 1 = the model's membrane at the horizon (horizonMembrane).
   * Numbers, not names: loss settings are stored as numbers (fine-tuning checkpoints).
   */
  deadMembrane: number;
  /**
   * What the dead-neuron term is a mean over: 0 = the selected (sample, neuron) pairs, so a batch
   * with one silent label neuron pushes it as hard as the whole cross-entropy pulls; 1 = every
   * candidate pair (output layer: the batch's samples; hidden layers: samples x neurons), so the
   * term, like the cross-entropy, is a mean over the batch and shrinks as fewer neurons stay silent.
   */
  deadMean: number;
  /**
   * Silent output neurons in the cross-entropy: 0 = clamped at the horizon (no gradient); > 0 =
   * silentPseudoTimes with this many output windows of delay per threshold the membrane fell short.
   */
  silentScale: number;
}

export const DEFAULT_LOSS: Readonly<LossConfig> = Object.freeze({
  tauSoft: 0.1,
  windowWeight: 1,
  windowMargin: 0.1,
  deadWeight: 1,
  deadRate: 0,
  deadTarget: 2,
  deadMembrane: 0,
  deadMean: 0,
  silentScale: 0,
});

/** Mean cross-entropy of softmax(-times / tauSoft) against integer labels [B]. */
export function ttfsCrossEntropy(times: tf.Tensor2D, labels: tf.Tensor1D, tauSoft: number): tf.Scalar {
  if (!(tauSoft > 0)) throw new RangeError(`tauSoft must be > 0, got ${tauSoft}`);
  return tf.tidy(() => {
    const logp = tf.logSoftmax(tf.mul(times, -1 / tauSoft));
    const onehot = tf.oneHot(tf.cast(labels, 'int32'), times.shape[1]);
    return tf.neg(tf.mean(tf.sum(tf.mul(onehot, logp), 1))) as tf.Scalar;
  });
}

/**
 * Output times for the cross-entropy with silent neurons placed after the horizon:
 * fired: t; silent: horizon + scale * width * relu(1 - membrane), membrane [B, N] in thresholds at
 * the horizon (SpikeLayer.horizonMembrane). The relu keeps a neuron silent only through its delay
 * (u_H already at threshold) at the horizon.
 */
export function silentPseudoTimes(s: LayerSpikes, membrane: tf.Tensor2D, horizon: number, width: number, scale: number): tf.Tensor2D {
  if (!(width > 0) || !(scale > 0)) throw new RangeError(`width (${width}) and scale (${scale}) must be > 0`);
  return tf.tidy(() => {
    const late = tf.add(tf.mul(tf.relu(tf.sub(1, membrane)), scale * width), horizon);
    return tf.where(tf.greaterEqual(s.mask, 0.5), s.times, late) as tf.Tensor2D;
  });
}

/** Penalty for fired spikes before `start` or in the last `margin` of the window [start, horizon]. */
export function windowPenalty(s: LayerSpikes, start: number, horizon: number, margin: number): tf.Scalar {
  const width = margin * (horizon - start);
  if (!(width > 0)) throw new RangeError(`window margin must be > 0 and the window non-empty, got margin ${margin} on [${start}, ${horizon}]`);
  return tf.tidy(() => {
    const late = tf.relu(tf.sub(s.times, horizon - width));
    const early = tf.relu(tf.sub(start, s.times));
    return tf.mean(tf.mul(s.mask, tf.div(tf.add(tf.square(late), tf.square(early)), width * width))) as tf.Scalar;
  });
}

/** Identity forward, zero gradient. */
export function stopGradient<T extends tf.Tensor>(x: T): T {
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const t = args[0] as tf.Tensor;
    return { value: tf.clone(t), gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy) };
  });
  return op(x) as T;
}

/**
 * Which (sample, neuron) pairs the dead-neuron term acts on, from a layer's fired mask [B, N]:
 * hidden layers: every sample of a neuron that fired for at most deadRate * B samples;
 * the output layer: the label's neuron wherever it stayed silent. Null when there are none.
 */
export function deadSelection(mask: Float32Array, B: number, N: number, opts: { deadRate: number; labels?: ArrayLike<number> }): Float32Array | null {
  const sel = new Float32Array(B * N);
  let any = false;
  if (opts.labels) {
    for (let b = 0; b < B; b++) {
      const k = b * N + opts.labels[b]!;
      if (mask[k]! < 0.5) {
        sel[k] = 1;
        any = true;
      }
    }
    return any ? sel : null;
  }
  const limit = opts.deadRate * B;
  for (let i = 0; i < N; i++) {
    let fired = 0;
    for (let b = 0; b < B; b++) fired += mask[b * N + i]! > 0.5 ? 1 : 0;
    if (fired <= limit) {
      any = true;
      for (let b = 0; b < B; b++) sel[b * N + i] = 1;
    }
  }
  return any ? sel : null;
}

/**
 * Sum over selected pairs of relu(target - v), v = layer.restPotential(inputs), or with
 * `membrane` = { bins } the model's membrane layer.horizonMembrane(inputs) on that grid, divided by
 * `candidates` when given (a mean over every pair that could have been selected, LossConfig.deadMean
 * 1), else by the number selected. The inputs are treated as constants (the term should change this
 * layer's weights, not the layers below).
 */
export function deadNeuronPenalty(
  layer: SpikeLayer,
  inputs: tf.Tensor2D,
  selection: Float32Array,
  target: number,
  membrane?: { bins: number },
  candidates?: number,
): tf.Scalar {
  if (candidates !== undefined && !(Number.isInteger(candidates) && candidates > 0))
    throw new RangeError(`candidates must be a positive integer, got ${candidates}`);
  return tf.tidy(() => {
    const [B] = inputs.shape;
    const sel = tf.tensor2d(selection, [B, layer.nOut]);
    return tf.div(tf.sum(tf.mul(sel, deadNeuronMargins(layer, inputs, target, membrane))), candidates ?? Math.max(1, selectedCount(selection))) as tf.Scalar;
  });
}

/**
 * relu(target - v) [B, nOut] for every (sample, neuron) pair, v as in deadNeuronPenalty, the inputs
 * held constant. A dense layer's column i depends on neuron i's own weights only, which is what lets
 * data-parallel training (data-parallel.ts) select dead neurons after its shards are summed.
 */
export function deadNeuronMargins(layer: SpikeLayer, inputs: tf.Tensor2D, target: number, membrane?: { bins: number }): tf.Tensor2D {
  return tf.tidy(() => {
    const x = stopGradient(inputs);
    const v = membrane ? layer.horizonMembrane(x, { bins: membrane.bins, inputGrad: false }) : layer.restPotential(x);
    return tf.relu(tf.sub(target, v)) as tf.Tensor2D;
  });
}

function selectedCount(selection: Float32Array): number {
  let count = 0;
  for (let k = 0; k < selection.length; k++) count += selection[k]!;
  return count;
}

/** Cross-entropy of softmax(-t / tauSoft) in float64 (evaluation, no tensors). */
export function crossEntropyOf(times: ArrayLike<number>, labels: ArrayLike<number>, n: number, classes: number, tauSoft: number): number {
  let total = 0;
  for (let b = 0; b < n; b++) {
    let mx = -Infinity;
    for (let c = 0; c < classes; c++) mx = Math.max(mx, -times[b * classes + c]! / tauSoft);
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += Math.exp(-times[b * classes + c]! / tauSoft - mx);
    total += -(-times[b * classes + labels[b]!]! / tauSoft - mx - Math.log(sum));
  }
  return n > 0 ? total / n : 0;
}
