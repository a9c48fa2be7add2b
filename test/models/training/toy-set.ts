import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'vitest';
import type { DatasetPart } from '../../../models/datasets/types.ts';
import { initNetwork } from '../../../models/network/init.ts';
import { defaultConfig } from '../../../models/network/network.ts';
import { createSolver } from '../../../models/network/solver.ts';
import { trainNetwork, type TrainOptions } from '../../../models/training/trainer.ts';
import { mulberry } from '../rng.ts';

/** Two classes separated by which half of the inputs is bright (linearly separable). */
export function toySet(seed: number, n: number): DatasetPart {
  const rnd = mulberry(seed);
  const f = 6;
  const x = new Float32Array(n * f);
  const y = new Uint8Array(n);
  for (let s = 0; s < n; s++) {
    const c = s % 2;
    y[s] = c;
    for (let j = 0; j < f; j++) {
      const bright = j < f / 2 === (c === 0);
      x[s * f + j] = bright ? 0.6 + 0.4 * rnd() : 0.3 * rnd();
    }
  }
  return { name: 'toy', x, y, n, features: f, classes: 2, classNames: ['a', 'b'] };
}

/**
 * Two epochs of a 6-8-2 network on toySet (seed 5) with `extra` options: the per-epoch metrics without
 * their timings, and the trained weights. For tests that a training option is off at 0 and repeats.
 */
export async function trainToy(extra: Partial<TrainOptions>): Promise<{ history: Record<string, unknown>[]; weights: number[][] }> {
  const trainPart = toySet(1, 32);
  const test = toySet(2, 16);
  const solver = createSolver('dstd', { bins: 12 });
  const net = initNetwork(defaultConfig([6, 8, 2]), { x: trainPart.x, n: 32 }, solver, { seed: 5 });
  const history = await trainNetwork(net, { train: trainPart, test }, { epochs: 2, batchSize: 8, lr: 0.02, seed: 5, solver, ...extra });
  const weights = net.trainableVariables().map((v) => Array.from(v.dataSync()));
  net.dispose();
  return { history: history.map(({ seconds: _s, samples_per_s: _r, ...m }) => m), weights };
}

/**
 * Checks that a training option (`option`) is off at 0 (the same run as without it), changes the
 * path at `level`, repeats exactly for a seed, and leaks no tensor; returns the run at `level`.
 */
export async function expectOffAtZeroAndRepeatable(option: 'inputNoise' | 'weightNoise', level: number): Promise<{ weights: number[][] }> {
  const tensors = tf.memory().numTensors;
  const plain = await trainToy({});
  const zero = await trainToy({ [option]: 0 });
  const noisy = await trainToy({ [option]: level });
  const again = await trainToy({ [option]: level });
  expect(tf.memory().numTensors).toBe(tensors);
  expect(zero).toEqual(plain);
  expect(noisy.weights).not.toEqual(plain.weights);
  expect(again).toEqual(noisy);
  return noisy;
}
