/**
 * tf.train.adam's update, then the projection onto >= 0, over a range of a flat parameter vector
 * in Float32Arrays: what data-parallel workers run on their slice of the parameters in shared
 * memory (data-parallel.ts). tfjs's AdamOptimizer (tfjs-core 4.22, adam_optimizer.ts) rounds
 * every one of its kernels to float32; here each element's update is computed in float64 from
 * the float32 moments, gradient and weight, and only the new moments and weight are rounded, with
 * the bias corrections as multiplications: twice as fast in V8 as rounding each operation, and
 * within a few float32 roundings of tf (test/models/training/fused-adam.test.ts measures it).
 */

import type * as tf from '@tensorflow/tfjs-core';

/** The settings of a tf.train.adam optimiser that the update reads. */
export interface AdamSettings {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
}

/** The float32 constants of step `t` (1 = the first step), as tf's scalars hold them. */
export interface AdamCoefficients {
  beta1: number;
  oneMinusBeta1: number;
  beta2: number;
  oneMinusBeta2: number;
  /** 1 - beta1^t and 1 - beta2^t, the powers accumulated in float32 step by step as tf's accBeta variables are. */
  correction1: number;
  correction2: number;
  epsilon: number;
  negLr: number;
}

const f = Math.fround;

/** The settings of a fresh tf AdamOptimizer (no step taken yet), or undefined for any other optimiser. */
export function freshAdamSettings(optimizer: tf.Optimizer): AdamSettings | undefined {
  const o = optimizer as unknown as Partial<AdamSettings> & { accumulatedFirstMoment?: unknown[] };
  if (optimizer.getClassName() !== 'Adam' || !Array.isArray(o.accumulatedFirstMoment) || o.accumulatedFirstMoment.length > 0) return undefined;
  const { learningRate, beta1, beta2, epsilon } = o;
  if (![learningRate, beta1, beta2, epsilon].every((v) => typeof v === 'number' && Number.isFinite(v))) return undefined;
  return { learningRate: learningRate!, beta1: beta1!, beta2: beta2!, epsilon: epsilon! };
}

/** The coefficients of step `t` (>= 1) with `s` (its learningRate read at that step). */
export function adamCoefficients(s: AdamSettings, t: number): AdamCoefficients {
  if (!Number.isInteger(t) || t < 1) throw new RangeError(`Adam step must be an integer >= 1, got ${t}`);
  const b1 = f(s.beta1);
  const b2 = f(s.beta2);
  // tf: accBeta = scalar(beta) before the first step, then accBeta * beta (float32) after each one.
  let acc1 = b1;
  let acc2 = b2;
  for (let k = 1; k < t; k++) {
    acc1 = f(acc1 * b1);
    acc2 = f(acc2 * b2);
  }
  return {
    beta1: b1,
    oneMinusBeta1: f(1 - s.beta1),
    beta2: b2,
    oneMinusBeta2: f(1 - s.beta2),
    correction1: f(1 - acc1),
    correction2: f(1 - acc2),
    epsilon: f(s.epsilon),
    negLr: f(-s.learningRate),
  };
}

/**
 * One Adam step and the projection on parameters [lo, hi): reads the gradient `g`, the moments
 * `m`, `v` and the weights `w`; writes the new moments to `mOut`, `vOut` (which may be `m`, `v`)
 * and max(0, new weight) to `wOut` (which may be `w`).
 */
export function adamProjectRange(
  c: AdamCoefficients,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  w: Float32Array,
  mOut: Float32Array,
  vOut: Float32Array,
  wOut: Float32Array,
  lo: number,
  hi: number,
): void {
  const { beta1, oneMinusBeta1, beta2, oneMinusBeta2, epsilon } = c;
  const scale1 = c.negLr / c.correction1;
  const scale2 = 1 / c.correction2;
  for (let k = lo; k < hi; k++) {
    const gk = g[k]!;
    const mk = m[k]! * beta1 + gk * oneMinusBeta1;
    const vk = v[k]! * beta2 + gk * gk * oneMinusBeta2;
    mOut[k] = mk;
    vOut[k] = vk;
    const next = w[k]! + (mk * scale1) / (Math.sqrt(vk * scale2) + epsilon);
    // tf.relu, max(x, 0), without a branch: about half the weights of a PNN sit at 0 (a synapse's
    // opposing conductance), so a branch here is mispredicted at random and costs more than the update.
    wOut[k] = (next + Math.abs(next)) * 0.5;
  }
}
