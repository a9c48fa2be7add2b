import * as tf from '@tensorflow/tfjs-core';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeLayer } from '../../../models/neuron/layer.ts';
import { dstdDense } from '../../../models/solvers/dstd.ts';
import { eulerDense, eulerNetwork } from '../../../models/solvers/euler.ts';
import { exactForward, exactNetworkForward } from '../../../models/solvers/exact.ts';
import { disposeLayerTensors, layerToTensors } from '../../../models/solvers/spike-tensors.ts';
import { initBackend } from '../../../models/tf/backend.ts';
import { convergenceOrder, mulberry } from '../rng.ts';
import { exactFdGradients, randomCase, relError } from './fd-exact.ts';
import { tensorGradients, TRAINABLE } from './tensor-grads.ts';
import { randomLayerCase } from './random-layer.ts';

beforeAll(async () => {
  await initBackend();
});

function layerAndInputs(model: 'pnn' | 'ideal', seed = 7) {
  return randomLayerCase({ model, seed, nIn: 60, nOut: 30, batch: 6, gEMax: 0.1, gIMax: 0.05 });
}

function meanAbsError(exact: Float64Array, got: ArrayLike<number>): number {
  let s = 0;
  let n = 0;
  for (let k = 0; k < exact.length; k++) {
    expect(got[k] < 1, `output ${k} fired`).toBe(Number.isFinite(exact[k]));
    if (got[k] < 1) {
      s += Math.abs(got[k] - exact[k]);
      n++;
    }
  }
  return s / n;
}

describe('Euler baseline', () => {
  it('converges to the exact solver at first order in the step (pnn)', () => {
    const { layer, x, batch } = layerAndInputs('pnn');
    const exact = exactForward(layer, x, batch).times;
    expect(exact.filter(Number.isFinite).length).toBeGreaterThan(100);
    const p = layerToTensors(layer);
    const xt = tf.tensor2d(Float32Array.from(x), [batch, layer.nIn]);
    const steps = [64, 128, 256, 512];
    const errs = steps.map((K) => tf.tidy(() => meanAbsError(exact, eulerDense(p, xt, { steps: K }).times.dataSync())));
    const order = convergenceOrder(steps, errs);
    // Measured: 1.00. DSTD reaches the error of 512 Euler steps with about 24 bins.
    expect(order).toBeGreaterThan(0.85);
    expect(order).toBeLessThan(1.2);
    const dstd32 = tf.tidy(() => meanAbsError(exact, dstdDense(p, xt, { bins: 32 }).times.dataSync()));
    expect(dstd32).toBeLessThan(errs[3]);
    xt.dispose();
    disposeLayerTensors(p);
  });

  it('without leak or reversal potentials it coincides with DSTD on the same grid', () => {
    // G = 0: both integrate the bin-averaged drive exactly and interpolate the crossing linearly.
    const { layer, x, batch } = layerAndInputs('ideal', 8);
    const p = layerToTensors(layer);
    const xt = tf.tensor2d(Float32Array.from(x), [batch, layer.nIn]);
    const [e, d] = tf.tidy(() => [eulerDense(p, xt, { steps: 40 }).times.dataSync(), dstdDense(p, xt, { bins: 40 }).times.dataSync()]);
    for (let k = 0; k < e.length; k++) expect(e[k]).toBeCloseTo(d[k], 5);
    xt.dispose();
    disposeLayerTensors(p);
  });

  it('gradients agree with finite differences of the exact solver and improve with the step', () => {
    const c = randomCase(11, 'pnn');
    const fd = exactFdGradients(c);
    const coarse = tensorGradients(c, (p, x) => eulerDense(p, x, { steps: 64 }));
    const fine = tensorGradients(c, (p, x) => eulerDense(p, x, { steps: 512 }));
    for (const k of [...TRAINABLE, 'inputTimes' as const]) {
      const ref = typeof fd[k] === 'number' ? [fd[k] as number] : (fd[k] as Float64Array);
      // Measured at K = 512: 3 % (weights, leak, threshold), 5 % (input times), 8 % (E+, E-);
      // K = 64: 6 - 27 %. First order, like the forward error.
      expect(relError(fine[k], ref), k).toBeLessThan(0.12);
      if (k !== 'delay') expect(relError(fine[k], ref), k).toBeLessThan(relError(coarse[k], ref));
    }
  });

  it('a network chains silent neurons as +Infinity like the exact network', () => {
    const rnd = mulberry(3);
    const l0 = makeLayer({ nIn: 10, nOut: 6, ePlus: 4, eMinus: -2, gE: Array.from({ length: 60 }, (_, k) => (k % 6 === 0 ? 0 : rnd() * 0.5)) });
    const l1 = makeLayer({ nIn: 6, nOut: 3, ePlus: 4, eMinus: -2, horizon: 2, gE: Array.from({ length: 18 }, () => rnd() * 1.5) });
    const x = Float64Array.from({ length: 20 }, () => rnd() * 0.5);
    const exact = exactNetworkForward([l0, l1], x, 2);
    expect(exact[0][0]).toBe(Infinity);
    const ps = [layerToTensors(l0), layerToTensors(l1)];
    const xt = tf.tensor2d(Float32Array.from(x), [2, 10]);
    const got = tf.tidy(() => eulerNetwork(ps, xt, { steps: 1000 }).map((s) => s.times.dataSync()));
    for (let k = 0; k < exact[1].length; k++) expect(Math.abs(got[1][k] - exact[1][k])).toBeLessThan(5e-3);
    xt.dispose();
    ps.forEach(disposeLayerTensors);
  });

  it('gradients are finite for any input pattern, all-silent included (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1 << 30 }),
        fc.array(fc.oneof(fc.constant(Infinity), fc.double({ min: -0.2, max: 1.5, noNaN: true })), { minLength: 8, maxLength: 8 }),
        (seed, xs) => {
          const rnd = mulberry(seed);
          const layer = makeLayer({
            nIn: 4,
            nOut: 3,
            ePlus: 1 + 8 * rnd(),
            eMinus: -8 * rnd(),
            gE: Array.from({ length: 12 }, () => rnd() * [0, 1, 20][Math.floor(rnd() * 3)]),
            gI: Array.from({ length: 12 }, () => rnd()),
            gL: [rnd(), 0, rnd()],
          });
          const p = layerToTensors(layer);
          const x = tf.tensor2d(xs, [2, 4]);
          const grads = tf.grads(
            (gE: tf.Tensor, t: tf.Tensor) => tf.sum(eulerDense({ ...p, gE: gE as tf.Tensor2D }, t as tf.Tensor2D, { steps: 16 }).times) as tf.Scalar,
          )([p.gE, x]);
          for (const g of grads) for (const v of g.dataSync()) expect(Number.isFinite(v)).toBe(true);
          tf.dispose([...grads, x]);
          disposeLayerTensors(p);
        },
      ),
      { numRuns: 30 },
    );
  });
});
