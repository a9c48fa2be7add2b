/**
 * Multiplicative noise on the conductances during a training step: each synapse's pE and pI scaled
 * by 1 + std * N(0, 1), fresh every batch, the gradient taken at the noisy weights and applied to
 * the clean ones. A network trained so is robust to the few per cent by which a chip's synapses
 * miss the conductances the code mapping aims at (docs/MODEL.md §7).
 *
 * Deterministic like input-noise.ts: the noise of (seed, epoch, batch) comes from its own sub-stream.
 */
import * as tf from '@tensorflow/tfjs-core';
import { deriveSeed, Rng } from '../datasets/rng.ts';

/** Stream tag for the weight-noise sub-stream ("wnoi"). */
const WEIGHT_NOISE_STREAM = 0x776e6f69;

export interface WeightNoiseOptions {
  /** Relative standard deviation of each conductance; 0 = off. */
  std: number;
  seed: number;
  epoch: number;
  batch: number;
}

/** Checks a weight-noise level: finite, >= 0 and below 0.5 (a factor that can go negative is no longer noise). */
export function checkWeightNoise(std: number): number {
  if (!(std >= 0 && std < 0.5)) throw new RangeError(`weightNoise must lie in [0, 0.5) (a relative spread of the conductances; 0 = off), got ${std}`);
  return std;
}

/**
 * The level of epoch `epoch` (0-based) of `epochs`: from 0 at the first epoch up to `std` at half of them,
 * then `std`. A network must first learn to fire: at full noise from the first step, the 8-neuron
 * hidden layer of a 16-8-4 behavioural die stayed silent for good on 1-2 of 8 dies (docs/RESULTS.md).
 */
export function weightNoiseAt(std: number, epoch: number, epochs: number): number {
  return std * Math.min(1, epoch / Math.max(1, 0.5 * epochs));
}

/**
 * Adds the batch's noise to `vars` in place and returns what was added (the caller subtracts it
 * after the step with `removeWeightNoise`); an empty list when std is 0.
 */
export function addWeightNoise(vars: readonly tf.Variable[], o: WeightNoiseOptions): tf.Tensor[] {
  if (checkWeightNoise(o.std) === 0) return [];
  const rng = new Rng(deriveSeed(o.seed, WEIGHT_NOISE_STREAM, o.epoch, o.batch));
  return vars.map((v) => {
    const w = v.dataSync();
    const d = new Float32Array(w.length);
    for (let i = 0; i < w.length; i++) d[i] = w[i]! * o.std * rng.normal(0, 1);
    const delta = tf.tensor(d, v.shape);
    tf.tidy(() => v.assign(tf.add(v, delta)));
    return delta;
  });
}

/** Subtracts the noise `addWeightNoise` added (the step's update stays) and disposes it. */
export function removeWeightNoise(vars: readonly tf.Variable[], deltas: tf.Tensor[]): void {
  deltas.forEach((d, k) => tf.tidy(() => vars[k]!.assign(tf.sub(vars[k]!, d))));
  tf.dispose(deltas);
}
