import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initNetwork } from '../../../models/network/init.ts';
import { defaultConfig } from '../../../models/network/network.ts';
import { createSolver } from '../../../models/network/solver.ts';
import { trainNetwork, type EpochMetrics } from '../../../models/training/trainer.ts';
import { WeightAverage } from '../../../models/training/weight-average.ts';
import { initBackend } from '../../../models/tf/backend.ts';
import { mulberry } from '../rng.ts';
import { toySet } from './toy-set.ts';

beforeAll(async () => {
  await initBackend({ prefer: 'cpu' });
});

/** The average written out in float64: a_0 = w_0, a <- d_n a + (1 - d_n) w, d_n = min(decay, (1 + n) / (10 + n)). */
function referenceAverage(initial: Float64Array, updates: Float64Array[], decay: number): Float64Array {
  const a = Float64Array.from(initial);
  updates.forEach((w, n) => {
    const d = Math.min(decay, (1 + n) / (10 + n));
    for (let i = 0; i < a.length; i++) a[i] = d * a[i]! + (1 - d) * w[i]!;
  });
  return a;
}

describe('WeightAverage', () => {
  it('follows the ramped moving average of a float64 reference, and swaps and commits without leaking tensors', () => {
    const tensors = tf.memory().numTensors;
    const rnd = mulberry(11);
    const w0 = Float32Array.from({ length: 7 }, () => rnd());
    const v = tf.tidy(() => tf.variable(tf.tensor1d(w0)));
    const avg = new WeightAverage([v], 0.9);
    const seen: Float64Array[] = [];
    // 100 updates: the ramp (1 + n) / (10 + n) passes the decay at n = 80, so both regimes are covered.
    for (let n = 0; n < 100; n++) {
      const w = Float32Array.from({ length: 7 }, () => 2 * rnd());
      tf.tidy(() => v.assign(tf.tensor1d(w)));
      seen.push(Float64Array.from(w));
      avg.update();
    }
    expect(avg.updates).toBe(100);
    expect(avg.currentDecay()).toBe(0.9);
    const expected = referenceAverage(Float64Array.from(w0), seen, 0.9);
    const current = v.dataSync().slice();
    const inside = avg.withAverage(() => Array.from(v.dataSync()));
    inside.forEach((x, i) => expect(x).toBeCloseTo(expected[i]!, 5));
    // The optimiser's weights come back bit for bit.
    expect(Array.from(v.dataSync())).toEqual(Array.from(current));
    // and also when fn throws.
    expect(() =>
      avg.withAverage(() => {
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(Array.from(v.dataSync())).toEqual(Array.from(current));
    avg.commit();
    Array.from(v.dataSync()).forEach((x, i) => expect(x).toBeCloseTo(expected[i]!, 5));
    avg.dispose();
    v.dispose();
    expect(tf.memory().numTensors).toBe(tensors);
  });

  it('starts at the initial weights and refuses a decay outside (0, 1)', () => {
    const v = tf.variable(tf.tensor1d([1, 2, 3]));
    const avg = new WeightAverage([v], 0.5);
    tf.tidy(() => v.assign(tf.tensor1d([9, 9, 9])));
    expect(avg.withAverage(() => Array.from(v.dataSync()))).toEqual([1, 2, 3]);
    for (const bad of [0, 1, -0.1, 1.5, Number.NaN]) expect(() => new WeightAverage([v], bad)).toThrow(/decay must lie in \(0, 1\).*got/);
    avg.dispose();
    v.dispose();
  });
});

async function train(averageDecay: number | undefined, epochs = 3) {
  const trainPart = toySet(1, 64);
  const test = toySet(2, 32);
  const solver = createSolver('dstd', { bins: 12 });
  const net = initNetwork(defaultConfig([6, 8, 2]), { x: trainPart.x, n: 64 }, solver, { seed: 5 });
  const initial = net.trainableVariables().map((v) => Float64Array.from(v.dataSync()));
  const steps: Float64Array[][] = [];
  const history: EpochMetrics[] = await trainNetwork(
    net,
    { train: trainPart, test },
    {
      epochs,
      batchSize: 16,
      lr: 0.02,
      seed: 5,
      solver,
      loss: { windowWeight: 0.1 },
      ...(averageDecay !== undefined ? { averageDecay } : {}),
      onBatch: () => steps.push(net.trainableVariables().map((v) => Float64Array.from(v.dataSync()))),
    },
  );
  const final = net.trainableVariables().map((v) => Float64Array.from(v.dataSync()));
  net.dispose();
  return { history, initial, steps, final };
}

describe('trainNetwork with averageDecay', () => {
  it('leaves the optimiser path unchanged (raw figures equal a run without it) and ends on the average', async () => {
    const tensors = tf.memory().numTensors;
    const plain = await train(undefined);
    const averaged = await train(0.8);
    expect(tf.memory().numTensors).toBe(tensors);
    // The optimiser's weights after every step are the same with and without the average.
    expect(averaged.steps).toEqual(plain.steps);
    averaged.history.forEach((m, e) => {
      expect(m.test_acc_raw).toBe(plain.history[e]!.test_acc);
      expect(m.test_loss_raw).toBe(plain.history[e]!.test_loss);
      expect(m.train_loss).toBe(plain.history[e]!.train_loss);
    });
    expect(plain.history[0]!.test_acc_raw).toBeUndefined();
    // The network it returns holds the average of the per-step weights.
    averaged.final.forEach((w, k) => {
      const ref = referenceAverage(
        averaged.initial[k]!,
        averaged.steps.map((s) => s[k]!),
        0.8,
      );
      let maxErr = 0;
      for (let i = 0; i < w.length; i++) maxErr = Math.max(maxErr, Math.abs(w[i]! - ref[i]!));
      expect(maxErr).toBeLessThan(1e-5 * Math.max(1, ...Array.from(ref, Math.abs)));
    });
    expect(averaged.final).not.toEqual(plain.final);
  });

  it('refuses a decay outside [0, 1)', async () => {
    const trainPart = toySet(1, 8);
    const solver = createSolver('exact');
    const net = initNetwork(defaultConfig([6, 2]), { x: trainPart.x, n: 8 }, solver, { seed: 1 });
    await expect(trainNetwork(net, { train: trainPart }, { epochs: 1, batchSize: 4, lr: 0.1, seed: 1, solver, averageDecay: 1 })).rejects.toThrow(
      /averageDecay must lie in \[0, 1\).*got 1/,
    );
    net.dispose();
  });
});
