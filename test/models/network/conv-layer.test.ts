import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { convToDense, denseToConvGrad } from '../../../models/conv/geometry.ts';
import { convGradCheck, exactConvForward } from '../../../models/network/conv-grad-check.ts';
import { ConvSpikeLayer, convLayerShape, type ConvLayerState } from '../../../models/network/conv-layer.ts';
import { createSolver } from '../../../models/network/solver.ts';
import { DenseSpikeLayer } from '../../../models/network/layer.ts';
import type { Padding } from '../../../models/conv/geometry.ts';
import { initBackend } from '../../../models/tf/backend.ts';
import { mulberry } from '../rng.ts';

beforeAll(async () => {
  await initBackend({ prefer: 'cpu' });
});

interface Case {
  pool: number;
  stride: number;
  padding: Padding;
  model: 'pnn' | 'ideal';
}

/** A small conv layer whose neurons mostly fire inside [0, 1.5] for inputs in [0, 0.8]. */
function makeCase(c: Case, seed = 4): { s: ConvLayerState; x: Float64Array; batch: number } {
  const g = { inH: 6, inW: 6, inC: 2, channels: 3, kernelH: 3, kernelW: 3, stride: c.stride, padding: c.padding };
  const sh = convLayerShape({ ...g, pool: c.pool });
  const rnd = mulberry(seed);
  const s: ConvLayerState = {
    kind: 'conv',
    ...g,
    pool: c.pool,
    nIn: sh.nIn,
    nOut: sh.nPooled,
    model: c.model,
    ePlus: 4,
    eMinus: -2,
    horizon: 1.5,
    timeOffset: 0,
    scale: c.padding === 'valid' ? 0.3 : 0.25,
    pE: Float32Array.from({ length: sh.kernelSize }, () => 0.2 + rnd()),
    pI: Float32Array.from({ length: sh.kernelSize }, () => (rnd() < 0.4 ? 0.5 * rnd() : 0)),
  };
  const batch = 3;
  const x = Float64Array.from({ length: batch * sh.nIn }, () => (rnd() < 0.2 ? Infinity : 0.8 * rnd()));
  return { s, x, batch };
}

const CASES: Case[] = [
  { pool: 1, stride: 1, padding: 'same', model: 'pnn' },
  { pool: 2, stride: 1, padding: 'same', model: 'pnn' },
  { pool: 1, stride: 2, padding: 'valid', model: 'pnn' },
  { pool: 2, stride: 1, padding: 'same', model: 'ideal' },
];

function forwardTimes(layer: ConvSpikeLayer, x: Float64Array, batch: number, solver: ReturnType<typeof createSolver>): { t: Float32Array; m: Float32Array } {
  return tf.tidy(() => {
    const s = layer.forward(tf.tensor2d(Float32Array.from(x), [batch, layer.nIn]), solver);
    return { t: s.times.dataSync() as Float32Array, m: s.mask.dataSync() as Float32Array };
  });
}

describe('convolutional PNN layer', () => {
  it.each(CASES)('exact solver: equals the float64 reference (unrolled dense layer, pooled by a loop) (%o)', (c) => {
    const { s, x, batch } = makeCase(c);
    const ref = exactConvForward(s, s.pE, s.pI, x, batch);
    const layer = new ConvSpikeLayer(s);
    const { t, m } = forwardTimes(layer, x, batch, createSolver('exact'));
    let fired = 0;
    for (let k = 0; k < ref.length; k++) {
      expect(m[k]).toBe(Number.isFinite(ref[k]!) ? 1 : 0);
      if (Number.isFinite(ref[k]!)) {
        fired++;
        expect(t[k]!).toBeCloseTo(ref[k]!, 5);
      } else expect(t[k]).toBe(s.horizon);
    }
    // The case is informative: most neurons fire, some do not.
    expect(fired).toBeGreaterThan(ref.length / 2);
    layer.dispose();
  });

  it.each(CASES)('exact solver: kernel gradients (shared weights, pooling) match finite differences, max rel err < 1e-3 (%o)', (c) => {
    const { s, x, batch } = makeCase(c);
    const r = convGradCheck(s, x, batch, createSolver('exact'));
    expect(r.fired).toBeGreaterThan(10);
    expect(r.maxRelErr).toBeLessThan(1e-3);
  });

  it.each(CASES)('DSTD: the conv2d drives give the same times and kernel gradients as DSTD on the unrolled dense layer (%o)', (c) => {
    const { s, x, batch } = makeCase(c);
    const solver = createSolver('dstd', { bins: 16 });
    const layer = new ConvSpikeLayer({ ...s, pool: 1, nOut: convLayerShape({ ...s, pool: 1 }).nOut });
    const sh = layer.shape;
    const w = Float32Array.from({ length: batch * sh.nOut }, (_, k) => Math.cos(k));
    const xt = tf.tensor2d(Float32Array.from(x), [batch, s.nIn]);
    const wt = tf.tensor2d(w, [batch, sh.nOut]);
    const conv = tf.tidy(() => {
      const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(layer.forward(xt, solver).times, wt)) as tf.Scalar, [layer.pE, layer.pI]);
      return {
        loss: value.dataSync()[0]!,
        gE: grads[layer.pE.name]!.dataSync(),
        gI: grads[layer.pI.name]!.dataSync(),
        t: layer.forward(xt, solver).times.dataSync(),
      };
    });
    // Reference: the same layer unrolled to dense gE, gI and DSTD's dense path (binFractions + matMul).
    const kE = s.scale / s.ePlus;
    const kI = s.scale / -s.eMinus;
    const unrolled = (p: Float32Array, k: number) =>
      tf.variable(
        tf.tensor2d(
          Float32Array.from(
            convToDense(
              Float64Array.from(p, (v) => v * k),
              s,
            ),
          ),
          [s.nIn, sh.nOut],
        ),
      );
    const gE = unrolled(s.pE, kE);
    const gI = unrolled(s.pI, kI);
    const dense = tf.tidy(() => {
      const f = () => solver.dense({ model: s.model, gE, gI, ePlus: s.ePlus, eMinus: s.eMinus, horizon: s.horizon }, xt).times;
      const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(f(), wt)) as tf.Scalar, [gE, gI]);
      return { loss: value.dataSync()[0]!, gE: grads[gE.name]!.dataSync(), gI: grads[gI.name]!.dataSync(), t: f().dataSync() };
    });
    for (let k = 0; k < conv.t.length; k++) expect(conv.t[k]!).toBeCloseTo(dense.t[k]!, 4);
    expect(conv.loss).toBeCloseTo(dense.loss, 3);
    // dL/dpE = sum over positions of dL/dgE times dgE/dpE = scale / ePlus.
    const refE = denseToConvGrad(dense.gE, s).map((v) => v * kE);
    const refI = denseToConvGrad(dense.gI, s).map((v) => v * kI);
    const scaleOf = Math.max(...Array.from(refE, Math.abs), ...Array.from(refI, Math.abs));
    for (let k = 0; k < refE.length; k++) {
      expect(Math.abs(conv.gE[k]! - refE[k]!)).toBeLessThan(1e-3 * scaleOf);
      expect(Math.abs(conv.gI[k]! - refI[k]!)).toBeLessThan(1e-3 * scaleOf);
    }
    tf.dispose([xt, wt, gE, gI]);
    layer.dispose();
  });

  it.each(CASES)('DSTD (M = 64) and Euler (K = 512) times approach the exact solver (%o)', (c) => {
    const { s, x, batch } = makeCase(c);
    const ref = exactConvForward(s, s.pE, s.pI, x, batch);
    const layer = new ConvSpikeLayer(s);
    for (const [solver, tol] of [
      [createSolver('dstd', { bins: 64 }), 2e-3],
      [createSolver('euler', { eulerSteps: 512 }), 4e-3],
    ] as const) {
      const { t, m } = forwardTimes(layer, x, batch, solver);
      let err = 0;
      let n = 0;
      for (let k = 0; k < ref.length; k++) {
        if (Number.isFinite(ref[k]!) && m[k] === 1) {
          err += Math.abs(t[k]! - ref[k]!);
          n++;
        }
      }
      expect(n).toBeGreaterThan(ref.filter(Number.isFinite).length * 0.95);
      expect(err / n / s.horizon).toBeLessThan(tol);
    }
    layer.dispose();
  });

  it('DSTD kernel gradients agree with finite differences of the exact solver in aggregate (M = 16: relative L2 < 5 %)', () => {
    // Per entry they are off where an input arrives in a neuron's crossing bin (docs/MODEL.md §5.5).
    for (const c of CASES) {
      const { s, x, batch } = makeCase(c);
      const r = convGradCheck(s, x, batch, createSolver('dstd', { bins: 16 }));
      expect(r.relL2).toBeLessThan(0.05);
    }
  });

  it('restPotential and horizonMembrane: the pooled neuron closest to firing; silent neurons end below threshold', () => {
    const { s, x, batch } = makeCase({ pool: 2, stride: 1, padding: 'same', model: 'pnn' });
    const layer = new ConvSpikeLayer(s);
    const xt = tf.tensor2d(Float32Array.from(x), [batch, s.nIn]);
    const rest = tf.tidy(() => layer.restPotential(xt).dataSync());
    // Independent: the unrolled rest weights, sum_j w_ij (horizon - t_j)+, max over each pool window.
    const sh = layer.shape;
    const W = convToDense(
      Float64Array.from(s.pE, (v, k) => s.scale * (v - s.pI[k]!)),
      s,
    );
    for (let b = 0; b < batch; b++)
      for (let py = 0; py < sh.poolH; py++)
        for (let px = 0; px < sh.poolW; px++)
          for (let o = 0; o < s.channels; o++) {
            let best = -Infinity;
            for (let dy = 0; dy < 2; dy++)
              for (let dx = 0; dx < 2; dx++) {
                const i = ((py * 2 + dy) * sh.outW + px * 2 + dx) * s.channels + o;
                let v = 0;
                for (let j = 0; j < s.nIn; j++) v += W[j * sh.nOut + i]! * Math.max(s.horizon - Math.min(x[b * s.nIn + j]!, s.horizon), 0);
                best = Math.max(best, v);
              }
            expect(rest[((b * sh.poolH + py) * sh.poolW + px) * s.channels + o]!).toBeCloseTo(best, 4);
          }
    const { m } = forwardTimes(layer, x, batch, createSolver('dstd', { bins: 16 }));
    const u = tf.tidy(() => layer.horizonMembrane(xt, { bins: 16 }).dataSync());
    for (let k = 0; k < u.length; k++) {
      if (m[k] === 0) expect(u[k]!).toBeLessThan(1);
      else expect(u[k]!).toBeGreaterThanOrEqual(1 - 1e-4);
    }
    xt.dispose();
    layer.dispose();
  });

  it('rejects states that do not match their geometry, naming the problem', () => {
    const { s } = makeCase(CASES[1]!);
    expect(() => new ConvSpikeLayer({ ...s, nOut: s.nOut + 1 })).toThrow(/do not match its geometry/);
    expect(() => new ConvSpikeLayer({ ...s, pE: new Float32Array(3) })).toThrow(/pE must be a Float32Array/);
    expect(() => new ConvSpikeLayer({ ...s, pool: 7 })).toThrow(/pool size 7 is larger/);
    const layer = new ConvSpikeLayer(s);
    expect(() => layer.toPnnLayer()).toThrow(/earliest-spike pooling has no crossbar form/);
    expect(() => layer.toUnrolledState()).toThrow(/earliest-spike pooling has no crossbar form/);
    expect(layer.toUnrolledLayer().nOut).toBe(layer.shape.nOut);
    layer.dispose();
  });

  it('an unpooled layer unrolls to the dense state whose dense layer computes the same spikes', () => {
    const { s, x, batch } = makeCase(CASES[2]!);
    const conv = new ConvSpikeLayer(s);
    const st = conv.toUnrolledState();
    expect([st.kind, st.nIn, st.nOut, st.scale]).toEqual(['dense', conv.nIn, conv.shape.nOut, conv.scale]);
    const dense = new DenseSpikeLayer(st);
    const exact = createSolver('exact');
    const a = forwardTimes(conv, x, batch, exact);
    const b = tf.tidy(() => {
      const o = dense.forward(tf.tensor2d(Float32Array.from(x), [batch, dense.nIn]), exact);
      return { t: o.times.dataSync() as Float32Array, m: o.mask.dataSync() as Float32Array };
    });
    expect(Array.from(b.m)).toEqual(Array.from(a.m));
    for (let k = 0; k < a.t.length; k++) if (a.m[k]) expect(b.t[k]!).toBeCloseTo(a.t[k]!, 5);
    conv.dispose();
    dense.dispose();
  });
});
