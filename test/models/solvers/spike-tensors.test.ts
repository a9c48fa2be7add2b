import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { binFractions } from '../../../models/solvers/spike-tensors.ts';
import { initBackend } from '../../../models/tf/backend.ts';
import { mulberry } from '../rng.ts';

beforeAll(async () => {
  await initBackend();
});

/** Eq. (4) as plain tf ops, differentiated by autodiff: the reference for binFractions' hand-written gradient. */
function autodiffFractions(times: tf.Tensor, bins: number, horizon: number): tf.Tensor {
  const t = tf.expandDims(tf.minimum(times, 2 * horizon), 1);
  const edges = tf.reshape(tf.range(1, bins + 1, 1, 'float32'), [1, bins, ...times.shape.slice(1).map(() => 1)]);
  return tf.clipByValue(tf.sub(edges, tf.mul(t, bins / horizon)), 0, 1);
}

describe('binFractions', () => {
  it('values and gradient equal autodiff of the tf formulation, on bin edges, outside the grid and for silent inputs', () => {
    const bins = 8;
    const horizon = 2;
    const dt = horizon / bins;
    const rnd = mulberry(5);
    const B = 3;
    const shape = [B, 4, 5, 2];
    const n = 4 * 5 * 2;
    // Random times inside and around the grid, plus exact bin edges (two bins pass the gradient
    // there), the window start, the horizon, past it, before 0 and +Infinity.
    const special = [0, dt, 3 * dt, horizon, horizon + dt, 2 * horizon, 3 * horizon, -dt / 2, Number.POSITIVE_INFINITY];
    const values = Float32Array.from({ length: B * n }, (_, k) => (k < special.length ? special[k]! : -0.2 + rnd() * (horizon + 0.6)));
    const times = tf.tensor(values, shape);
    const weights = tf.tensor(
      Float32Array.from({ length: B * bins * n }, () => rnd() * 2 - 1),
      [B, bins, 4, 5, 2],
    );
    const ours = tf.valueAndGrad((t: tf.Tensor) => tf.sum(tf.mul(binFractions(t, bins, horizon), weights)))(times);
    const ref = tf.valueAndGrad((t: tf.Tensor) => tf.sum(tf.mul(autodiffFractions(t, bins, horizon), weights)))(times);
    expect(Array.from(binFractions(times, bins, horizon).dataSync())).toEqual(Array.from(autodiffFractions(times, bins, horizon).dataSync()));
    expect(ours.value.dataSync()[0]).toBe(ref.value.dataSync()[0]);
    const g = ours.grad.dataSync();
    const r = ref.grad.dataSync();
    expect(g.length).toBe(r.length);
    for (let k = 0; k < g.length; k++) expect(g[k], `input ${k} at t = ${values[k]}`).toBeCloseTo(r[k]!, 4);
    // The edges really take two bins' gradient, and the inputs that do not move any fraction none.
    const edgeGrad = -(weights.dataSync()[0 * bins * n + 1 * n + 1]! + weights.dataSync()[0 * bins * n + 0 * n + 1]!) / dt;
    expect(g[1]).toBeCloseTo(edgeGrad, 4);
    for (const k of [5, 6, 8]) expect(g[k]).toBe(0);
    tf.dispose([times, weights, ours.value, ours.grad, ref.value, ref.grad]);
  });
});
