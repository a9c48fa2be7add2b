import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { DenseSpikeLayer } from '../../../models/network/layer.ts';
import { createSolver } from '../../../models/network/solver.ts';
import { crossEntropyOf, deadNeuronPenalty, deadSelection, stopGradient, ttfsCrossEntropy, windowPenalty } from '../../../models/training/losses.ts';
import { initBackend } from '../../../models/tf/backend.ts';
import { mulberry } from '../rng.ts';

beforeAll(async () => {
  await initBackend({ prefer: 'cpu' });
});

describe('ttfsCrossEntropy', () => {
  it('is the cross-entropy of softmax(-t / tau), with gradient (p - onehot) / -tau', () => {
    const t = [0.2, 0.5, 0.9, 0.6, 0.3, 0.1];
    const y = [1, 2];
    const tau = 0.25;
    // Reference written out: -log(exp(-t_y/tau) / sum_c exp(-t_c/tau)).
    let ref = 0;
    for (let b = 0; b < 2; b++) {
      const z = t.slice(3 * b, 3 * b + 3).map((v) => Math.exp(-v / tau));
      ref += -Math.log(z[y[b]!]! / z.reduce((a, c) => a + c));
    }
    ref /= 2;
    const times = tf.tensor2d(t, [2, 3]);
    const labels = tf.tensor1d(y, 'int32');
    expect(ttfsCrossEntropy(times, labels, tau).dataSync()[0]).toBeCloseTo(ref, 5);
    expect(crossEntropyOf(t, y, 2, 3, tau)).toBeCloseTo(ref, 10);
    const g = tf
      .grad((x: tf.Tensor) => ttfsCrossEntropy(x as tf.Tensor2D, labels, tau))(times)
      .dataSync();
    const z0 = t.slice(0, 3).map((v) => Math.exp(-v / tau));
    const p0 = z0.map((v) => v / z0.reduce((a, c) => a + c));
    // dL/dt_c = -(p_c - [c = y]) / (tau * B)
    expect(g[0]).toBeCloseTo(-p0[0]! / (tau * 2), 5);
    expect(g[1]).toBeCloseTo(-(p0[1]! - 1) / (tau * 2), 5);
    expect(g[1]).toBeGreaterThan(0); // a later target costs more: descent pulls it earlier
  });
});

describe('windowPenalty', () => {
  it('is zero inside [start, horizon - margin], quadratic before and after, and ignores silent neurons', () => {
    const spikes = (t: number[], m: number[]) => ({ times: tf.tensor2d(t, [1, t.length]), mask: tf.tensor2d(m, [1, m.length]) });
    const start = 1;
    const h = 2;
    expect(windowPenalty(spikes([1.1, 1.5, 1.89], [1, 1, 1]), start, h, 0.1).dataSync()[0]).toBe(0);
    // 0.05 past h - 0.1 and 0.2 before the start: ((0.05/0.1)^2 + (0.2/0.1)^2) / 3.
    expect(windowPenalty(spikes([1.95, 0.8, 1.5], [1, 1, 1]), start, h, 0.1).dataSync()[0]).toBeCloseTo((0.25 + 4) / 3, 5);
    expect(windowPenalty(spikes([2, 0.8, 1.5], [0, 0, 1]), start, h, 0.1).dataSync()[0]).toBe(0);
    expect(() => windowPenalty(spikes([1], [1]), 2, 2, 0.1)).toThrow(/window/);
  });
});

/** A PNN layer on the nominal reversal potentials, window [0, 2], drawing its pE and pI from the given sources. */
function pnnLayer(nIn: number, nOut: number, scale: number, pE: () => number, pI: () => number): DenseSpikeLayer {
  const e = Float32Array.from({ length: nIn * nOut }, pE);
  const i = Float32Array.from({ length: nIn * nOut }, pI);
  return new DenseSpikeLayer({ kind: 'dense', nIn, nOut, model: 'pnn', ePlus: 9.5, eMinus: -6.25, horizon: 2, timeOffset: 0, scale, pE: e, pI: i });
}

describe('dead neurons', () => {
  it('selects neurons silent on the whole batch, and silent label neurons at the output', () => {
    // B = 3, N = 2: neuron 0 fired once, neuron 1 never.
    const mask = Float32Array.from([1, 0, 0, 0, 0, 0]);
    expect(Array.from(deadSelection(mask, 3, 2, { deadRate: 0 })!)).toEqual([0, 1, 0, 1, 0, 1]);
    expect(Array.from(deadSelection(mask, 3, 2, { deadRate: 0.34 })!)).toEqual([1, 1, 1, 1, 1, 1]);
    expect(Array.from(deadSelection(mask, 3, 2, { deadRate: 0, labels: [0, 1, 0] })!)).toEqual([0, 0, 0, 1, 1, 0]);
    expect(deadSelection(Float32Array.from([1, 1]), 1, 2, { deadRate: 0 })).toBeNull();
  });

  it('is the mean shortfall below the target over the selected pairs, or over every candidate', () => {
    const rnd = mulberry(5);
    const nIn = 5;
    const nOut = 3;
    const B = 4;
    const layer = pnnLayer(
      nIn,
      nOut,
      0.4,
      () => rnd(),
      () => rnd(),
    );
    const x = tf.tensor2d(
      Float32Array.from({ length: B * nIn }, () => rnd()),
      [B, nIn],
    );
    const v = tf.tidy(() => layer.restPotential(x).dataSync());
    // Three of the twelve pairs, as a silent label neuron or a dead hidden one would select them.
    const sel = Float32Array.from([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]);
    const target = 2;
    let sum = 0;
    sel.forEach((m, k) => (sum += m * Math.max(0, target - v[k]!)));
    expect(sum).toBeGreaterThan(0);
    const value = (candidates?: number) => tf.tidy(() => deadNeuronPenalty(layer, x, sel, target, undefined, candidates).dataSync()[0]!);
    expect(value()).toBeCloseTo(sum / 3, 5);
    expect(value(B)).toBeCloseTo(sum / B, 5);
    expect(value(B * nOut)).toBeCloseTo(sum / (B * nOut), 5);
    expect(() => value(0)).toThrow(/candidates must be a positive integer, got 0/);
    x.dispose();
    layer.dispose();
  });

  it('the dead-neuron term alone revives silent neurons: after a few steps they fire', () => {
    const rnd = mulberry(3);
    const nIn = 12;
    const nOut = 6;
    // Mostly inhibitory synapses: every neuron silent at first.
    const layer = pnnLayer(
      nIn,
      nOut,
      0.3,
      () => 0.1 * rnd(),
      () => 0.5 + rnd(),
    );
    const x = tf.tensor2d(
      Float32Array.from({ length: 16 * nIn }, () => rnd()),
      [16, nIn],
    );
    const solver = createSolver('dstd', { bins: 16 });
    const firedFraction = () => tf.tidy(() => tf.mean(layer.forward(x, solver).mask).dataSync()[0]!);
    expect(firedFraction()).toBe(0);
    const opt = tf.train.adam(0.05);
    for (let step = 0; step < 60 && firedFraction() < 0.9; step++) {
      opt.minimize(
        () => {
          const mask = layer.forward(x, solver).mask.dataSync() as Float32Array;
          const sel = deadSelection(mask, 16, nOut, { deadRate: 0 });
          return sel ? deadNeuronPenalty(layer, x, sel, 2) : (tf.scalar(0) as tf.Scalar);
        },
        false,
        layer.trainableVariables(),
      );
      layer.project();
    }
    expect(firedFraction()).toBeGreaterThan(0.9);
    opt.dispose();
    layer.dispose();
    x.dispose();
  });

  it('stopGradient passes values and blocks gradients', () => {
    const x = tf.tensor1d([1, 2, 3]);
    expect(Array.from(stopGradient(x).dataSync())).toEqual([1, 2, 3]);
    expect(
      Array.from(
        tf
          .grad((v: tf.Tensor) => tf.sum(tf.mul(stopGradient(v), v)))(x)
          .dataSync(),
      ),
    ).toEqual([1, 2, 3]);
  });
});
