import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { initBackend, parseBackendName } from '../../../models/tf/backend.ts';

it('honours an explicit preference (cpu) and still registers gradients', async () => {
  expect(await initBackend({ prefer: 'cpu' })).toBe('cpu');
  expect(tf.getBackend()).toBe('cpu');
  const g = tf.grad((x: tf.Tensor) => tf.sum(tf.exp(x)))(tf.tensor1d([0]));
  expect(g.dataSync()[0]).toBeCloseTo(1, 6);
});

it('names an unknown backend and the accepted ones', () => {
  expect(() => parseBackendName('gpu')).toThrow(/unknown tfjs backend 'gpu'.*tensorflow, wasm, cpu/);
  expect(parseBackendName('wasm')).toBe('wasm');
});
