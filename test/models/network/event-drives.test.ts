import * as tf from '@tensorflow/tfjs-core';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { eventDrives, locateSpikes, type EventKernel } from '../../../models/network/event-drives.ts';
import { initBackend } from '../../../models/tf/backend.ts';
import { mulberry } from '../rng.ts';

beforeAll(async () => {
  await initBackend({ prefer: 'cpu' });
});

/** Reference: eq. (4) bin fractions written out in float64, then the plain sum over inputs. */
function reference(times: number[], w: number[], B: number, nIn: number, C: number, M: number, h: number): Float64Array {
  const dt = h / M;
  const out = new Float64Array(B * M * C);
  for (let b = 0; b < B; b++) {
    for (let m = 0; m < M; m++) {
      for (let j = 0; j < nIn; j++) {
        const t = times[b * nIn + j]!;
        const s = t === Infinity || t >= h ? 0 : Math.min(1, Math.max(0, ((m + 1) * dt - t) / dt));
        for (let c = 0; c < C; c++) out[(b * M + m) * C + c] += s * w[j * C + c]!;
      }
    }
  }
  return out;
}

function randomCase(seed: number, B = 3, nIn = 7, C = 5, M = 6, h = 2) {
  const rnd = mulberry(seed);
  const times = Array.from({ length: B * nIn }, () => {
    const r = rnd();
    if (r < 0.15) return Infinity;
    if (r < 0.2) return h + rnd(); // after the horizon: never on
    if (r < 0.25) return -0.3 * rnd(); // before the grid: on from bin 0
    return rnd() * h;
  });
  const w = Array.from({ length: nIn * C }, () => rnd() * 2 - 1);
  return { times, w, B, nIn, C, M, h };
}

describe.each<EventKernel>(['js', 'simd'])('eventDrives (%s kernels)', (kernel) => {
  it('equals the bin fractions of eq. (4) summed over inputs', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1e6 }), fc.integer({ min: 1, max: 9 }), (seed, M) => {
        const c = randomCase(seed, 3, 7, 5, M);
        const ref = reference(c.times, c.w, c.B, c.nIn, c.C, c.M, c.h);
        const got = tf.tidy(() =>
          eventDrives(tf.tensor2d(c.times, [c.B, c.nIn]), tf.tensor2d(c.w, [c.nIn, c.C]), { bins: c.M, horizon: c.h, kernel }).dataSync(),
        );
        for (let k = 0; k < ref.length; k++) expect(got[k]).toBeCloseTo(ref[k]!, 4);
      }),
      { numRuns: 40 },
    );
  });

  it('has the gradients of the binFractions x matMul formulation (central differences in float64)', () => {
    const c = randomCase(11);
    const dy = Array.from({ length: c.B * c.M * c.C }, (_, k) => Math.sin(k + 1));
    const L = (times: number[], w: number[]) => reference(times, w, c.B, c.nIn, c.C, c.M, c.h).reduce((s, v, k) => s + v * dy[k]!, 0);
    const [gt, gw] = tf.tidy(() => {
      const g = tf.grads((t: tf.Tensor, w: tf.Tensor) =>
        tf.sum(tf.mul(eventDrives(t as tf.Tensor2D, w as tf.Tensor2D, { bins: c.M, horizon: c.h, kernel }), tf.tensor3d(dy, [c.B, c.M, c.C]))),
      )([tf.tensor2d(c.times, [c.B, c.nIn]), tf.tensor2d(c.w, [c.nIn, c.C])]);
      return g.map((x) => x.dataSync());
    });
    const eps = 1e-6;
    for (let k = 0; k < c.w.length; k++) {
      const p = [...c.w];
      const m = [...c.w];
      p[k]! += eps;
      m[k]! -= eps;
      expect(gw![k]).toBeCloseTo((L(c.times, p) - L(c.times, m)) / (2 * eps), 3);
    }
    let checked = 0;
    for (let k = 0; k < c.times.length; k++) {
      const t = c.times[k]!;
      // Away from bin edges (where eq. 4 has a kink) and inside the grid.
      const frac = (t / (c.h / c.M)) % 1;
      if (!(t > 0 && t < c.h) || frac < 1e-3 || frac > 1 - 1e-3) continue;
      const p = [...c.times];
      const m = [...c.times];
      p[k]! += eps;
      m[k]! -= eps;
      expect(gt![k]).toBeCloseTo((L(p, c.w) - L(m, c.w)) / (2 * eps), 2);
      checked++;
    }
    expect(checked).toBeGreaterThan(10);
  });

  it('gives no time gradient with inputGrad false, and zero for silent inputs', () => {
    const c = randomCase(5);
    const [off, on] = [false, true].map((inputGrad) =>
      tf.tidy(() => {
        const t = tf.tensor2d(c.times, [c.B, c.nIn]);
        return tf
          .grad((x: tf.Tensor) => tf.sum(eventDrives(x as tf.Tensor2D, tf.tensor2d(c.w, [c.nIn, c.C]), { bins: c.M, horizon: c.h, inputGrad, kernel })))(t)
          .dataSync();
      }),
    );
    expect(Array.from(off!).every((v) => v === 0)).toBe(true);
    c.times.forEach((t, k) => {
      if (!(t < c.h) || t < 0) expect(on![k]).toBe(0);
    });
    expect(Array.from(on!).some((v) => v !== 0)).toBe(true);
  });
});

describe('eventDrives', () => {
  it('locates spikes on the grid', () => {
    const { bin, frac } = locateSpikes(Float32Array.from([0, 0.25, 0.3, 1, Infinity, -1, NaN]), 4, 1);
    expect(Array.from(bin)).toEqual([0, 1, 1, 4, 4, -1, 4]);
    expect(frac[0]).toBeCloseTo(1);
    expect(frac[1]).toBeCloseTo(1);
    expect(frac[2]).toBeCloseTo(0.8);
    expect(frac[5]).toBe(1);
  });

  it('rejects mismatched shapes and bad grids with a message', () => {
    const t = tf.zeros([2, 3]) as tf.Tensor2D;
    expect(() => eventDrives(t, tf.zeros([4, 2]) as tf.Tensor2D, { bins: 4, horizon: 1 })).toThrow(/weights must be \[3, C\]/);
    expect(() => eventDrives(t, tf.zeros([3, 2]) as tf.Tensor2D, { bins: 0, horizon: 1 })).toThrow(/bins/);
    expect(() => eventDrives(t, tf.zeros([3, 2]) as tf.Tensor2D, { bins: 4, horizon: Infinity })).toThrow(/horizon/);
    expect(() => eventDrives(t, tf.zeros([3, 2]) as tf.Tensor2D, { bins: 4, horizon: 1, kernel: 'gpu' as EventKernel })).toThrow(
      /kernel must be 'js' or 'simd', got 'gpu'/,
    );
  });
});
