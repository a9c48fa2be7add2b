/**
 * The conv path on the wasm backend (what training uses), where kernels differ from the cpu
 * backend's: its MaxPoolGrad drops windows whose values are all negative, and it has no
 * Conv2DBackpropFilter. The other conv tests run on the cpu backend.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { conv2dShared } from '../../../models/conv/conv-op.ts';
import { minPool } from '../../../models/conv/min-pool.ts';
import { initBackend } from '../../../models/tf/backend.ts';

let backend = '';
beforeAll(async () => {
  backend = await initBackend({ prefer: 'wasm' });
});

describe('conv building blocks on the wasm backend', () => {
  it('runs on wasm', () => {
    expect(backend).toBe('wasm');
  });

  it('earliest-spike pooling sends the gradient to each window argmin, also in windows of negated (all-negative) values', () => {
    const x = tf.tensor4d([1, 2, 3, 0.5, 5, 6, 7, 8], [1, 2, 4, 1]);
    expect(Array.from(minPool(x, 2).dataSync())).toEqual([1, 0.5]);
    const g = tf
      .grad((a: tf.Tensor) => tf.sum(minPool(a as tf.Tensor4D, 2)))(x)
      .dataSync();
    expect(Array.from(g, (v) => v + 0)).toEqual([1, 0, 0, 1, 0, 0, 0, 0]);
    tf.dispose([x]);
  });

  it('conv2dShared kernel and input gradients equal finite differences (no Conv2DBackpropFilter needed)', () => {
    const x = tf.tensor4d(
      Float32Array.from({ length: 2 * 5 * 5 * 2 }, (_, i) => Math.sin(i)),
      [2, 5, 5, 2],
    );
    const w = tf.tensor4d(
      Float32Array.from({ length: 3 * 3 * 2 * 3 }, (_, i) => Math.cos(i)),
      [3, 3, 2, 3],
    );
    const wo = tf.tensor4d(
      Float32Array.from({ length: 2 * 3 * 3 * 3 }, (_, i) => Math.sin(2 * i + 1)),
      [2, 3, 3, 3],
    );
    const f = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(conv2dShared(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'same'), wo));
    const [gx, gw] = tf.grads(f)([x, w]);
    const wData = w.dataSync();
    const gwData = gw!.dataSync();
    const h = 1e-2;
    for (const k of [0, 7, 20, 53]) {
      const up = Float32Array.from(wData);
      const dn = Float32Array.from(wData);
      up[k]! += h;
      dn[k]! -= h;
      const fd = (f(x, tf.tensor4d(up, w.shape)).dataSync()[0]! - f(x, tf.tensor4d(dn, w.shape)).dataSync()[0]!) / (2 * h);
      expect(gwData[k]!).toBeCloseTo(fd, 2);
    }
    const xData = x.dataSync();
    const gxData = gx!.dataSync();
    for (const k of [0, 13, 49, 99]) {
      const up = Float32Array.from(xData);
      const dn = Float32Array.from(xData);
      up[k]! += h;
      dn[k]! -= h;
      const fd = (f(tf.tensor4d(up, x.shape), w).dataSync()[0]! - f(tf.tensor4d(dn, x.shape), w).dataSync()[0]!) / (2 * h);
      expect(gxData[k]!).toBeCloseTo(fd, 2);
    }
  });

  it.each([
    { h: 14, w: 14, c: 8, k: 3, co: 16, stride: 2, padding: 'same' as const },
    { h: 9, w: 7, c: 2, k: 4, co: 3, stride: 3, padding: 'valid' as const },
    { h: 7, w: 8, c: 2, k: 2, co: 2, stride: 3, padding: 'same' as const },
    { h: 28, w: 28, c: 1, k: 5, co: 8, stride: 2, padding: 'same' as const },
  ])('conv2dShared input gradient (a convolution per phase, explicit padding) equals the wasm Conv2DBackpropInput (%o)', (g) => {
    const n = 3;
    const x = tf.tensor4d(
      Float32Array.from({ length: n * g.h * g.w * g.c }, (_, i) => Math.sin(0.7 * i)),
      [n, g.h, g.w, g.c],
    );
    const w = tf.tensor4d(
      Float32Array.from({ length: g.k * g.k * g.c * g.co }, (_, i) => Math.cos(1.3 * i)),
      [g.k, g.k, g.c, g.co],
    );
    const y = tf.conv2d(x, w, g.stride, g.padding);
    const dy = tf.tensor4d(
      Float32Array.from({ length: y.size }, (_, i) => Math.sin(2.1 * i + 0.5)),
      y.shape as [number, number, number, number],
    );
    const ours = tf
      .grad((a: tf.Tensor) => tf.sum(tf.mul(conv2dShared(a as tf.Tensor4D, w, g.stride, g.padding), dy)))(x)
      .dataSync();
    const theirs = tf.conv2dTranspose(dy, w, x.shape, g.stride, g.padding).dataSync();
    expect(ours.length).toBe(theirs.length);
    for (let i = 0; i < ours.length; i++) expect(ours[i]!).toBeCloseTo(theirs[i]!, 3);
    tf.dispose([x, w, y, dy]);
  });
});
