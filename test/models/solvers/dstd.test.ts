import * as tf from '@tensorflow/tfjs-core';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeLayer } from '../../../models/neuron/layer.ts';
import { dstdDense, dstdNetwork, spikeTimesFromDrives } from '../../../models/solvers/dstd.ts';
import { exactForward, exactNetworkBackward, exactNetworkForward } from '../../../models/solvers/exact.ts';
import { disposeLayerTensors, layerToTensors, type DenseLayerTensors } from '../../../models/solvers/spike-tensors.ts';
import { initBackend } from '../../../models/tf/backend.ts';
import { convergenceOrder, mulberry } from '../rng.ts';
import { exactFdGradients, randomCase, relError, type FdCase } from './fd-exact.ts';
import { tensorGradients, TRAINABLE } from './tensor-grads.ts';
import { randomLayerCase } from './random-layer.ts';

beforeAll(async () => {
  await initBackend();
});

/** The reference layer of docs/MODEL.md §5.5: 100 inputs, 50 neurons, E+ = 4, E- = -2. */
function referenceLayer(model: 'pnn' | 'ideal') {
  const { layer, x, batch } = randomLayerCase({ model, seed: 7, nIn: 100, nOut: 50, batch: 10, gEMax: 0.06, gIMax: 0.03 });
  return { layer, x, batch, exact: exactForward(layer, x, batch).times };
}

/** Mean absolute spike-time error over neurons firing in both; fails on any fired/silent disagreement. */
function meanAbsError(exact: Float64Array, got: Float32Array | Float64Array, horizon = 1): number {
  let s = 0;
  let n = 0;
  for (let k = 0; k < exact.length; k++) {
    const fired = got[k] < horizon;
    expect(fired, `output ${k}`).toBe(Number.isFinite(exact[k]));
    if (fired) {
      s += Math.abs(got[k] - exact[k]);
      n++;
    }
  }
  return s / n;
}

describe('DSTD forward', () => {
  for (const model of ['pnn', 'ideal'] as const) {
    it(`${model}: converges to the exact solver at second order in the bin width`, () => {
      const { layer, x, batch, exact } = referenceLayer(model);
      expect(exact.filter(Number.isFinite).length).toBeGreaterThan(400);
      const p = layerToTensors(layer);
      const xt = tf.tensor2d(Float32Array.from(x), [batch, layer.nIn]);
      const bins = [16, 32, 64, 128];
      const errs = bins.map((M) => tf.tidy(() => meanAbsError(exact, dstdDense(p, xt, { bins: M }).times.dataSync() as Float32Array)));
      const order = convergenceOrder(bins, errs);
      // Measured: pnn 2.0, ideal 2.0 (mean absolute error); M = 32 is within ~0.03 % of the horizon.
      expect(order).toBeGreaterThan(1.6);
      expect(order).toBeLessThan(2.6);
      expect(errs[1]).toBeLessThan(5e-4);
      xt.dispose();
      disposeLayerTensors(p);
    });
  }

  it('ideal model, one input: the crossing is exact (u is linear inside the bin)', () => {
    // du/dt = 2 from t = 0.3: fires at 0.8. G = 0, A = 2 after the input's bin.
    const layer = makeLayer({ nIn: 1, nOut: 1, model: 'ideal', gE: [2], ePlus: 1, eMinus: -1 });
    const p = layerToTensors(layer);
    const xt = tf.tensor2d([[0.3]]);
    const t = tf.tidy(() => dstdDense(p, xt, { bins: 10 }).times.dataSync()[0]);
    expect(t).toBeCloseTo(0.8, 6);
    xt.dispose();
    disposeLayerTensors(p);
  });

  it('silent inputs, or a neuron that never reaches threshold, give mask 0 and the horizon', () => {
    const layer = makeLayer({ nIn: 2, nOut: 2, gE: [1, 0, 1, 0], gI: [0, 5, 0, 5], ePlus: 4, eMinus: -2, horizon: 2 });
    const p = layerToTensors(layer);
    const xt = tf.tensor2d([
      [Infinity, Infinity],
      [0.1, 0.1],
    ]);
    const [times, mask] = tf.tidy(() => {
      const r = dstdDense(p, xt, { bins: 16 });
      return [Array.from(r.times.dataSync()), Array.from(r.mask.dataSync())];
    });
    expect(mask).toEqual([0, 0, 1, 0]);
    expect(times[0]).toBe(2);
    expect(times[1]).toBe(2);
    expect(times[3]).toBe(2);
    xt.dispose();
    disposeLayerTensors(p);
  });

  it('a network matches the exact network (silent neurons stay silent downstream)', () => {
    const rnd = mulberry(5);
    // Neurons 0 and 1 of the first layer have no excitation: silent, and must stay out of layer 2.
    const gE0 = Array.from({ length: 360 }, (_, k) => (k % 12 < 2 ? 0 : rnd() * 0.2));
    const l0 = makeLayer({ nIn: 30, nOut: 12, ePlus: 5, eMinus: -3, gE: gE0, gI: Array.from({ length: 360 }, () => rnd() * 0.1) });
    const l1 = makeLayer({
      nIn: 12,
      nOut: 4,
      ePlus: 5,
      eMinus: -3,
      horizon: 2,
      gE: Array.from({ length: 48 }, () => rnd() * 0.6),
      gI: Array.from({ length: 48 }, () => rnd() * 0.2),
    });
    const x = Float64Array.from({ length: 3 * 30 }, () => (rnd() < 0.3 ? Infinity : rnd() * 0.5));
    const exact = exactNetworkForward([l0, l1], x, 3);
    expect(exact[0].some((t) => t === Infinity)).toBe(true);
    const ps = [layerToTensors(l0), layerToTensors(l1)];
    const xt = tf.tensor2d(Float32Array.from(x), [3, 30]);
    const got = tf.tidy(() => dstdNetwork(ps, xt, { bins: 256 }).map((s) => s.times.dataSync() as Float32Array));
    expect(meanAbsError(exact[0], got[0], 1)).toBeLessThan(1e-4);
    expect(meanAbsError(exact[1], got[1], 2)).toBeLessThan(1e-4);
    xt.dispose();
    ps.forEach(disposeLayerTensors);
  });

  it('rejects mismatched shapes with the shapes in the message', () => {
    const p = layerToTensors(makeLayer({ nIn: 3, nOut: 2, ePlus: 4, eMinus: -2 }));
    const xt = tf.zeros([2, 4]) as tf.Tensor2D;
    expect(() => dstdDense(p, xt, { bins: 8 })).toThrow(/\[2,4\].*\[batch, 3\]/);
    expect(() => dstdDense(p, xt, { bins: 0 })).toThrow(/bins/);
    expect(() => layerToTensors(makeLayer({ nIn: 1, nOut: 1, ePlus: 4, eMinus: -2, kick: [0.1] }))).toThrow(/kick/);
    xt.dispose();
    disposeLayerTensors(p);
  });
});

/**
 * Outputs whose DSTD crossing bin also receives an input: there DSTD averages that input over the
 * whole bin, part of it after the true spike, an O(1) error on that output that occurs with
 * probability ~ dt. Computed from the exact times, independently of the code under test.
 */
function sharedCrossingBin(c: FdCase, bins: number): boolean[] {
  const dt = c.spec.horizon! / bins;
  const { nIn, nOut } = c.spec;
  return Array.from(c.exactTimes, (t, k) => {
    const b = Math.floor(k / nOut);
    const bin = Math.floor((t - c.spec.delay[k % nOut]) / dt);
    for (let j = 0; j < nIn; j++) if (Math.floor(c.x[b * nIn + j] / dt) === bin) return true;
    return false;
  });
}

describe('DSTD gradients against finite differences of the exact solver', () => {
  for (const model of ['pnn', 'ideal'] as const) {
    it(`${model}: weights, reversal potentials, leak, threshold, delay, input times`, () => {
      const all = randomCase(model === 'pnn' ? 11 : 12, model, 20, 6, 8);
      expect(all.exactTimes.every(Number.isFinite)).toBe(true);
      const shared = sharedCrossingBin(all, 256);
      const nShared = shared.filter(Boolean).length;
      expect(nShared).toBeGreaterThan(0);
      expect(nShared).toBeLessThan(shared.length / 4);
      const clean: FdCase = { ...all, w: all.w.map((w, k) => (shared[k] ? 0 : w)) };
      const fdClean = exactFdGradients(clean);
      const fdAll = exactFdGradients(all);
      const gClean = tensorGradients(clean, (p, x) => dstdDense(p, x, { bins: 256 }));
      const gAll = tensorGradients(all, (p, x) => dstdDense(p, x, { bins: 256 }));
      const gCoarse = tensorGradients(clean, (p, x) => dstdDense(p, x, { bins: 32 }));
      for (const k of [...TRAINABLE, 'inputTimes' as const]) {
        const ref = (f: typeof fdAll) => (typeof f[k] === 'number' ? [f[k] as number] : (f[k] as Float64Array));
        // Measured at M = 256: clean outputs 1e-6..2e-4 (input times ~1e-3); all outputs 1e-3..3e-2.
        expect(relError(gClean[k], ref(fdClean)), `${k} clean`).toBeLessThan(k === 'inputTimes' ? 1e-2 : 2e-3);
        expect(relError(gAll[k], ref(fdAll)), `${k} all`).toBeLessThan(0.1);
        // The delay's gradient is exact at any M (dt_out/d delay = 1).
        if (k !== 'delay') {
          expect(relError(gClean[k], ref(fdClean)), `${k} converges`).toBeLessThan(relError(gCoarse[k], ref(fdClean)));
        }
      }
    });
  }

  it('two-layer network gradients agree with the exact network backward', () => {
    const rnd = mulberry(21);
    const mk = (nIn: number, nOut: number, horizon: number, scale: number) =>
      makeLayer({
        nIn,
        nOut,
        ePlus: 4,
        eMinus: -2,
        horizon,
        gE: Array.from({ length: nIn * nOut }, () => rnd() * scale),
        gI: Array.from({ length: nIn * nOut }, () => rnd() * scale * 0.3),
      });
    const layers = [mk(16, 8, 1, 0.25), mk(8, 4, 2, 0.6)];
    const batch = 6;
    const x = Float64Array.from({ length: batch * 16 }, () => (rnd() < 0.2 ? Infinity : rnd() * 0.6));
    const w1 = Float64Array.from({ length: batch * 4 }, () => rnd() - 0.5);
    const exact = exactNetworkBackward(layers, x, batch, [undefined, w1]);
    expect(exact.times[1].every(Number.isFinite)).toBe(true);
    const ps = layers.map(layerToTensors);
    const xt = tf.tensor2d(Float32Array.from(x), [batch, 16]);
    const wt = tf.tensor2d(Float32Array.from(w1), [batch, 4]);
    const errs = [64, 512].map((bins) => {
      const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => {
        const out = dstdNetwork(
          [
            { ...ps[0], gE: a as tf.Tensor2D },
            { ...ps[1], gE: b as tf.Tensor2D },
          ],
          xt,
          { bins },
        );
        return tf.sum(tf.mul(out[1].times, wt)) as tf.Scalar;
      })([ps[0].gE, ps[1].gE]);
      const e = [relError(g[0].dataSync(), exact.grads[0].gE), relError(g[1].dataSync(), exact.grads[1].gE)];
      tf.dispose(g);
      return e;
    });
    // Measured: layer 0 / layer 1 at M = 512: 1.6e-3 / 2e-5; M = 64: 6e-2 / 2e-2.
    expect(errs[1][0]).toBeLessThan(0.05);
    expect(errs[1][1]).toBeLessThan(0.05);
    expect(errs[1][0] + errs[1][1]).toBeLessThan(errs[0][0] + errs[0][1]);
    tf.dispose([xt, wt]);
    ps.forEach(disposeLayerTensors);
  });

  it('gradients are finite for random networks and any input pattern, all-silent included (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1 << 30 }),
        fc.constantFrom<'pnn' | 'ideal'>('pnn', 'ideal'),
        fc.array(fc.oneof(fc.constant(Infinity), fc.double({ min: -0.2, max: 1.5, noNaN: true })), { minLength: 10, maxLength: 10 }),
        fc.integer({ min: 1, max: 24 }),
        (seed, model, xs, bins) => {
          const rnd = mulberry(seed);
          const scale = [0, 0.1, 1, 20][Math.floor(rnd() * 4)];
          const mk = (nIn: number, nOut: number, horizon: number) =>
            layerToTensors(
              makeLayer({
                nIn,
                nOut,
                model,
                ePlus: 1 + 8 * rnd(),
                eMinus: -8 * rnd(),
                horizon,
                gE: Array.from({ length: nIn * nOut }, () => (rnd() < 0.3 ? 0 : rnd() * scale)),
                gI: Array.from({ length: nIn * nOut }, () => rnd() * scale * 0.5),
                gL: Array.from({ length: nOut }, () => rnd() * 0.5),
                thresholdScale: Array.from({ length: nOut }, () => 0.5 + rnd()),
              }),
            );
          const layers = [mk(5, 4, 1), mk(4, 3, 2)];
          const x = tf.tensor2d(xs, [2, 5]);
          const vars = layers.flatMap((l) => [l.gE, l.gI, l.ePlus as tf.Scalar, l.eMinus as tf.Scalar, l.gL!, l.thresholdScale!]);
          const grads = tf.grads((...ts: tf.Tensor[]) => {
            const ls = layers.map(
              (l, i) =>
                ({
                  ...l,
                  gE: ts[6 * i],
                  gI: ts[6 * i + 1],
                  ePlus: ts[6 * i + 2],
                  eMinus: ts[6 * i + 3],
                  gL: ts[6 * i + 4],
                  thresholdScale: ts[6 * i + 5],
                }) as DenseLayerTensors,
            );
            const out = dstdNetwork(ls, ts[12] as tf.Tensor2D, { bins });
            return tf.add(tf.sum(out[1].times), tf.sum(out[0].times)) as tf.Scalar;
          })([...vars, x]);
          for (const g of grads) for (const v of g.dataSync()) expect(Number.isFinite(v)).toBe(true);
          tf.dispose([...grads, x]);
          layers.forEach(disposeLayerTensors);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('the custom-gradient core leaks no tensors and has zero gradient for never-firing neurons', () => {
    const before = tf.memory().numTensors;
    const G = tf.zeros([2, 4, 3]) as tf.Tensor3D;
    const A = tf.fill([2, 4, 3], -1) as tf.Tensor3D;
    const theta = tf.ones([3]) as tf.Tensor1D;
    const [gG, gA, gT] = tf.grads(
      (g: tf.Tensor, a: tf.Tensor, th: tf.Tensor) =>
        tf.sum(
          tf.where(
            tf.isFinite(spikeTimesFromDrives(g as tf.Tensor3D, a as tf.Tensor3D, th as tf.Tensor1D, { dt: 0.25, minSlope: 1e-3 })),
            tf.ones([2, 3]),
            tf.zeros([2, 3]),
          ),
        ) as tf.Scalar,
    )([G, A, theta]);
    for (const g of [gG, gA, gT]) expect(Array.from(g.dataSync()).every((v) => v === 0)).toBe(true);
    tf.dispose([G, A, theta, gG, gA, gT]);
    expect(tf.memory().numTensors).toBe(before);
  });
});
