import * as tf from '@tensorflow/tfjs-core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DenseSpikeLayer, type DenseLayerState } from '../../../models/network/layer.ts';
import { defaultConfig, earliestSpike, SpikingNetwork, type NetworkConfig } from '../../../models/network/network.ts';
import { createSolver, type SpikeSolver } from '../../../models/network/solver.ts';
import { exactNetworkForward } from '../../../models/solvers/exact.ts';
import { crossEntropyOf } from '../../../models/training/losses.ts';
import { batchLoss, resolveLoss } from '../../../models/training/trainer.ts';
import { initBackend } from '../../../models/tf/backend.ts';
import { mulberry } from '../rng.ts';

beforeAll(async () => {
  await initBackend({ prefer: 'cpu' });
});

const made: SpikingNetwork[] = [];
afterEach(() => {
  made.splice(0).forEach((n) => n.dispose());
});

/** A 5-4-3 network whose neurons mostly fire in their windows (weights mostly excitatory). */
function tinyNet(model: 'pnn' | 'ideal', seed = 3, config: Partial<NetworkConfig> = {}): SpikingNetwork {
  const cfg = defaultConfig([5, 4, 3], { model, ...config });
  const rnd = mulberry(seed);
  const states: DenseLayerState[] = [0, 1].map((l) => {
    const nIn = cfg.sizes[l]!;
    const nOut = cfg.sizes[l + 1]!;
    const pE = Float32Array.from({ length: nIn * nOut }, () => 0.4 + rnd());
    const pI = Float32Array.from({ length: nIn * nOut }, () => (rnd() < 0.4 ? 0.6 * rnd() : 0));
    return {
      kind: 'dense',
      nIn,
      nOut,
      model,
      ePlus: cfg.ePlus,
      eMinus: cfg.eMinus,
      horizon: cfg.horizons[l]!,
      timeOffset: 0,
      scale: l === 0 ? 0.45 : 0.55,
      pE,
      pI,
    };
  });
  const net = SpikingNetwork.fromStates(cfg, states);
  made.push(net);
  return net;
}

function inputs(seed: number, n: number, f: number): Float32Array {
  const rnd = mulberry(seed);
  return Float32Array.from({ length: n * f }, () => (rnd() < 0.1 ? 0 : 0.2 + 0.8 * rnd()));
}

const cfgCE = resolveLoss({ windowWeight: 0, deadWeight: 0, tauSoft: 0.2 });

function autodiff(net: SpikingNetwork, x: Float32Array, y: Uint8Array, solver: SpikeSolver): Float32Array[] {
  return tf.tidy(() => {
    const t = net.encode(x, y.length);
    const { grads } = tf.variableGrads(() => batchLoss(net, t, y, solver, cfgCE).loss, net.trainableVariables());
    return net.trainableVariables().map((v) => grads[v.name]!.dataSync() as Float32Array);
  });
}

/** Central difference of `loss` in element k of variable v (whose values are `base`); v is restored. */
function centralDifference(v: tf.Variable, base: Float32Array, k: number, eps: number, loss: () => number): number {
  const at = (d: number) => {
    const p = Float32Array.from(base);
    p[k]! += d;
    v.assign(tf.tensor(p, v.shape));
    return loss();
  };
  const fd = (at(eps) - at(-eps)) / (2 * eps);
  v.assign(tf.tensor(base, v.shape));
  return fd;
}

describe('network gradients against finite differences', () => {
  it('exact solver: autodiff through every layer equals central differences of the float64 forward pass', () => {
    const net = tinyNet('pnn');
    const n = 6;
    const x = inputs(1, n, 5);
    const y = Uint8Array.from({ length: n }, (_, k) => k % 3);
    const times64 = Float64Array.from(x, (v) => (v <= 0 ? Infinity : 1 - v));
    // Independent reference: the exact solver's float64 forward pass and the loss in float64.
    const loss64 = (): number => {
      const out = exactNetworkForward(net.toPnnLayers(), times64, n).at(-1)!;
      const h = net.config.horizons.at(-1)!;
      return crossEntropyOf(
        Array.from(out, (t) => Math.min(t, h)),
        y,
        n,
        3,
        cfgCE.tauSoft,
      );
    };
    const g = autodiff(net, x, y, createSolver('exact'));
    const vars = net.trainableVariables();
    let compared = 0;
    vars.forEach((v, vi) => {
      const base = Float32Array.from(v.dataSync());
      for (let k = 0; k < base.length; k += 2) {
        if (base[k] === 0) continue; // projected parameters sit on the constraint
        const eps = 1e-3 * base[k]!;
        const fd = centralDifference(v, base, k, eps, loss64);
        expect(g[vi]![k]).toBeCloseTo(fd, Math.abs(fd) > 1 ? 1 : 2);
        compared++;
      }
    });
    expect(compared).toBeGreaterThan(20);
    expect(g.some((a) => a.some((v) => Math.abs(v) > 1e-3))).toBe(true);
  });

  for (const model of ['pnn', 'ideal'] as const) {
    it(`DSTD (${model}): autodiff equals central differences of the DSTD forward pass`, () => {
      const net = tinyNet(model, 5);
      const n = 6;
      const x = inputs(2, n, 5);
      const y = Uint8Array.from({ length: n }, (_, k) => (k + 1) % 3);
      const solver = createSolver('dstd', { bins: 32 });
      const lossAt = () => tf.tidy(() => batchLoss(net, net.encode(x, n), y, solver, cfgCE).loss.dataSync()[0]!);
      const g = autodiff(net, x, y, solver);
      const vars = net.trainableVariables();
      let compared = 0;
      vars.forEach((v, vi) => {
        const base = Float32Array.from(v.dataSync());
        for (let k = 1; k < base.length; k += 3) {
          if (base[k] === 0) continue;
          const eps = 2e-3 * base[k]!;
          const fd = centralDifference(v, base, k, eps, lossAt);
          expect(Math.abs(g[vi]![k]! - fd)).toBeLessThan(0.03 * Math.abs(fd) + 5e-3);
          compared++;
        }
      });
      expect(compared).toBeGreaterThan(10);
    });
  }

  it('DSTD gradients approach the exact solver gradients as the grid refines', () => {
    const net = tinyNet('pnn', 8);
    const n = 8;
    const x = inputs(4, n, 5);
    const y = Uint8Array.from({ length: n }, (_, k) => k % 3);
    const exact = autodiff(net, x, y, createSolver('exact')).flatMap((a) => Array.from(a));
    const err = (M: number) => {
      const d = autodiff(net, x, y, createSolver('dstd', { bins: M })).flatMap((a) => Array.from(a));
      return Math.sqrt(d.reduce((s, v, k) => s + (v - exact[k]!) ** 2, 0) / exact.reduce((s, v) => s + v * v, 0));
    };
    const coarse = err(8);
    const fine = err(128);
    expect(fine).toBeLessThan(0.05);
    expect(fine).toBeLessThan(coarse);
  });
});

describe('DenseSpikeLayer', () => {
  it('event-driven drives and the solver dense path agree (times and gradients)', () => {
    const a = tinyNet('pnn', 9);
    const states = a.states();
    const b = SpikingNetwork.fromStates(a.config, states, 'solver');
    made.push(b);
    const n = 5;
    const x = inputs(9, n, 5);
    const y = Uint8Array.from({ length: n }, (_, k) => k % 3);
    const solver = createSolver('dstd', { bins: 16 });
    const ta = tf.tidy(() => a.forward(a.encode(x, n), solver).spikes.map((s) => Array.from(s.times.dataSync())));
    const tb = tf.tidy(() => b.forward(b.encode(x, n), solver).spikes.map((s) => Array.from(s.times.dataSync())));
    ta.flat().forEach((v, k) => expect(v).toBeCloseTo(tb.flat()[k]!, 4));
    const ga = autodiff(a, x, y, solver).flatMap((g) => Array.from(g));
    const gb = autodiff(b, x, y, solver).flatMap((g) => Array.from(g));
    ga.forEach((v, k) => expect(v).toBeCloseTo(gb[k]!, 3));
  });

  it('a grid offset changes nothing while every input arrives after it (exact solver)', () => {
    const net = tinyNet('pnn', 12, { shiftGrids: false });
    const s = net.states()[1]!;
    const plain = new DenseSpikeLayer({ ...s, timeOffset: 0 });
    const shifted = new DenseSpikeLayer({ ...s, timeOffset: 0.9 });
    const x = tf.tensor2d(
      Float32Array.from({ length: 4 * 4 }, (_, k) => 1 + 0.07 * k),
      [4, 4],
    );
    const exact = createSolver('exact');
    const t0 = tf.tidy(() => plain.forward(x, exact).times.dataSync());
    const t1 = tf.tidy(() => shifted.forward(x, exact).times.dataSync());
    t0.forEach((v, k) => expect(t1[k]).toBeCloseTo(v, 5));
    tf.dispose([x]);
    plain.dispose();
    shifted.dispose();
  });

  it('projection restores non-negative conductances; restPotential is sum w (h - t)+', () => {
    const net = tinyNet('pnn', 2);
    const layer = net.layers[0] as DenseSpikeLayer;
    layer.pE.assign(tf.sub(layer.pE, 0.9));
    expect(Math.min(...layer.pE.dataSync())).toBeLessThan(0);
    layer.project();
    expect(Math.min(...layer.pE.dataSync())).toBe(0);
    const t = [0.1, Infinity, 0.5, 2.5, 1.2];
    const v = tf.tidy(() => layer.restPotential(tf.tensor2d(t, [1, 5])).dataSync());
    const pE = layer.pE.dataSync();
    const pI = layer.pI.dataSync();
    for (let i = 0; i < 4; i++) {
      let ref = 0;
      t.forEach((tj, j) => (ref += layer.scale * (pE[j * 4 + i]! - pI[j * 4 + i]!) * Math.max(0, layer.horizon - tj)));
      expect(v[i]).toBeCloseTo(ref, 4);
    }
  });

  it('rejects invalid states with a message naming the field', () => {
    const s = tinyNet('pnn').states()[0]!;
    expect(() => new DenseSpikeLayer({ ...s, scale: -1 })).toThrow(/scale/);
    expect(() => new DenseSpikeLayer({ ...s, timeOffset: s.horizon })).toThrow(/timeOffset/);
    expect(() => new DenseSpikeLayer({ ...s, pE: s.pE.map(() => -1) })).toThrow(/pE\[0\] = -1/);
    expect(() => new DenseSpikeLayer({ ...s, eMinus: 1 })).toThrow(/eMinus/);
  });
});

describe('SpikingNetwork', () => {
  it('predicts the earliest fired output and -1 when every output is silent', () => {
    expect(Array.from(earliestSpike([0.5, 0.2, 0.9, 3, 3, 3], [1, 1, 1, 0, 0, 0], 2, 3))).toEqual([1, -1]);
    expect(Array.from(earliestSpike([0.5, 0.2, 0.9], [1, 0, 1], 1, 3))).toEqual([0]);
  });

  it('withModel holds each synapse drive at rest and switches the dynamics', () => {
    const ideal = tinyNet('ideal', 4);
    const pnn = ideal.withModel({ model: 'pnn' });
    made.push(pnn);
    const a = ideal.toPnnLayers()[0]!;
    const b = pnn.toPnnLayers()[0]!;
    expect(b.model).toBe('pnn');
    for (let k = 0; k < a.gE.length; k++) expect(b.gE[k]! * b.ePlus - b.gI[k]! * -b.eMinus).toBeCloseTo(a.gE[k]! * a.ePlus - a.gI[k]! * -a.eMinus, 6);
    const x = inputs(7, 4, 5);
    const exact = createSolver('exact');
    // The PNN drive weakens as u rises: nothing fires earlier than in the ideal model.
    const ti = ideal.outputs(x, 4, exact);
    const tp = pnn.outputs(x, 4, exact);
    ti.times.forEach((t, k) => expect(tp.times[k]! + 1e-5).toBeGreaterThanOrEqual(t));
  });

  it('withNeuronLevels gives the dense layers fixed firing levels and delays; a later, higher level fires later', () => {
    const net = tinyNet('pnn', 4);
    const n = net.layers[0]!.nOut;
    const raised = net.withNeuronLevels([{ thresholdScale: new Float32Array(n).fill(1.05), delay: new Float32Array(n).fill(0.01) }]);
    const same = net.withNeuronLevels([undefined]);
    made.push(raised, same);
    expect(raised.states()[0]!.thresholdScale).toEqual(new Float32Array(n).fill(1.05));
    expect(raised.states()[0]!.pE).toEqual(net.states()[0]!.pE);
    expect(same.states()).toEqual(net.states());
    const x = inputs(7, 4, 5);
    const exact = createSolver('exact');
    const first = (m: SpikingNetwork) =>
      tf.tidy(() => {
        const s = m.forward(m.encode(x, 4), exact).spikes[0]!;
        return { times: s.times.dataSync(), mask: s.mask.dataSync() };
      });
    const a = first(net);
    const b = first(raised);
    let compared = 0;
    a.times.forEach((t, k) => {
      if (a.mask[k]! > 0 && b.mask[k]! > 0) {
        expect(b.times[k]!).toBeGreaterThan(t + 0.01);
        compared++;
      }
    });
    expect(compared).toBeGreaterThan(4);
  });

  it('biasSpike: a reference input spiking at a fixed time after the data features', () => {
    const cfg = defaultConfig([3, 4, 3], { biasSpike: 0.25 });
    const plain = tinyNet('pnn', 5);
    const s = plain.states().map((st, l) => (l === 0 ? { ...st, nIn: 3, pE: st.pE.subarray(0, 12), pI: st.pI.subarray(0, 12) } : st));
    const net = SpikingNetwork.fromStates(cfg, s);
    made.push(net);
    expect([net.inputs, net.features]).toEqual([3, 2]);
    const t = tf.tidy(() => Array.from(net.encode(Float32Array.of(0.5, 0, 1, 0.2), 2).dataSync()));
    expect(t).toEqual([0.5, Infinity, 0.25, 0, 0.800000011920929, 0.25]);
    expect(() => net.encode(Float32Array.of(0.5, 0, 1), 2)).toThrow(/2 rows of 2 values/);
    // predict and outputs take rows of `features` values; the reference spike is added inside.
    const x = Float32Array.of(0.9, 0.1, 0.3, 0.8);
    const ref = exactNetworkForward(net.toPnnLayers(), Float64Array.of(0.1, 0.9, 0.25, 0.7, 0.2, 0.25), 2).at(-1)!;
    const o = net.outputs(x, 2, createSolver('exact'));
    ref.forEach((r, k) => expect(o.times[k]).toBeCloseTo(Math.min(r, 3), 5));
    expect(() => defaultConfig([3, 2], { biasSpike: 2 })).toThrow(/biasSpike/);
    expect(() => defaultConfig([1, 2], { biasSpike: 0 })).toThrow(/sizes.0/);
  });

  it("biasReplaces: the reference spike takes the place of one data feature, the width stays the data's", () => {
    const cfg = defaultConfig([3, 4, 3], { biasSpike: 0.25, biasReplaces: 1 });
    const s = tinyNet('pnn', 5)
      .states()
      .map((st, l) => (l === 0 ? { ...st, nIn: 3, pE: st.pE.subarray(0, 12), pI: st.pI.subarray(0, 12) } : st));
    const net = SpikingNetwork.fromStates(cfg, s);
    made.push(net);
    expect([net.inputs, net.features, net.referenceInput]).toEqual([3, 3, 1]);
    // Feature 1 is dropped (0.7 and 0 alike), the reference sits there in every row.
    const t = tf.tidy(() => Array.from(net.encode(Float32Array.of(0.5, 0.7, 1, 0.2, 0, 0), 2).dataSync()));
    expect(t).toEqual([0.5, 0.25, 0, 0.800000011920929, 0.25, Infinity]);
    const x = Float32Array.of(0.9, 0.3, 0.1, 0.3, 0.8, 0.6);
    const ref = exactNetworkForward(net.toPnnLayers(), Float64Array.of(0.1, 0.25, 0.9, 0.7, 0.25, 0.4), 2).at(-1)!;
    const o = net.outputs(x, 2, createSolver('exact'));
    ref.forEach((r, k) => expect(o.times[k]).toBeCloseTo(Math.min(r, 3), 5));
    expect(() => defaultConfig([3, 2], { biasReplaces: 0 })).toThrow(/biasReplaces.*needs biasSpike/);
    expect(() => defaultConfig([3, 2], { biasSpike: 0, biasReplaces: 3 })).toThrow(/biasReplaces = 3.*0\.\.2/);
    expect(defaultConfig([3, 2], { biasSpike: 0 }).biasReplaces).toBeUndefined();
  });

  it('validates its configuration, naming the field', () => {
    expect(() => defaultConfig([4, 3], { horizons: [0.5] })).toThrow(/horizons.0/);
    expect(() => defaultConfig([4, 3, 2], { horizons: [2, 2] })).toThrow(/horizons.1/);
    expect(() => defaultConfig([4], {})).toThrow(/sizes/);
  });
});
