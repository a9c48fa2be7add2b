import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { mapAnnToSnn, searchCurrentScale } from '../../../models/ann/mapping.ts';
import { ReluNet, trainReluNet, type AnnLayerWeights } from '../../../models/ann/relu-net.ts';
import type { DatasetPart } from '../../../models/datasets/types.ts';
import { NOMINAL_REVERSAL } from '../../../models/network/network.ts';
import { createSolver } from '../../../models/network/solver.ts';
import { exactForward } from '../../../models/solvers/exact.ts';
import { initBackend } from '../../../models/tf/backend.ts';
import { mulberry } from '../rng.ts';
import { unitSumLayer } from './unit-sum.ts';

beforeAll(async () => {
  await initBackend({ prefer: 'cpu' });
});

function toySet(seed: number, n: number, f = 5, classes = 3): DatasetPart {
  const rnd = mulberry(seed);
  const x = new Float32Array(n * f);
  const y = new Uint8Array(n);
  for (let s = 0; s < n; s++) {
    const c = s % classes;
    y[s] = c;
    for (let j = 0; j < f; j++) x[s * f + j] = Math.min(1, Math.max(0, (j % classes === c ? 0.7 : 0.3) + 0.25 * (rnd() - 0.5)));
  }
  return { name: 'toy', x, y, n, features: f, classes, classNames: ['a', 'b', 'c'] };
}

/** ANN forward in float64 from layer weights: [logits of every sample]. */
function annLogits(layers: AnnLayerWeights[], x: Float32Array, n: number): Float64Array[] {
  let a = Array.from({ length: n }, (_, s) => Float64Array.from(x.subarray(s * layers[0]!.nIn, (s + 1) * layers[0]!.nIn)));
  layers.forEach((L, l) => {
    a = a.map((row) => {
      const z = Float64Array.from(L.b);
      for (let j = 0; j < L.nIn; j++) for (let i = 0; i < L.nOut; i++) z[i] += row[j]! * L.w[j * L.nOut + i]!;
      return l + 1 < layers.length ? z.map((v) => Math.max(0, v)) : z;
    });
  });
  return a;
}

describe('ReluNet', () => {
  it('keeps every neuron weights summing to rowSum, and learns a toy problem', async () => {
    const data = toySet(1, 60);
    const net = new ReluNet({ sizes: [5, 8, 3], seed: 2, rowSum: 1 });
    const h = await trainReluNet(net, { train: data, test: toySet(2, 30) }, { epochs: 30, batchSize: 10, lr: 0.02, seed: 2 });
    for (const L of net.layerWeights()) {
      for (let i = 0; i < L.nOut; i++) {
        let s = 0;
        for (let j = 0; j < L.nIn; j++) s += L.w[j * L.nOut + i]!;
        expect(s).toBeCloseTo(1, 4);
      }
    }
    expect(h.at(-1)!.train_loss).toBeLessThan(h[0]!.train_loss);
    expect(h.at(-1)!.test_acc).toBeGreaterThan(0.9);
    // predict() is the argmax of the float64 forward pass.
    const ref = annLogits(net.layerWeights(), data.x, data.n).map((z) => z.indexOf(Math.max(...z)));
    expect(Array.from(net.predict(data.x, data.n))).toEqual(ref);
    net.dispose();
  });
});

describe('mapAnnToSnn', () => {
  it('hidden neurons spike at T0 - tau (z + b)/S: the derivation holds exactly on the ideal model', () => {
    const data = toySet(3, 40);
    const rnd = mulberry(9);
    // Random weights summing to 1 per neuron, biases of both signs.
    const nIn = 5;
    const nOut = 6;
    const { w, b } = unitSumLayer(rnd, nIn, nOut);
    const out: AnnLayerWeights = { nIn: nOut, nOut: 3, w: Float32Array.from({ length: nOut * 3 }, () => rnd()), b: new Float32Array(3) };
    const m = mapAnnToSnn([{ nIn, nOut, w, b }, out], { x: data.x, n: data.n }, { percentile: 1 });
    const layer0 = m.net.toPnnLayers()[0]!;
    const inputTimes = Float64Array.from(data.x, (v) => 1 - v); // zeros spike at tIn: not silenced
    const t = exactForward(layer0, inputTimes, data.n).times;
    const T0 = 1 + m.windows[0]!;
    let checked = 0;
    for (let s = 0; s < data.n; s++) {
      for (let i = 0; i < nOut; i++) {
        let z = b[i]!;
        for (let j = 0; j < nIn; j++) z += w[j * nOut + i]! * data.x[s * nIn + j]!;
        const want = T0 - z; // S = 1, tau = tIn = 1
        if (want <= layer0.horizon) {
          expect(t[s * nOut + i]).toBeCloseTo(want, 5);
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(100);
    m.net.dispose();
  });

  it('a network without hidden layers maps exactly: the earliest spike is the ANN argmax', () => {
    const data = toySet(5, 60);
    const net = new ReluNet({ sizes: [5, 3], seed: 4, rowSum: 1 });
    const layers = net.layerWeights();
    net.dispose();
    // Bias-free weights trained or not, the mapping must agree with the ANN on every sample.
    const m = mapAnnToSnn(layers, { x: data.x, n: data.n }, { percentile: 1 });
    const snn = m.net.predict(data.x, data.n, createSolver('exact'));
    const ann = annLogits(layers, data.x, data.n).map((z) => z.indexOf(Math.max(...z)));
    expect(Array.from(snn)).toEqual(ann);
    m.net.dispose();
  });

  it('the current-scale search returns its best point on the selection set', () => {
    const data = toySet(6, 30);
    const net = new ReluNet({ sizes: [5, 4, 3], seed: 1, rowSum: 1 });
    const m = mapAnnToSnn(net.layerWeights(), { x: data.x, n: data.n });
    net.dispose();
    const r = searchCurrentScale(m.net, data, createSolver('exact'), { scales: [0.5, 1, 2], reversal: [NOMINAL_REVERSAL, { ePlus: 5, eMinus: -3 }] });
    expect(r.grid).toHaveLength(6);
    expect(r.best.acc).toBe(Math.max(...r.grid.map((g) => g.acc)));
    expect(() => searchCurrentScale(m.net, data, createSolver('exact'), { scales: [], reversal: [NOMINAL_REVERSAL] })).toThrow(/at least one scale/);
    m.net.dispose();
    expect(tf.memory().numTensors).toBeLessThan(50);
  });
});
