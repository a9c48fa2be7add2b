/**
 * A conv layer's exact float64 reference and the finite-difference check of its gradients
 * (issue #31: "gradients checked against finite differences of the exact solver"), shared by the
 * tests (test/models/network/conv-layer.test.ts) and `npm run bench:conv`.
 *
 * The reference is independent of the tensor code: the kernels unrolled by convToDense, the exact
 * event-driven solver (docs/MODEL.md §5.1) on that dense layer in float64, and the earliest spike
 * of each pool window taken by a loop.
 */

import * as tf from '@tensorflow/tfjs-core';
import { makeLayer } from '../neuron/layer.ts';
import { exactForward } from '../solvers/exact.ts';
import { ConvSpikeLayer, convLayerShape, type ConvLayerState } from './conv-layer.ts';
import type { SpikeSolver } from './solver.ts';
import { convToDense } from '../conv/geometry.ts';
import { conductancesOf } from './conductance-units.ts';

/** Pooled output times [batch, nOut] (+Infinity = silent) of a conv layer with kernels pE, pI (HWIO, float64). */
export function exactConvForward(s: ConvLayerState, pE: ArrayLike<number>, pI: ArrayLike<number>, x: Float64Array, batch: number): Float64Array {
  const shape = convLayerShape(s);
  const g = conductancesOf(s, pE, pI);
  const layer = makeLayer({
    nIn: shape.nIn,
    nOut: shape.nOut,
    model: s.model,
    gE: convToDense(g.gE, s),
    gI: convToDense(g.gI, s),
    ePlus: s.ePlus,
    eMinus: s.eMinus,
    horizon: s.horizon,
  });
  const t = exactForward(layer, x, batch).times;
  for (let k = 0; k < t.length; k++) if (!(t[k]! <= s.horizon)) t[k] = Infinity;
  if (s.pool === 1) return t;
  const { outH, outW, poolH, poolW } = shape;
  const c = s.channels;
  const out = new Float64Array(batch * shape.nPooled).fill(Infinity);
  for (let b = 0; b < batch; b++)
    for (let py = 0; py < poolH; py++)
      for (let px = 0; px < poolW; px++)
        for (let o = 0; o < c; o++) {
          let m = Infinity;
          for (let dy = 0; dy < s.pool; dy++)
            for (let dx = 0; dx < s.pool; dx++) m = Math.min(m, t[((b * outH + py * s.pool + dy) * outW + px * s.pool + dx) * c + o]!);
          out[((b * poolH + py) * poolW + px) * c + o] = m;
        }
  return out;
}

export interface ConvGradCheck {
  /** dL/dpE then dL/dpI (kernel entries), from the layer's autodiff with `solver`. */
  autodiff: Float64Array;
  /** The same by central differences of the exact float64 forward pass. */
  finiteDiff: Float64Array;
  /** max_i |a_i - f_i| / (|f_i| + 0.01 max_j |f_j|): relative, with a floor for near-zero entries. */
  maxRelErr: number;
  /** |a - f| / |f| over all entries (Euclidean norms). */
  relL2: number;
  /** Outputs that fired in the reference (the loss's terms). */
  fired: number;
}

/**
 * Gradient of L = sum_k w_k t_k over the outputs that fire in the exact reference (w_k fixed,
 * in [-0.5, 0.5), from `weightSeed`), with respect to every kernel entry of pE and pI: the layer's
 * autodiff with `solver` against central differences (step h relative to each entry, floor 1e-3;
 * one-sided at a zero entry)
 * of exactConvForward. Input times x [batch, nIn] (+Infinity = silent).
 */
export function convGradCheck(s: ConvLayerState, x: Float64Array, batch: number, solver: SpikeSolver, h = 1e-6): ConvGradCheck {
  const p0E = Float64Array.from(s.pE);
  const p0I = Float64Array.from(s.pI);
  const ref = exactConvForward(s, p0E, p0I, x, batch);
  const w = Float64Array.from(ref, (t, k) => (Number.isFinite(t) ? ((k * 7919) % 1000) / 1000 - 0.5 : 0));
  const loss = (pE: Float64Array, pI: Float64Array): number => {
    const t = exactConvForward(s, pE, pI, x, batch);
    let sum = 0;
    for (let k = 0; k < t.length; k++) if (w[k] !== 0) sum += w[k]! * t[k]!;
    return sum;
  };
  const n = p0E.length;
  const finiteDiff = new Float64Array(2 * n);
  for (const [which, p] of [
    [0, p0E],
    [1, p0I],
  ] as const) {
    for (let i = 0; i < n; i++) {
      const v = p[i]!;
      const step = h * Math.max(Math.abs(v), 1e-3);
      p[i] = v + step;
      const up = loss(p0E, p0I);
      // A conductance cannot go negative: at (or next to) zero, one-sided from the entry itself.
      const below = v - step >= 0;
      p[i] = below ? v - step : v;
      const down = loss(p0E, p0I);
      p[i] = v;
      finiteDiff[which * n + i] = (up - down) / (below ? 2 * step : step);
    }
  }
  const layer = new ConvSpikeLayer(s);
  const autodiff = new Float64Array(2 * n);
  try {
    tf.tidy(() => {
      const xt = tf.tensor2d(Float32Array.from(x), [batch, s.nIn]);
      const wt = tf.tensor2d(Float32Array.from(w), [batch, s.nOut]);
      const { grads } = tf.variableGrads(() => tf.sum(tf.mul(layer.forward(xt, solver).times, wt)) as tf.Scalar, [layer.pE, layer.pI]);
      autodiff.set(grads[layer.pE.name]!.dataSync(), 0);
      autodiff.set(grads[layer.pI.name]!.dataSync(), n);
    });
  } finally {
    layer.dispose();
  }
  let fMax = 0;
  for (const f of finiteDiff) fMax = Math.max(fMax, Math.abs(f));
  let maxRelErr = 0;
  let num = 0;
  let den = 0;
  for (let i = 0; i < 2 * n; i++) {
    const d = Math.abs(autodiff[i]! - finiteDiff[i]!);
    maxRelErr = Math.max(maxRelErr, d / (Math.abs(finiteDiff[i]!) + 0.01 * fMax || 1));
    num += d * d;
    den += finiteDiff[i]! ** 2;
  }
  return { autodiff, finiteDiff, maxRelErr, relL2: Math.sqrt(num / (den || 1)), fired: w.filter((v) => v !== 0).length };
}
