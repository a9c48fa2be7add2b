import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { minPool, minPoolSpikes } from '../../../models/conv/min-pool.ts';
import { initBackend } from '../../../models/tf/backend.ts';
import { mulberry } from '../rng.ts';

beforeAll(async () => {
  await initBackend({ prefer: 'cpu' });
});

describe('earliest-spike pooling', () => {
  it('takes the earliest time of each window and sends the gradient to it alone', () => {
    const [B, H, W, C, p] = [2, 5, 4, 3, 2];
    const rnd = mulberry(21);
    const x = Float32Array.from({ length: B * H * W * C }, () => rnd());
    const xt = tf.tensor4d(x, [B, H, W, C]);
    const [oh, ow] = [Math.floor(H / p), Math.floor(W / p)];
    const wOut = Float32Array.from({ length: B * oh * ow * C }, (_, i) => i + 1);
    const y = tf.tidy(() => minPool(xt, p).dataSync());
    const g = tf
      .grad((a: tf.Tensor) => tf.sum(tf.mul(minPool(a as tf.Tensor4D, p), tf.tensor4d(wOut, [B, oh, ow, C]))))(xt)
      .dataSync();
    const want = new Float32Array(x.length);
    for (let b = 0; b < B; b++)
      for (let oy = 0; oy < oh; oy++)
        for (let ox = 0; ox < ow; ox++)
          for (let c = 0; c < C; c++) {
            let best = Infinity;
            let arg = -1;
            for (let dy = 0; dy < p; dy++)
              for (let dx = 0; dx < p; dx++) {
                const k = ((b * H + oy * p + dy) * W + ox * p + dx) * C + c;
                if (x[k]! < best) [best, arg] = [x[k]!, k];
              }
            const o = ((b * oh + oy) * ow + ox) * C + c;
            expect(y[o]!).toBeCloseTo(best, 6);
            want[arg] = wOut[o]!;
          }
    expect(Array.from(g, (v) => v + 0)).toEqual(Array.from(want));
    xt.dispose();
  });

  it('a window fires when any neuron fired; an all-silent window stays at the horizon', () => {
    const horizon = 2;
    // One sample, 2x2 map, one channel: [fired 1.5, silent, silent, fired 1.2] -> 1.2, fired.
    const s = { times: tf.tensor2d([[1.5, horizon, horizon, 1.2]]), mask: tf.tensor2d([[1, 0, 0, 1]]) };
    const silent = { times: tf.tensor2d([[horizon, horizon, horizon, horizon]]), mask: tf.tensor2d([[0, 0, 0, 0]]) };
    const a = minPoolSpikes(s, 2, 2, 1, 2);
    const b = minPoolSpikes(silent, 2, 2, 1, 2);
    expect(a.times.dataSync()[0]).toBeCloseTo(1.2, 6);
    expect(a.mask.dataSync()[0]).toBe(1);
    expect(b.times.dataSync()[0]).toBe(horizon);
    expect(b.mask.dataSync()[0]).toBe(0);
    tf.dispose([s.times, s.mask, silent.times, silent.mask, a.times, a.mask, b.times, b.mask]);
  });
});
