// The fused Adam the data-parallel workers run against tf.train.adam itself (and tf.relu's
// projection), on the wasm backend training runs on and on the cpu backend.
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { adamCoefficients, adamProjectRange, freshAdamSettings } from '../../../models/training/fused-adam.ts';
import { initBackend } from '../../../models/tf/backend.ts';
import { mulberry } from '../rng.ts';

const N = 5000;
const STEPS = 8;

/** Weights and gradients over many magnitudes, a fifth of the weights near 0 so the projection acts. */
function problem(seed: number) {
  const rnd = mulberry(seed);
  const w0 = Float32Array.from({ length: N }, (_, i) => (i % 5 === 0 ? 1e-3 * rnd() : rnd() * 2));
  const grads = Array.from({ length: STEPS }, () => Float32Array.from({ length: N }, () => (rnd() - 0.5) * 10 ** (-6 + 6 * rnd())));
  // A rate that changes from step to step, as the cosine schedules set it.
  const rates = Array.from({ length: STEPS }, (_, t) => 0.01 * (0.05 + 0.95 * 0.5 * (1 + Math.cos((Math.PI * t) / STEPS))));
  return { w0, grads, rates };
}

function viaTf(p: ReturnType<typeof problem>, beta1?: number, beta2?: number, epsilon?: number): Float32Array[] {
  const v = tf.variable(tf.tensor1d(p.w0), true, 'fused-adam-ref');
  const opt = tf.train.adam(p.rates[0]!, beta1, beta2, epsilon);
  const out: Float32Array[] = [];
  p.grads.forEach((g, t) => {
    (opt as unknown as { learningRate: number }).learningRate = p.rates[t]!;
    tf.tidy(() => {
      opt.applyGradients([{ name: v.name, tensor: tf.tensor1d(g) }]);
      v.assign(tf.relu(v));
    });
    out.push(Float32Array.from(v.dataSync()));
  });
  opt.dispose();
  v.dispose();
  return out;
}

function viaFused(p: ReturnType<typeof problem>, settings: { beta1: number; beta2: number; epsilon: number }, slices: number): Float32Array[] {
  const w = Float32Array.from(p.w0);
  let m = new Float32Array(N);
  let v = new Float32Array(N);
  let m2 = new Float32Array(N);
  let v2 = new Float32Array(N);
  const next = new Float32Array(N);
  const out: Float32Array[] = [];
  p.grads.forEach((g, t) => {
    const c = adamCoefficients({ ...settings, learningRate: p.rates[t]! }, t + 1);
    // Slices as the workers take them: the result must not depend on how the vector is cut.
    for (let s = 0; s < slices; s++) adamProjectRange(c, g, m, v, w, m2, v2, next, Math.floor((s * N) / slices), Math.floor(((s + 1) * N) / slices));
    [m, m2] = [m2, m];
    [v, v2] = [v2, v];
    w.set(next);
    out.push(Float32Array.from(w));
  });
  return out;
}

describe('fused Adam and projection', () => {
  // Tolerance: tf rounds each of its kernels to float32, the fused loop computes an element's update
  // in float64 and rounds the new moments and weight once, so the two part by a few float32 roundings
  // of the operands of w + update per step (|w| + lr, lr about the largest update Adam takes), and the
  // weights and moments carry them on: 8 float32 ulps of |w| + the rates summed so far, after 8 steps;
  // measured at most the figure the test prints. An error in a formula (a missing bias correction, beta1 for beta2, the
  // projection left out) is off by whole percents of the update, far above it.
  it.each(['wasm', 'cpu'] as const)('gives tf.train.adam then tf.relu up to float32 rounding, step after step, on the %s backend', async (backend) => {
    if (backend === 'wasm') expect(await initBackend({ prefer: 'wasm' })).toBe('wasm');
    else {
      await import('@tensorflow/tfjs-backend-cpu');
      expect(await tf.setBackend('cpu')).toBe(true);
    }
    let worst = 0;
    for (const [seed, b1, b2, eps] of [
      [1, undefined, undefined, undefined],
      [2, 0.8, 0.99, 1e-5],
    ] as const) {
      const p = problem(seed);
      const ref = viaTf(p, b1, b2, eps);
      const settings = freshAdamSettings(tf.train.adam(0.01, b1, b2, eps))!;
      expect(settings).toBeDefined();
      const bySlices = [1, 3].map((slices) => viaFused(p, settings, slices));
      // How the vector is cut into the workers' slices changes nothing.
      expect(bySlices[1]).toEqual(bySlices[0]);
      bySlices[0]!.forEach((w, t) => {
        let moved = 0;
        w.forEach((x, i) => {
          const r = ref[t]![i]!;
          const scale = (Math.abs(t > 0 ? ref[t - 1]![i]! : p.w0[i]!) + p.rates.slice(0, t + 1).reduce((a, b) => a + b)) * 2 ** -23;
          worst = Math.max(worst, Math.abs(x - r) / scale);
          expect(Math.abs(x - r), `seed ${seed}, step ${t + 1}, weight ${i}`).toBeLessThanOrEqual(8 * scale);
          if (x !== p.w0[i]) moved++;
        });
        expect(moved).toBeGreaterThan(N / 2);
      });
      // The projection acted: some weights sit at exactly 0.
      expect(bySlices[0]!.at(-1)!.some((x) => x === 0)).toBe(true);
    }
    console.info(`fused Adam on ${backend}: at most ${worst.toFixed(2)} float32 ulps from tf`);
  });

  it('takes only a fresh Adam optimiser', () => {
    const fresh = tf.train.adam(0.01);
    expect(freshAdamSettings(fresh)).toMatchObject({ learningRate: 0.01, beta1: 0.9, beta2: 0.999 });
    const v = tf.variable(tf.zeros([3]));
    fresh.applyGradients([{ name: v.name, tensor: tf.ones([3]) }]);
    expect(freshAdamSettings(fresh)).toBeUndefined();
    expect(freshAdamSettings(tf.train.sgd(0.1))).toBeUndefined();
    fresh.dispose();
    v.dispose();
  });

  it('accumulates the bias corrections in float32 as tf does', () => {
    const c = adamCoefficients({ learningRate: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 }, 3);
    let acc = Math.fround(0.9);
    acc = Math.fround(acc * Math.fround(0.9));
    acc = Math.fround(acc * Math.fround(0.9));
    expect(c.correction1).toBe(Math.fround(1 - acc));
    expect(() => adamCoefficients({ learningRate: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 }, 0)).toThrow(/integer >= 1/);
  });
});
