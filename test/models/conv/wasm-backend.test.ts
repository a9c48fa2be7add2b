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
});
