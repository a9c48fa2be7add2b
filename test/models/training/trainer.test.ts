import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initNetwork } from '../../../models/network/init.ts';
import { defaultConfig, SpikingNetwork } from '../../../models/network/network.ts';
import { createSolver } from '../../../models/network/solver.ts';
import { evaluateNetwork } from '../../../models/training/evaluate.ts';
import { batchLoss, resolveLoss, scheduledRate, trainNetwork } from '../../../models/training/trainer.ts';
import { initBackend } from '../../../models/tf/backend.ts';
import { mulberry } from '../rng.ts';
import { toySet } from './toy-set.ts';

beforeAll(async () => {
  await initBackend({ prefer: 'cpu' });
});

async function trainToy(seed: number, epochs: number) {
  const train = toySet(1, 64);
  const test = toySet(2, 32);
  const solver = createSolver('dstd', { bins: 12 });
  const net = initNetwork(defaultConfig([6, 8, 2]), { x: train.x, n: 64 }, solver, { seed });
  const before = evaluateNetwork(net, train, solver);
  const history = await trainNetwork(net, { train, test }, { epochs, batchSize: 16, lr: 0.02, seed, solver, loss: { windowWeight: 0.1 } });
  const states = net.states();
  net.dispose();
  return { before, history, states };
}

describe('trainNetwork', () => {
  it('reduces the loss and learns a separable toy problem, leaving no tensors behind', async () => {
    const tensors = tf.memory().numTensors;
    const { before, history } = await trainToy(3, 25);
    expect(tf.memory().numTensors).toBe(tensors);
    expect(history).toHaveLength(25);
    expect(history.at(-1)!.train_terms.ce).toBeLessThan(0.5 * history[0]!.train_terms.ce);
    expect(history.at(-1)!.train_terms.ce).toBeLessThan(before.loss);
    expect(history.at(-1)!.test_acc).toBeGreaterThanOrEqual(0.9);
    const m = history.at(-1)!;
    expect(m.train_loss).toBeCloseTo(m.train_terms.ce + m.train_terms.window + m.train_terms.dead, 6);
  });

  it('is deterministic: same seed, identical metrics and weights', async () => {
    const a = await trainToy(7, 3);
    const b = await trainToy(7, 3);
    const strip = (h: typeof a.history) => h.map(({ seconds: _s, samples_per_s: _r, ...rest }) => rest);
    expect(strip(a.history)).toEqual(strip(b.history));
    expect(a.states).toEqual(b.states);
    const c = await trainToy(8, 3);
    expect(strip(c.history)).not.toEqual(strip(a.history));
  });

  it('rejects bad options with the offending value', async () => {
    const train = toySet(1, 8);
    const solver = createSolver('exact');
    const net = initNetwork(defaultConfig([6, 2]), { x: train.x, n: 8 }, solver, { seed: 1 });
    await expect(trainNetwork(net, { train }, { epochs: 1, batchSize: 0, lr: 0.1, seed: 1, solver })).rejects.toThrow(
      /batchSize must be a positive integer, got 0/,
    );
    await expect(trainNetwork(net, { train }, { epochs: 1, batchSize: 4, lr: -1, seed: 1, solver })).rejects.toThrow(/lr must be > 0, got -1/);
    await expect(trainNetwork(net, { train }, { epochs: 1, batchSize: 4, lr: 0.1, seed: 1, solver, loss: { tauSoft: 0 } })).rejects.toThrow(/tauSoft/);
    net.dispose();
  });

  it('stops after the current batch when the signal aborts, marking the epoch partial', async () => {
    const train = toySet(1, 64);
    const solver = createSolver('dstd', { bins: 8 });
    const net = initNetwork(defaultConfig([6, 4, 2]), { x: train.x, n: 64 }, solver, { seed: 1 });
    const ctl = new AbortController();
    const h = await trainNetwork(
      net,
      { train },
      { epochs: 5, batchSize: 8, lr: 0.01, seed: 1, solver, signal: ctl.signal, onBatch: (p) => p.batch === 2 && ctl.abort() },
    );
    expect(h).toHaveLength(1);
    expect(h[0]).toMatchObject({ epoch: 1, partial: true });
    net.dispose();
  });

  it('trains with the exact solver (implicit-function-theorem gradients) too', async () => {
    const train = toySet(4, 32);
    const solver = createSolver('exact');
    const net = initNetwork(defaultConfig([6, 4, 2]), { x: train.x, n: 32 }, solver, { seed: 2 });
    const h = await trainNetwork(net, { train }, { epochs: 8, batchSize: 8, lr: 0.03, seed: 2, solver, loss: { windowWeight: 0.1 } });
    expect(h.at(-1)!.train_terms.ce).toBeLessThan(h[0]!.train_terms.ce);
    net.dispose();
  });
});

describe('learning-rate schedules', () => {
  it('cosine-steps runs the cosine from lr to 5 % of lr over every step of the run, cosine one value per epoch', () => {
    const o = { lr: 0.02, epochs: 2 };
    // 2 epochs of 5 steps: steps 0..9, the cosine's argument step / 9.
    const want = (k: number) => 0.02 * (0.05 + 0.475 * (1 + Math.cos((Math.PI * k) / 9)));
    expect(scheduledRate({ ...o, schedule: 'cosine-steps' }, 0, 0, 5)).toBeCloseTo(0.02, 12);
    expect(scheduledRate({ ...o, schedule: 'cosine-steps' }, 0, 3, 5)).toBeCloseTo(want(3), 12);
    expect(scheduledRate({ ...o, schedule: 'cosine-steps' }, 1, 4, 5)).toBeCloseTo(0.001, 12);
    // One epoch: 'cosine' stays at lr, 'cosine-steps' still decays.
    expect(scheduledRate({ lr: 0.02, epochs: 1, schedule: 'cosine' }, 0, 4, 5)).toBe(0.02);
    expect(scheduledRate({ lr: 0.02, epochs: 1, schedule: 'cosine-steps' }, 0, 4, 5)).toBeCloseTo(0.001, 12);
    expect(scheduledRate({ ...o, schedule: 'cosine' }, 1, 0, 5)).toBeCloseTo(0.001, 12);
    expect(scheduledRate({ ...o, schedule: 'constant' }, 1, 3, 5)).toBe(0.02);
  });

  it('a cosine-steps run reports the first rate of each epoch and trains differently from a constant one', async () => {
    const train = toySet(1, 40);
    const solver = createSolver('dstd', { bins: 12 });
    const run = async (schedule: 'constant' | 'cosine-steps') => {
      const net = initNetwork(defaultConfig([6, 8, 2]), { x: train.x, n: 40 }, solver, { seed: 3 });
      const h = await trainNetwork(net, { train }, { epochs: 2, batchSize: 8, lr: 0.02, seed: 3, solver, schedule });
      const w = net.states()[0]!.pE;
      net.dispose();
      return { h, w };
    };
    const cos = await run('cosine-steps');
    const flat = await run('constant');
    expect(cos.h.map((m) => m.lr)).toEqual([0.02, scheduledRate({ lr: 0.02, epochs: 2, schedule: 'cosine-steps' }, 1, 0, 5)]);
    expect(cos.h[1]!.lr).toBeLessThan(0.02);
    expect(flat.h.map((m) => m.lr)).toEqual([0.02, 0.02]);
    expect(Array.from(cos.w)).not.toEqual(Array.from(flat.w));
  });
});

describe('the dead-neuron term', () => {
  // One layer, 6 inputs to 3 outputs, inhibitory enough that some label neurons stay silent.
  function net(): SpikingNetwork {
    const rnd = mulberry(17);
    const state = {
      kind: 'dense' as const,
      nIn: 6,
      nOut: 3,
      model: 'pnn' as const,
      ePlus: 9.5,
      eMinus: -6.25,
      horizon: 2,
      timeOffset: 0,
      scale: 0.5,
      pE: Float32Array.from({ length: 18 }, () => rnd()),
      pI: Float32Array.from({ length: 18 }, (_, k) => (k % 3 === 0 ? 1.5 : 0.3) * rnd()),
    };
    return SpikingNetwork.fromStates(defaultConfig([6, 3]), [state]);
  }

  it('deadMean 1 is a mean over the batch: the selected-pairs mean times the share of silent label neurons', () => {
    const n = net();
    const B = 12;
    const rnd = mulberry(4);
    const x = Float32Array.from({ length: B * 6 }, () => rnd());
    const labels = Uint8Array.from({ length: B }, (_, b) => b % 3);
    const input = n.encode(x, B);
    const run = (deadMean: number) =>
      tf.tidy(() => {
        const r = batchLoss(n, input, labels, createSolver('dstd', { bins: 16 }), resolveLoss({ windowWeight: 0, deadMean }));
        const mask = r.outMask.dataSync();
        let silentLabels = 0;
        for (let b = 0; b < B; b++) if (mask[b * 3 + labels[b]!]! < 0.5) silentLabels++;
        return { dead: r.terms.dead.dataSync()[0]!, ce: r.terms.ce.dataSync()[0]!, silentLabels };
      });
    const selected = run(0);
    const batch = run(1);
    expect(selected.silentLabels).toBeGreaterThan(0);
    expect(selected.silentLabels).toBeLessThan(B);
    expect(selected.dead).toBeGreaterThan(0);
    expect(batch.dead).toBeCloseTo((selected.dead * selected.silentLabels) / B, 5);
    expect(batch.ce).toBe(selected.ce);
    input.dispose();
    n.dispose();
  });

  it('refuses a deadMean other than 0 or 1', () => {
    expect(() => resolveLoss({ deadMean: 2 })).toThrow(/deadMean must be 0 .* or 1 .*, got 2/);
  });
});
