/**
 * The surrogate for silent neurons (losses.ts silentPseudoTimes, deadMembrane; layer.ts
 * horizonMembrane): the membrane at the horizon against an event-driven float64 reference, the
 * loss gradient against central finite differences, and the forward values left alone.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { DenseSpikeLayer, type DenseLayerState } from '../../../models/network/layer.ts';
import { defaultConfig, SpikingNetwork } from '../../../models/network/network.ts';
import { createSolver } from '../../../models/network/solver.ts';
import { silentPseudoTimes, ttfsCrossEntropy } from '../../../models/training/losses.ts';
import { batchLoss, resolveLoss } from '../../../models/training/trainer.ts';
import { initBackend } from '../../../models/tf/backend.ts';
import { mulberry } from '../rng.ts';

beforeAll(async () => {
  await initBackend({ prefer: 'cpu' });
});

const E_PLUS = 9.5;
const E_MINUS = -6.25;

function denseState(nIn: number, nOut: number, seed: number, o: Partial<DenseLayerState> = {}): DenseLayerState {
  const rnd = mulberry(seed);
  return {
    kind: 'dense',
    nIn,
    nOut,
    model: 'pnn',
    ePlus: E_PLUS,
    eMinus: E_MINUS,
    horizon: 2,
    timeOffset: 0,
    scale: 0.25,
    pE: Float32Array.from({ length: nIn * nOut }, () => rnd()),
    pI: Float32Array.from({ length: nIn * nOut }, () => 0.6 * rnd()),
    ...o,
  };
}

/** u(horizon) of eq. (1) event by event in float64 (steps switched on at each input time). */
function membraneReference(s: DenseLayerState, times: number[], batch: number): number[] {
  const { nIn, nOut, horizon } = s;
  const kE = s.scale / s.ePlus;
  const kI = s.scale / -s.eMinus;
  const out: number[] = [];
  for (let b = 0; b < batch; b++) {
    const order = Array.from({ length: nIn }, (_, j) => j)
      .filter((j) => times[b * nIn + j]! < horizon)
      .sort((p, q) => times[b * nIn + p]! - times[b * nIn + q]!);
    for (let i = 0; i < nOut; i++) {
      let u = 0;
      let G = 0;
      let A = 0;
      let t = 0;
      for (const next of [...order.map((j) => ({ j, at: times[b * nIn + j]! })), { j: -1, at: horizon }]) {
        const step = next.at - t;
        u = G > 0 ? A / G + (u - A / G) * Math.exp(-G * step) : u + A * step;
        t = next.at;
        if (next.j < 0) break;
        const gE = s.pE[next.j * nOut + i]! * kE;
        const gI = s.pI[next.j * nOut + i]! * kI;
        G += gE + gI;
        A += gE * s.ePlus + gI * s.eMinus;
      }
      out.push(u / (s.thresholdScale?.[i] ?? 1));
    }
  }
  return out;
}

describe('horizonMembrane', () => {
  it('is the PNN membrane at the horizon (inputs on bin edges, where DSTD is exact), below restPotential', () => {
    const s = denseState(5, 3, 1, { thresholdScale: Float32Array.from([1, 1.5, 0.8]) });
    const layer = new DenseSpikeLayer(s);
    const rnd = mulberry(2);
    // 16 bins over [0, 2]: edges are multiples of 1/8; some inputs silent.
    const times = Array.from({ length: 4 * 5 }, () => (rnd() < 0.2 ? Infinity : Math.floor(rnd() * 16) / 8));
    const x = tf.tensor2d(times, [4, 5]);
    const before = tf.memory().numTensors;
    const u = layer.horizonMembrane(x, { bins: 16 });
    expect(tf.memory().numTensors - before).toBe(1);
    const ref = membraneReference(s, times, 4);
    const got = Array.from(u.dataSync());
    got.forEach((v, k) => expect(v).toBeCloseTo(ref[k]!, 5));
    // The ideal-limit potential leaves out the reversal potentials: it overestimates an excited neuron.
    const ideal = tf.tidy(() => tf.div(layer.restPotential(x), layer.thresholdScale!).dataSync());
    got.forEach((v, k) => {
      if (v > 0.05) expect(ideal[k]!).toBeGreaterThan(v);
    });
    tf.dispose([u, x]);
    layer.dispose();
  });

  it('equals restPotential for the ideal model, and stays below 1 exactly where DSTD finds no spike', () => {
    const rnd = mulberry(5);
    const times = Array.from({ length: 6 * 8 }, () => 2 * rnd());
    const x = tf.tensor2d(times, [6, 8]);
    const ideal = new DenseSpikeLayer({ ...denseState(8, 4, 3, { model: 'ideal' }), timeOffset: 0.5 });
    const u = ideal.horizonMembrane(x, { bins: 16 });
    const v = ideal.restPotential(x);
    Array.from(u.dataSync()).forEach((a, k) => expect(a).toBeCloseTo(v.dataSync()[k]!, 4));
    const pnn = new DenseSpikeLayer({ ...denseState(8, 4, 4), pI: Float32Array.from({ length: 32 }, (_, k) => (k % 2) * rnd()), timeOffset: 0.5 });
    const solver = createSolver('dstd', { bins: 16 });
    const mask = tf.tidy(() => pnn.forward(x, solver).mask.dataSync());
    const up = tf.tidy(() => pnn.horizonMembrane(x, { bins: 16 }).dataSync());
    let silent = 0;
    mask.forEach((m, k) => {
      if (m < 0.5) {
        silent++;
        expect(up[k]!).toBeLessThan(1);
      }
    });
    expect(silent).toBeGreaterThan(0);
    expect(silent).toBeLessThan(mask.length);
    tf.dispose([u, v, x]);
    ideal.dispose();
    pnn.dispose();
  });
});

describe('silentPseudoTimes', () => {
  it('keeps fired times and places silent neurons at horizon + scale * width * (1 - u)+', () => {
    const s = {
      times: tf.tensor2d([
        [3.2, 4, 4],
        [4, 3.5, 4],
      ]),
      mask: tf.tensor2d([
        [1, 0, 0],
        [0, 1, 0],
      ]),
    };
    const u = tf.tensor2d([
      [0.1, 0.75, 1.2],
      [-0.5, 0.3, 1],
    ]);
    const t = silentPseudoTimes(s, u, 4, 1, 2).arraySync();
    const want = [
      [3.2, 4.5, 4],
      [7, 3.5, 4],
    ];
    t.forEach((row, b) => row.forEach((v, c) => expect(v).toBeCloseTo(want[b]![c]!, 6)));
    expect(() => silentPseudoTimes(s, u, 4, 1, 0)).toThrow(/scale/);
    tf.dispose([s.times, s.mask, u]);
  });
});

describe('cross-entropy with silent outputs after the horizon', () => {
  // 6-8-3 network; half the output synapses inhibitory enough that some outputs stay silent.
  function net(): SpikingNetwork {
    const config = defaultConfig([6, 8, 3]);
    const rnd = mulberry(11);
    const l0 = denseState(6, 8, 12, { horizon: 2, timeOffset: 0, scale: 0.6 });
    const l1: DenseLayerState = {
      ...denseState(8, 3, 13, { horizon: 3, timeOffset: 1, scale: 0.5 }),
      pI: Float32Array.from({ length: 24 }, (_, k) => (k % 3 === 0 ? 0.2 : 0.9) * rnd()),
    };
    return SpikingNetwork.fromStates(config, [l0, l1]);
  }
  const solver = createSolver('dstd', { bins: 16 });
  const rnd = mulberry(21);
  const B = 8;
  const x = Float32Array.from({ length: B * 6 }, () => rnd());
  const labels = Uint8Array.from({ length: B }, (_, b) => b % 3);

  it('leaves the forward times, the mask and the predictions unchanged; silent outputs get a gradient', () => {
    const n = net();
    const input = n.encode(x, B);
    const run = (silentScale: number) =>
      tf.tidy(() => {
        const r = batchLoss(n, input, labels, solver, resolveLoss({ silentScale }));
        return { times: r.outTimes.arraySync(), mask: r.outMask.arraySync(), ce: r.terms.ce.dataSync()[0]! };
      });
    const off = run(0);
    const on = run(1);
    expect(on.times).toEqual(off.times);
    expect(on.mask).toEqual(off.mask);
    const silent = off.mask.flat().filter((m) => m < 0.5).length;
    expect(silent).toBeGreaterThan(0);
    // Pushing silent competitors past the horizon makes the label win by more, unless a silent label pays more.
    expect(on.ce).not.toBeCloseTo(off.ce, 4);
    // With the clamp, a silent output's pE column has no cross-entropy gradient; with pseudo times it has.
    const ceGrad = (silentScale: number) =>
      tf.tidy(() => {
        const out = n.layers[1] as DenseSpikeLayer;
        const g = tf.variableGrads(() => {
          const r = batchLoss(n, input, labels, solver, resolveLoss({ silentScale, windowWeight: 0, deadWeight: 0 }));
          return r.terms.ce;
        }, [out.pE]).grads;
        return g[out.pE.name]!.arraySync() as number[][];
      });
    // An output silent on every sample: column c.
    const cols = [0, 1, 2].filter((c) => off.mask.every((row) => row[c]! < 0.5));
    expect(cols.length).toBeGreaterThan(0);
    const gOff = ceGrad(0);
    const gOn = ceGrad(1);
    for (const c of cols) {
      expect(gOff.every((row) => row[c] === 0)).toBe(true);
      expect(gOn.some((row) => row[c] !== 0)).toBe(true);
    }
    input.dispose();
    n.dispose();
  });

  it('its gradient matches central finite differences', () => {
    const n = net();
    const input = n.encode(x, B);
    const out = n.layers[1] as DenseSpikeLayer;
    const cfg = resolveLoss({ silentScale: 1, windowWeight: 0, deadWeight: 0, tauSoft: 0.2 });
    const loss = () => tf.tidy(() => batchLoss(n, input, labels, solver, cfg).loss.dataSync()[0]!);
    const { grads, mask } = tf.tidy(() => {
      let m: number[][] = [];
      const g = tf.variableGrads(() => {
        const r = batchLoss(n, input, labels, solver, cfg);
        m = r.outMask.arraySync();
        return r.loss;
      }, [out.pE, out.pI]).grads;
      return { grads: { pE: g[out.pE.name]!.dataSync(), pI: g[out.pI.name]!.dataSync() }, mask: m };
    });
    // The check must cover the surrogate: some label neurons silent.
    const silentLabels = labels.filter((c, b) => mask[b]![c]! < 0.5);
    expect(silentLabels.length).toBeGreaterThan(0);
    const checked: number[] = [];
    for (const v of ['pE', 'pI'] as const) {
      const variable = out[v];
      const base = Float32Array.from(variable.dataSync());
      for (let k = 0; k < base.length; k++) {
        const eps = 1e-3;
        const at = (d: number) => {
          const p = Float32Array.from(base);
          p[k] = base[k]! + d;
          variable.assign(tf.tensor2d(p, variable.shape as [number, number]));
          return loss();
        };
        const fd = (at(eps) - at(-eps)) / (2 * eps);
        variable.assign(tf.tensor2d(base, variable.shape as [number, number]));
        // A crossing switching bins inside the step makes the loss kinky there; skip such entries.
        const fd2 = (at(eps / 2) - at(-eps / 2)) / eps;
        variable.assign(tf.tensor2d(base, variable.shape as [number, number]));
        if (Math.abs(fd - fd2) > 1e-3 + 0.02 * Math.abs(fd)) continue;
        expect(grads[v][k]!).toBeCloseTo(fd, 2);
        checked.push(k);
      }
    }
    expect(checked.length).toBeGreaterThan(30);
    input.dispose();
    n.dispose();
  });

  it('pulls a silent label neuron toward firing and pushes a silent competitor away', () => {
    const n = net();
    const out = n.layers[1] as DenseSpikeLayer;
    const cfg = resolveLoss({ silentScale: 1, windowWeight: 0, deadWeight: 0 });
    const mask = tf.tidy(() => n.forward(n.encode(x, B), solver).spikes[1]!.mask.arraySync());
    let pulled = 0;
    let pushed = 0;
    for (let b = 0; b < B; b++) {
      // One sample at a time: each output column's weights then move one output time only.
      const one = n.encode(x.subarray(b * 6, (b + 1) * 6), 1);
      const g = tf.tidy(() => {
        const r = tf.variableGrads(() => batchLoss(n, one, labels.subarray(b, b + 1), solver, cfg).loss, [out.pE, out.pI]).grads;
        return { pE: r[out.pE.name]!.arraySync() as number[][], pI: r[out.pI.name]!.arraySync() as number[][] };
      });
      for (let c = 0; c < 3; c++) {
        if (mask[b]![c]! > 0.5) continue;
        // u at the horizon rises with any gE (E+ above u) and falls with any gI (E- below u).
        const sign = c === labels[b] ? -1 : 1;
        for (let j = 0; j < 8; j++) {
          expect(sign * g.pE[j]![c]!).toBeGreaterThanOrEqual(0);
          expect(sign * g.pI[j]![c]!).toBeLessThanOrEqual(0);
        }
        if (g.pE.some((row) => row[c] !== 0)) c === labels[b] ? pulled++ : pushed++;
      }
      one.dispose();
    }
    expect(pulled).toBeGreaterThan(0);
    expect(pushed).toBeGreaterThan(0);
    n.dispose();
  });

  it('without silent outputs it is the plain cross-entropy', () => {
    const t = tf.tensor2d([[3.2, 3.5, 3.9]]);
    const s = { times: t, mask: tf.ones([1, 3]) as tf.Tensor2D };
    const u = tf.zeros([1, 3]) as tf.Tensor2D;
    const y = tf.tensor1d([1], 'int32');
    const a = ttfsCrossEntropy(silentPseudoTimes(s, u, 4, 1, 1), y, 0.2).dataSync()[0]!;
    expect(a).toBeCloseTo(ttfsCrossEntropy(t, y, 0.2).dataSync()[0]!, 6);
    tf.dispose([t, s.mask, u, y]);
  });
});
