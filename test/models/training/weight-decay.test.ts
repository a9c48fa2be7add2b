import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initNetwork } from '../../../models/network/init.ts';
import { defaultConfig } from '../../../models/network/network.ts';
import { createSolver } from '../../../models/network/solver.ts';
import { trainNetwork, type TrainOptions } from '../../../models/training/trainer.ts';
import { decayFactor, decayWeights } from '../../../models/training/weight-decay.ts';
import { initBackend } from '../../../models/tf/backend.ts';
import { toySet } from './toy-set.ts';

beforeAll(async () => {
  await initBackend({ prefer: 'cpu' });
});

describe('decayFactor and decayWeights', () => {
  it('is 1 - lr * weightDecay, and 1 when off', () => {
    expect(decayFactor(0.01, 0.1)).toBeCloseTo(0.999, 15);
    expect(decayFactor(0.5, 1.5)).toBeCloseTo(0.25, 15);
    expect(decayFactor(0.01, 0)).toBe(1);
  });

  it('refuses a negative or non-finite decay, and one that would zero or flip the weights', () => {
    for (const wd of [-0.1, Number.NaN, Number.POSITIVE_INFINITY]) expect(() => decayFactor(0.01, wd)).toThrow(/weightDecay must be finite and >= 0.*got/);
    for (const wd of [100, 150]) expect(() => decayFactor(0.01, wd)).toThrow(/lr \* weightDecay must be below 1.*lr 0.01, weightDecay/);
  });

  it('multiplies every variable in place without leaking tensors', () => {
    const a = tf.variable(
      tf.tensor2d([
        [0, 1],
        [2, 3],
      ]),
    );
    const b = tf.variable(tf.tensor1d([0.5, 4]));
    const before = tf.memory().numTensors;
    decayWeights([a, b], 0.75);
    expect(tf.memory().numTensors).toBe(before);
    expect(Array.from(a.dataSync())).toEqual([0, 0.75, 1.5, 2.25]);
    expect(Array.from(b.dataSync())).toEqual([0.375, 3]);
    decayWeights([a, b], 1);
    expect(Array.from(b.dataSync())).toEqual([0.375, 3]);
    tf.dispose([a, b]);
  });
});

describe('trainNetwork with weightDecay', () => {
  const trainPart = toySet(1, 32);
  const test = toySet(2, 16);
  const solver = createSolver('dstd', { bins: 12 });

  async function train(extra: Partial<TrainOptions>, epochs = 2, batchSize = 8) {
    const net = initNetwork(defaultConfig([6, 8, 2]), { x: trainPart.x, n: 32 }, solver, { seed: 5 });
    await trainNetwork(net, { train: trainPart, test }, { epochs, batchSize, lr: 0.02, seed: 5, solver, ...extra });
    const weights = net.trainableVariables().map((v) => Float32Array.from(v.dataSync()));
    net.dispose();
    return weights;
  }

  it('after a single step is the undecayed step scaled by 1 - lr * weightDecay (decoupled from the gradient)', async () => {
    // One batch of the whole set, one epoch: the decay acts after Adam's step and the projection.
    const plain = await train({}, 1, 32);
    const decayed = await train({ weightDecay: 5 }, 1, 32);
    const f = 1 - 0.02 * 5;
    expect(plain.length).toBe(decayed.length);
    plain.forEach((w, k) => {
      const d = decayed[k]!;
      for (let i = 0; i < w.length; i++) expect(d[i]).toBeCloseTo(w[i]! * f, 6);
    });
  });

  it('is off at 0, shrinks the weights over a run, keeps them non-negative, and repeats for a seed', async () => {
    const tensors = tf.memory().numTensors;
    const plain = await train({});
    const zero = await train({ weightDecay: 0 });
    const decayed = await train({ weightDecay: 5 });
    const again = await train({ weightDecay: 5 });
    expect(tf.memory().numTensors).toBe(tensors);
    expect(zero).toEqual(plain);
    expect(again).toEqual(decayed);
    const sum = (ws: Float32Array[]) => ws.reduce((s, w) => s + w.reduce((a, v) => a + v, 0), 0);
    expect(sum(decayed)).toBeLessThan(0.9 * sum(plain));
    for (const w of decayed) expect(Math.min(...w)).toBeGreaterThanOrEqual(0);
  });

  it('refuses a decay that lr would turn into a factor <= 0', async () => {
    const net = initNetwork(defaultConfig([6, 2]), { x: trainPart.x, n: 8 }, createSolver('exact'), { seed: 1 });
    const run = trainNetwork(net, { train: trainPart }, { epochs: 1, batchSize: 4, lr: 0.1, seed: 1, solver: createSolver('exact'), weightDecay: 10 });
    await expect(run).rejects.toThrow(/lr \* weightDecay must be below 1/);
    net.dispose();
  });
});
