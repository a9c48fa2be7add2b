import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { conv2dShared } from '../../../models/conv/conv-op.ts';
import { convShape, convToDense, denseToConvGrad, toeplitzIndex, type ConvGeometry } from '../../../models/conv/geometry.ts';
import { initBackend } from '../../../models/tf/backend.ts';
import { mulberry } from '../rng.ts';

beforeAll(async () => {
  await initBackend({ prefer: 'cpu' });
});

/**
 * Independent reference: a direct loop over output positions with TensorFlow's padding rule
 * written out (out = ceil(n / s) for 'same', the smaller half of the padding before).
 */
function directConv(x: Float64Array, batch: number, g: ConvGeometry, k: Float64Array): { y: Float64Array; outH: number; outW: number } {
  const outOf = (n: number, kk: number) => (g.padding === 'same' ? Math.ceil(n / g.stride) : Math.floor((n - kk) / g.stride) + 1);
  const outH = outOf(g.inH, g.kernelH);
  const outW = outOf(g.inW, g.kernelW);
  const padOf = (n: number, kk: number, out: number) => (g.padding === 'same' ? Math.floor(Math.max((out - 1) * g.stride + kk - n, 0) / 2) : 0);
  const pt = padOf(g.inH, g.kernelH, outH);
  const pl = padOf(g.inW, g.kernelW, outW);
  const y = new Float64Array(batch * outH * outW * g.channels);
  for (let b = 0; b < batch; b++)
    for (let oy = 0; oy < outH; oy++)
      for (let ox = 0; ox < outW; ox++)
        for (let o = 0; o < g.channels; o++) {
          let s = 0;
          for (let ky = 0; ky < g.kernelH; ky++)
            for (let kx = 0; kx < g.kernelW; kx++)
              for (let c = 0; c < g.inC; c++) {
                const iy = oy * g.stride + ky - pt;
                const ix = ox * g.stride + kx - pl;
                if (iy < 0 || ix < 0 || iy >= g.inH || ix >= g.inW) continue;
                s += x[((b * g.inH + iy) * g.inW + ix) * g.inC + c]! * k[((ky * g.kernelW + kx) * g.inC + c) * g.channels + o]!;
              }
          y[((b * outH + oy) * outW + ox) * g.channels + o] = s;
        }
  return { y, outH, outW };
}

const CASES: ConvGeometry[] = [
  { inH: 5, inW: 5, inC: 1, channels: 2, kernelH: 3, kernelW: 3, stride: 1, padding: 'same' },
  { inH: 6, inW: 7, inC: 3, channels: 4, kernelH: 3, kernelW: 3, stride: 2, padding: 'same' },
  { inH: 7, inW: 6, inC: 2, channels: 3, kernelH: 2, kernelW: 4, stride: 2, padding: 'same' },
  { inH: 8, inW: 8, inC: 2, channels: 3, kernelH: 3, kernelW: 3, stride: 1, padding: 'valid' },
  { inH: 9, inW: 7, inC: 2, channels: 2, kernelH: 4, kernelW: 3, stride: 3, padding: 'valid' },
  // A kernel smaller than its stride: some input phases are reached by no tap (zero input gradient there).
  { inH: 7, inW: 8, inC: 2, channels: 2, kernelH: 2, kernelW: 1, stride: 3, padding: 'same' },
];

function randomArrays(g: ConvGeometry, batch: number, seed: number): { x: Float64Array; k: Float64Array } {
  const rnd = mulberry(seed);
  const x = Float64Array.from({ length: batch * g.inH * g.inW * g.inC }, () => rnd() - 0.3);
  const k = Float64Array.from({ length: g.kernelH * g.kernelW * g.inC * g.channels }, () => rnd() - 0.5);
  return { x, k };
}

describe('conv geometry and its Toeplitz unroll against a direct loop', () => {
  it.each(CASES)('convToDense times the flattened input equals the direct convolution (%o)', (g) => {
    const batch = 2;
    const { x, k } = randomArrays(g, batch, 11);
    const ref = directConv(x, batch, g, k);
    const s = convShape(g);
    expect([s.outH, s.outW]).toEqual([ref.outH, ref.outW]);
    const W = convToDense(k, g);
    for (let b = 0; b < batch; b++)
      for (let i = 0; i < s.nOut; i++) {
        let v = 0;
        for (let j = 0; j < s.nIn; j++) v += x[b * s.nIn + j]! * W[j * s.nOut + i]!;
        expect(v).toBeCloseTo(ref.y[b * s.nOut + i]!, 12);
      }
    // Every kernel entry is used, and each receptive field holds at most kh kw inC synapses.
    const idx = toeplitzIndex(g);
    const used = new Set(Array.from(idx).filter((e) => e < s.kernelSize));
    expect(used.size).toBe(s.kernelSize);
  });

  it.each(CASES)('conv2dShared equals the direct convolution (%o)', (g) => {
    const batch = 3;
    const { x, k } = randomArrays(g, batch, 12);
    const ref = directConv(x, batch, g, k);
    const y = tf.tidy(() =>
      conv2dShared(
        tf.tensor4d(Float32Array.from(x), [batch, g.inH, g.inW, g.inC]),
        tf.tensor4d(Float32Array.from(k), [g.kernelH, g.kernelW, g.inC, g.channels]),
        g.stride,
        g.padding,
      ).dataSync(),
    );
    expect(y.length).toBe(ref.y.length);
    for (let i = 0; i < y.length; i++) expect(y[i]!).toBeCloseTo(ref.y[i]!, 4);
  });

  it.each(CASES)("conv2dShared's gradients equal tf.conv2d's own (cpu backend has Conv2DBackpropFilter) (%o)", (g) => {
    const batch = 2;
    const { x, k } = randomArrays(g, batch, 13);
    const xt = tf.tensor4d(Float32Array.from(x), [batch, g.inH, g.inW, g.inC]);
    const kt = tf.tensor4d(Float32Array.from(k), [g.kernelH, g.kernelW, g.inC, g.channels]);
    const s = convShape(g);
    const wOut = tf.tensor4d(
      Float32Array.from({ length: batch * s.nOut }, (_, i) => Math.sin(i + 1)),
      [batch, s.outH, s.outW, g.channels],
    );
    const ours = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(conv2dShared(a as tf.Tensor4D, b as tf.Tensor4D, g.stride, g.padding), wOut)))([
      xt,
      kt,
    ]);
    const theirs = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, g.stride, g.padding), wOut)))([xt, kt]);
    for (let q = 0; q < 2; q++) {
      const o = ours[q]!.dataSync();
      const t = theirs[q]!.dataSync();
      expect(o.length).toBe(t.length);
      for (let i = 0; i < o.length; i++) expect(o[i]!).toBeCloseTo(t[i]!, 4);
    }
    const noInput = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.mul(conv2dShared(a as tf.Tensor4D, b as tf.Tensor4D, g.stride, g.padding, false), wOut)),
    )([xt, kt]);
    expect(Math.max(...Array.from(noInput[0]!.dataSync(), Math.abs))).toBe(0);
    expect(Array.from(noInput[1]!.dataSync())).toEqual(Array.from(ours[1]!.dataSync()));
    tf.dispose([xt, kt, wOut, ...ours, ...theirs, ...noInput]);
  });

  it('denseToConvGrad is the adjoint of convToDense (a shared weight sums over its positions)', () => {
    const g = CASES[2]!;
    const s = convShape(g);
    const rnd = mulberry(5);
    const k = Float64Array.from({ length: s.kernelSize }, () => rnd() - 0.5);
    const D = Float64Array.from({ length: s.nIn * s.nOut }, () => rnd() - 0.5);
    const W = convToDense(k, g);
    const back = denseToConvGrad(D, g);
    let lhs = 0;
    let rhs = 0;
    for (let i = 0; i < W.length; i++) lhs += W[i]! * D[i]!;
    for (let i = 0; i < k.length; i++) rhs += k[i]! * back[i]!;
    expect(lhs).toBeCloseTo(rhs, 10);
  });

  it('rejects geometries that do not fit, naming the field', () => {
    expect(() => convShape({ ...CASES[3]!, kernelH: 9 })).toThrow(/kernel height 9 is larger/);
    expect(() => convShape({ ...CASES[0]!, stride: 0 })).toThrow(/stride/);
    expect(() => convToDense(new Float64Array(3), CASES[0]!)).toThrow(/kernel has 3 entries/);
  });
});
