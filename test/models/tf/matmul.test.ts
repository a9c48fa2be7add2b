import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, expect, it } from 'vitest';
import { initBackend } from '../../../models/tf/backend.ts';
import { matMul } from '../../../models/tf/matmul.ts';

beforeAll(async () => {
  await initBackend();
});

it('matMul and its gradients equal tfjs MatMul and its registered gradient', () => {
  const a = tf.randomUniform([7, 5], -1, 1, 'float32', 1) as tf.Tensor2D;
  const b = tf.randomUniform([5, 3], -1, 1, 'float32', 2) as tf.Tensor2D;
  const w = tf.randomUniform([7, 3], -1, 1, 'float32', 3);
  const before = tf.memory().numTensors;
  const ours = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(matMul(x as tf.Tensor2D, y as tf.Tensor2D), w)))([a, b]);
  const ref = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x as tf.Tensor2D, y as tf.Tensor2D), w)))([a, b]);
  for (let k = 0; k < 2; k++) {
    const o = ours[k].dataSync();
    const r = ref[k].dataSync();
    for (let i = 0; i < r.length; i++) expect(o[i]).toBeCloseTo(r[i], 5);
  }
  expect(tf.memory().numTensors - before).toBe(4);
  tf.dispose([...ours, ...ref, a, b, w]);
  expect(() => matMul(tf.zeros([2, 3]) as tf.Tensor2D, tf.zeros([2, 3]) as tf.Tensor2D)).toThrow(/\[2,3\] x \[2,3\]/);
});
