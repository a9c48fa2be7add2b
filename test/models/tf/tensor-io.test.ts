import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../models/tf/backend.ts';
import { assignFrom, readInto, tensorCopy, viewSync } from '../../../models/tf/tensor-io.ts';
import { mulberry } from '../rng.ts';

beforeAll(async () => {
  // The wasm backend is the one these helpers special-case.
  expect(await initBackend({ prefer: 'wasm' })).toBe('wasm');
});

const random = (n: number, seed: number) => {
  const rnd = mulberry(seed);
  return Float32Array.from({ length: n }, () => rnd() * 2 - 1);
};

/** Slice by plain index arithmetic: the reference for the kernels that replace the backend's. */
function sliceRef(x: Float32Array, shape: number[], begin: number[], size: number[]): Float32Array {
  const out = new Float32Array(size.reduce((a, b) => a * b, 1));
  const strides = shape.map((_, a) => shape.slice(a + 1).reduce((p, q) => p * q, 1));
  const idx = size.map(() => 0);
  for (let k = 0; k < out.length; k++) {
    let from = 0;
    for (let a = 0; a < shape.length; a++) from += (begin[a]! + idx[a]!) * strides[a]!;
    out[k] = x[from]!;
    for (let a = shape.length - 1; a >= 0; a--) {
      if (++idx[a]! < size[a]!) break;
      idx[a] = 0;
    }
  }
  return out;
}

describe('tensor-io on the wasm backend', () => {
  it('views, reads into and copies from tensors with the values dataSync gives', () => {
    const v = random(300, 1);
    const t = tf.tensor2d(v, [20, 15]);
    expect(Array.from(viewSync(t))).toEqual(Array.from(t.dataSync()));
    const out = new Float32Array(310).fill(7);
    readInto(t, out, 10);
    expect(Array.from(out.subarray(10))).toEqual(Array.from(v));
    expect(out[9]).toBe(7);
    // The tensor owns its copy: overwriting the source afterwards leaves it alone.
    const src = random(6, 2);
    const c = tensorCopy(src, [2, 3]);
    const expected = Array.from(src);
    src.fill(0);
    expect(Array.from(c.dataSync())).toEqual(expected);
    expect(c.shape).toEqual([2, 3]);
    tf.dispose([t, c]);
  });

  it('assigns a variable in place when nothing shares its memory, and by copy when something does', () => {
    const v = tf.variable(tf.zeros([4, 5]));
    const before = tf.memory().numTensors;
    const a = random(20, 3);
    assignFrom(v, a);
    expect(Array.from(v.dataSync())).toEqual(Array.from(a));
    expect(tf.memory().numTensors).toBe(before);
    // A reshape shares the variable's data: an in-place write would change it too.
    const shared = tf.reshape(v, [20]);
    const b = random(20, 4);
    assignFrom(v, b);
    expect(Array.from(v.dataSync())).toEqual(Array.from(b));
    expect(Array.from(shared.dataSync())).toEqual(Array.from(a));
    expect(() => assignFrom(v, new Float32Array(3))).toThrow(/holds 20 values, got 3/);
    tf.dispose([v, shared]);
  });

  it('slices and splits (the replaced Slice and SplitV kernels) like index arithmetic, every rank', () => {
    const cases: [number[], number[], number[]][] = [
      [[10], [3], [5]],
      [
        [6, 7],
        [1, 2],
        [4, 3],
      ],
      [
        [5, 4, 12],
        [0, 0, 6],
        [5, 4, 6],
      ],
      [
        [5, 4, 12],
        [1, 2, 3],
        [3, 1, 4],
      ],
      [
        [3, 4, 5, 6],
        [1, 0, 2, 1],
        [2, 4, 2, 5],
      ],
      [
        [2, 3, 2, 2, 3],
        [0, 1, 0, 1, 1],
        [2, 2, 2, 1, 2],
      ],
    ];
    for (const [shape, begin, size] of cases) {
      const n = shape.reduce((a, b) => a * b, 1);
      const x = random(n, n);
      const t = tf.tensor(x, shape);
      const s = tf.slice(t, begin, size);
      expect(s.shape).toEqual(size);
      expect(Array.from(s.dataSync()), JSON.stringify([shape, begin, size])).toEqual(Array.from(sliceRef(x, shape, begin, size)));
      tf.dispose([t, s]);
    }
    const x = random(2 * 3 * 10, 5);
    const t = tf.tensor3d(x, [2, 3, 10]);
    const parts = tf.split(t, [4, 6], 2);
    expect(Array.from(parts[0]!.dataSync())).toEqual(Array.from(sliceRef(x, [2, 3, 10], [0, 0, 0], [2, 3, 4])));
    expect(Array.from(parts[1]!.dataSync())).toEqual(Array.from(sliceRef(x, [2, 3, 10], [0, 0, 4], [2, 3, 6])));
    // int32 goes through the same kernel.
    const i = tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3], 'int32');
    expect(Array.from(tf.slice(i, [0, 1], [2, 2]).dataSync())).toEqual([2, 3, 5, 6]);
    // The concat gradient is a SplitV.
    const g = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.concat([a, tf.mul(a, 2)], 1), tf.reshape(tf.range(0, 6), [1, 6]))))(tf.ones([2, 3]));
    expect(Array.from(g.dataSync())).toEqual([6, 9, 12, 6, 9, 12]);
    tf.dispose([t, ...parts, i, g]);
  });
});
