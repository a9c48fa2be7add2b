/**
 * Layers whose grid starts at their inputs' window (timeOffset > 0) must compute the same physics
 * as the exact solver for ANY input times, including inputs that arrive before the offset (a
 * previous layer firing early). References: the float64 exact solver on the raw input times, and
 * central finite differences of it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDataset } from '../../../models/datasets/load.ts';
import { makeLayer } from '../../../models/neuron/layer.ts';
import { initNetwork } from '../../../models/network/init.ts';
import { DenseSpikeLayer } from '../../../models/network/layer.ts';
import { layerGrid } from '../../../models/network/synapse-layer.ts';
import { defaultConfig, gridOffset, SpikingNetwork } from '../../../models/network/network.ts';
import { loadNetwork, saveNetwork } from '../../../models/network/serialize.ts';
import { createSolver } from '../../../models/network/solver.ts';
import { exactForward, exactNetworkForward } from '../../../models/solvers/exact.ts';
import { evaluateNetwork } from '../../../models/training/evaluate.ts';
import { trainNetwork } from '../../../models/training/trainer.ts';
import { initBackend } from '../../../models/tf/backend.ts';
import { mulberry } from '../rng.ts';

const nIn = 12;
const nOut = 5;
const B = 8;
const SCALE = 0.5;
const E_PLUS = 9.5;
const E_MINUS = -6.25;
const rnd = mulberry(5);
const pE = Float32Array.from({ length: nIn * nOut }, () => 0.3 + rnd());
const pI = Float32Array.from({ length: nIn * nOut }, () => (rnd() < 0.4 ? 0.6 * rnd() : 0));
/** Inputs over [0, 2] with the grid offset at 1: about half arrive before the offset; some silent. */
const x = Float64Array.from({ length: B * nIn }, () => (rnd() < 0.15 ? Infinity : 2 * rnd()));
let layer: DenseSpikeLayer;
beforeAll(async () => {
  await initBackend({ prefer: 'cpu' });
  layer = new DenseSpikeLayer({ kind: 'dense', nIn, nOut, model: 'pnn', ePlus: E_PLUS, eMinus: E_MINUS, horizon: 3, timeOffset: 1, scale: SCALE, pE, pI });
});
afterAll(() => layer.dispose());

/** The exact layer in float64, conductances straight from float64 parameters. */
function exactLayer(e: Float64Array, i: Float64Array) {
  return makeLayer({
    nIn,
    nOut,
    model: 'pnn',
    gE: e.map((v) => (v * SCALE) / E_PLUS),
    gI: i.map((v) => (v * SCALE) / -E_MINUS),
    ePlus: E_PLUS,
    eMinus: E_MINUS,
    horizon: 3,
  });
}

const exactTimes = exactForward(exactLayer(Float64Array.from(pE), Float64Array.from(pI)), x, B).times;

function maxError(t: ArrayLike<number>): number {
  let e = 0;
  for (let k = 0; k < t.length; k++) e = Math.max(e, Math.abs(t[k]! - Math.min(exactTimes[k]!, 3)));
  return e;
}

describe('layerGrid', () => {
  it("extends the grid backwards by whole bins down to the batch's earliest input, edges aligned on the offset", () => {
    // dt = (3 - 1) / 16 = 0.125; earliest 0.3 needs ceil(0.7 / 0.125) = 6 more bins.
    expect(layerGrid(1, 3, 16, [2, 0.3, Infinity, 1.4])).toEqual({ start: 0.25, bins: 22 });
    expect(layerGrid(1, 3, 16, [1, 1.5, Infinity])).toEqual({ start: 1, bins: 16 });
    expect(layerGrid(1, 3, 16, [0, 1.5])).toEqual({ start: 0, bins: 24 });
    // Nothing before 0: an input at a negative time is on from the grid's start.
    expect(layerGrid(1, 3, 16, [-5])).toEqual({ start: 0, bins: 24 });
    expect(layerGrid(0, 3, 16, [0.3])).toEqual({ start: 0, bins: 16 });
    expect(layerGrid(1, 3, 16, [1 - 1e-9])).toEqual({ start: 1, bins: 16 });
  });

  it('without input times, down to 0 whatever the batch', () => {
    expect(layerGrid(1, 3, 16)).toEqual({ start: 0, bins: 24 });
    // dt = 0.3: 4 more bins, the first edge before 0.
    const g = layerGrid(1, 4, 10);
    expect(g.bins).toBe(14);
    expect(g.start).toBeCloseTo(-0.2, 12);
    expect(layerGrid(0, 3, 16)).toEqual({ start: 0, bins: 16 });
  });

  it('with fixedGrid a sample has the same spike times in any batch, to the last bit', () => {
    const cases = [
      ['dstd', 'events'],
      ['dstd', 'solver'],
      ['euler', 'solver'],
    ] as const;
    for (const [name, drives] of cases) {
      const l = new DenseSpikeLayer({ ...layer.state(), drives });
      const s = createSolver(name, { bins: 12, eulerSteps: 12 });
      const times = (rows: Float64Array, n: number, fixedGrid: boolean) =>
        tf.tidy(() => Array.from(l.forward(tf.tensor2d(Float32Array.from(rows), [n, nIn]), s, { fixedGrid }).times.dataSync()));
      const all = times(x, B, true);
      for (let b = 0; b < B; b++) expect(times(x.subarray(b * nIn, (b + 1) * nIn), 1, true)).toEqual(all.slice(b * nOut, (b + 1) * nOut));
      // The batch's own grid: the same physics, but the float32 times move with the batch.
      const own = times(x, B, false);
      const apart = Array.from({ length: B }, (_, b) => times(x.subarray(b * nIn, (b + 1) * nIn), 1, false)).flat();
      expect(apart).not.toEqual(own);
      for (let k = 0; k < own.length; k++) expect(Math.abs(apart[k]! - own[k]!)).toBeLessThan(1e-5);
      l.dispose();
    }
  });
});

describe('a shifted grid with inputs before the offset', () => {
  it('the case is discriminating: moving early inputs to the offset changes the exact spike times a lot', () => {
    const moved = exactForward(
      exactLayer(Float64Array.from(pE), Float64Array.from(pI)),
      x.map((t) => Math.max(t, 1)),
      B,
    ).times;
    expect(maxError(Float64Array.from(moved, (t) => Math.min(t, 3)))).toBeGreaterThan(0.3);
    // Some neurons even fire before the offset.
    expect(Array.from(exactTimes).some((t) => t < 1)).toBe(true);
  });

  for (const [name, drives] of [
    ['dstd, event drives', 'events'],
    ['dstd, solver drives', 'solver'],
    ['euler', 'solver'],
  ] as const) {
    it(`${name}: spike times converge to the exact solver's`, () => {
      const l = new DenseSpikeLayer({ ...layer.state(), drives });
      const errs = [8, 32, 128].map((M) => {
        const s = createSolver(name === 'euler' ? 'euler' : 'dstd', { bins: M, eulerSteps: M });
        return maxError(tf.tidy(() => l.forward(tf.tensor2d(Float32Array.from(x), [B, nIn]), s).times.dataSync()));
      });
      l.dispose();
      expect(errs[1]!).toBeLessThan(errs[0]! / 2.5);
      expect(errs[2]!).toBeLessThan(errs[1]! / 2.5);
      expect(errs[2]!).toBeLessThan(name === 'euler' ? 5e-3 : 1e-3);
    });
  }

  it('dstd gradients (weights and input times) agree with finite differences of the exact solver', () => {
    const rw = mulberry(17);
    const w = Float64Array.from(exactTimes, (t) => (t < 3 ? rw() - 0.5 : 0));
    const solver = createSolver('dstd', { bins: 256 });
    const xt = tf.tensor2d(Float32Array.from(x), [B, nIn]);
    const wt = tf.tensor2d(Float32Array.from(w), [B, nOut]);
    // Gradients through the layer's own variables and the input tensor.
    const { grads } = tf.variableGrads(() => tf.sum(tf.mul(layer.forward(xt, solver).times, wt)) as tf.Scalar, [layer.pE, layer.pI]);
    const gx = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(layer.forward(t as tf.Tensor2D, solver).times, wt)))(xt);
    const gE = grads[layer.pE.name]!.dataSync();
    const gI = grads[layer.pI.name]!.dataSync();
    const gX = gx.dataSync();
    const loss = (e: Float64Array, i: Float64Array, t: Float64Array) => {
      const out = exactForward(exactLayer(e, i), t, B).times;
      let s = 0;
      for (let k = 0; k < out.length; k++) if (w[k] !== 0) s += w[k]! * out[k]!;
      return s;
    };
    const e0 = Float64Array.from(pE);
    const i0 = Float64Array.from(pI);
    const xs = Float64Array.from(x);
    const h = 1e-6;
    const fd = (arr: Float64Array, k: number): number => {
      const o = arr[k]!;
      arr[k] = o + h;
      const lp = loss(e0, i0, xs);
      arr[k] = o - h;
      const lm = loss(e0, i0, xs);
      arr[k] = o;
      return (lp - lm) / (2 * h);
    };
    const rel = (a: ArrayLike<number>, b: ArrayLike<number>) => {
      let d = 0;
      let n = 0;
      for (let k = 0; k < b.length; k++) {
        d += (a[k]! - b[k]!) ** 2;
        n += b[k]! ** 2;
      }
      return Math.sqrt(d / n);
    };
    const fdE = Float64Array.from(e0, (_, k) => fd(e0, k));
    const fdI = Float64Array.from(i0, (v, k) => (v > 0 ? fd(i0, k) : 0));
    const fdX = Float64Array.from(xs, (v, k) => (Number.isFinite(v) ? fd(xs, k) : 0));
    const gIMasked = Float64Array.from(gI, (v, k) => (i0[k]! > 0 ? v : 0));
    // Early inputs carry gradient in both references (a moved input would have none).
    expect(Array.from(x).some((t, k) => t < 1 && Math.abs(fdX[k]!) > 1e-3)).toBe(true);
    expect(rel(gE, fdE)).toBeLessThan(0.05);
    expect(rel(gIMasked, fdI)).toBeLessThan(0.05);
    expect(rel(gX, fdX)).toBeLessThan(0.05);
    tf.dispose([xt, wt, gx, ...Object.values(grads)]);
    layer.pE.assign(tf.tensor2d(pE, [nIn, nOut]));
    layer.pI.assign(tf.tensor2d(pI, [nIn, nOut]));
  });
});

describe('fixed per-neuron threshold scale and delay (a calibrated twin)', () => {
  it('every grid solver converges to the exact solver with them, early inputs included; they survive save/load', async () => {
    const thresholdScale = Float32Array.from({ length: nOut }, (_, i) => 0.8 + 0.1 * i);
    const delay = Float32Array.from({ length: nOut }, (_, i) => 0.02 * i);
    const cal = new DenseSpikeLayer({ ...layer.state(), thresholdScale, delay });
    const ref = exactForward(
      { ...exactLayer(Float64Array.from(pE), Float64Array.from(pI)), thresholdScale: Float64Array.from(thresholdScale), delay: Float64Array.from(delay) },
      x,
      B,
    ).times;
    // Non-vacuous: the calibration moves the exact spikes.
    expect(Math.max(...Array.from(ref, (t, k) => Math.abs(Math.min(t, 3) - Math.min(exactTimes[k]!, 3))))).toBeGreaterThan(0.05);
    for (const [name, drives] of [
      ['dstd', 'events'],
      ['dstd', 'solver'],
      ['euler', 'solver'],
    ] as const) {
      const l = new DenseSpikeLayer({ ...cal.state(), drives });
      const s = createSolver(name, { bins: 128, eulerSteps: 512 });
      const t = tf.tidy(() => l.forward(tf.tensor2d(Float32Array.from(x), [B, nIn]), s).times.dataSync());
      l.dispose();
      const err = Math.max(...Array.from(t, (v, k) => Math.abs(v - Math.min(ref[k]!, 3))));
      expect(err, `${name}/${drives}`).toBeLessThan(name === 'euler' ? 5e-3 : 1e-3);
    }
    const dir = mkdtempSync(join(tmpdir(), 'spikeloop-cal-'));
    try {
      const net = SpikingNetwork.fromStates(defaultConfig([nIn, nOut], { horizons: [3] }), [{ ...cal.state(), timeOffset: 0 }]);
      await saveNetwork(join(dir, 'n.bin'), net);
      const back = (await loadNetwork(join(dir, 'n.bin'))).net;
      const st = back.states()[0]!;
      expect(Array.from(st.thresholdScale!)).toEqual(Array.from(thresholdScale));
      expect(Array.from(st.delay!)).toEqual(Array.from(delay));
      expect(Array.from(back.toPnnLayers()[0]!.delay!)).toEqual(Array.from(delay, (v) => v));
      net.dispose();
      back.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(() => new DenseSpikeLayer({ ...cal.state(), thresholdScale: Float32Array.of(1, 1, 0, 1, 1) })).toThrow(/thresholdScale\[2\] = 0 must be > 0/);
    expect(() => new DenseSpikeLayer({ ...cal.state(), delay: Float32Array.of(0) })).toThrow(/delay must be a Float32Array of nOut = 5/);
    cal.dispose();
  });
});

describe('a trained network on shifted grids', () => {
  it('DSTD and the exact solver agree on its predictions, and early spikes occur', async () => {
    const data = await loadDataset('iris', { seed: 1 });
    const solver = createSolver('dstd', { bins: 16 });
    // The file's reversal potentials, not the chip nominal: this checks the grids, whatever the chip.
    const config = defaultConfig([4, 16, 3], { shiftGrids: true, ePlus: E_PLUS, eMinus: E_MINUS });
    // An early hidden window target so that hidden neurons fire before the input window ends.
    const net = initNetwork(config, { x: data.train.x, n: data.train.n }, solver, { seed: 2, targetFraction: 0.02 });
    try {
      await trainNetwork(net, { train: data.train }, { epochs: 8, batchSize: 8, lr: 0.01, seed: 2, solver, loss: { windowWeight: 0 } });
      const all = {
        ...data.train,
        x: Float32Array.of(...data.train.x, ...data.test.x),
        y: Uint8Array.of(...data.train.y, ...data.test.y),
        n: data.train.n + data.test.n,
      };
      // Non-vacuous: hidden spikes before layer 1's grid offset, which the fix must integrate.
      const input = Float64Array.from(all.x, (v) => (v <= 0 ? Infinity : 1 - v));
      const hidden = exactNetworkForward(net.toPnnLayers(), input, all.n)[0]!;
      const early = Array.from(hidden).filter((t) => t < gridOffset(config, 1)).length;
      expect(early).toBeGreaterThan(0.05 * hidden.length);
      const pd = evaluateNetwork(net, all, solver).predictions;
      const pe = evaluateNetwork(net, all, createSolver('exact')).predictions;
      const agree = pd.filter((p, k) => p === pe[k]).length;
      expect(agree).toBeGreaterThanOrEqual(all.n - 3);
    } finally {
      net.dispose();
    }
  });
});
