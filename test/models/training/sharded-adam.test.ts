// The optimiser step on slices of the parameters against tfjs' own Adam (the independent
// reference): the same gradients, summed over shards as the calling thread sums them, then
// optimizer.applyGradients, tf.relu and the weight decay's multiply, step after step. The slices
// compute in double and round once per stored value, tfjs rounds to float32 after every operation:
// the weights agree to a few float32 roundings of a step (lr * 1e-6 allows about ten), while a
// wrong moment, bias correction or order of projection and decay is off by a sizeable part of lr.
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { shardRanges } from '../../../models/training/data-parallel.ts';
import { ADAM_DEFAULTS, AdamClock, type DeadTerm, updateSlice } from '../../../models/training/sharded-adam.ts';
import { initBackend } from '../../../models/tf/backend.ts';
import { mulberry } from '../rng.ts';

beforeAll(async () => {
  await initBackend({ prefer: 'cpu' });
});

// Two "layers" of 5x4 and 4x3 synapses (pE then pI each): P = 2 * 20 + 2 * 12 = 64.
const LAYERS = [
  { nIn: 5, nOut: 4 },
  { nIn: 4, nOut: 3 },
];
const P = LAYERS.reduce((a, l) => a + 2 * l.nIn * l.nOut, 0);
const S = 3;

/** The reduction the calling thread makes (DataParallelStep.reduce), written out plainly. */
function reduced(grads: Float32Array, dead: DeadTerm[]): Float32Array {
  const total = new Float32Array(P);
  for (let s = 0; s < S; s++) for (let k = 0; k < P; k++) total[k] = s === 0 ? grads[k]! : total[k]! + grads[s * 2 * P + k]!;
  for (const d of dead) {
    const size = d.nIn * d.nOut;
    for (let k = d.offset; k < d.offset + 2 * size; k++) {
      if (!d.chosen[(k - d.offset) % d.nOut]) continue;
      let sum = 0;
      for (let s = 0; s < S; s++) sum += grads[s * 2 * P + P + k]!;
      total[k] = total[k]! + d.factor * sum;
    }
  }
  return total;
}

describe('Adam on slices of the parameters (sharded-adam.ts)', () => {
  it.each([1, 2, 3, 7])('gives tfjs Adam, relu and the decay with %i slices, step after step, and the same bits for any slicing', (slices) => {
    const rnd = mulberry(slices);
    const w0 = Float32Array.from({ length: P }, () => rnd() * 0.02);
    const ref = tf.variable(tf.tensor1d(w0), true, `sharded-adam-ref-${slices}`);
    const optimizer = tf.train.adam(0.01);
    const weights = new SharedArrayBuffer(P * 4);
    new Float32Array(weights).set(w0);
    const moments = new SharedArrayBuffer(2 * P * 4);
    // The same steps in one slice: the slicing must not change a bit.
    const whole = { weights: new SharedArrayBuffer(P * 4), moments: new SharedArrayBuffer(2 * P * 4) };
    new Float32Array(whole.weights).set(w0);
    const grads = new SharedArrayBuffer(S * 2 * P * 4);
    const clock = new AdamClock({ lr: 0.01, ...ADAM_DEFAULTS, epsilon: tf.backend().epsilon() });
    for (let step = 0; step < 5; step++) {
      const g = new Float32Array(grads);
      for (let k = 0; k < g.length; k++) g[k] = (rnd() - 0.5) * 10 ** -(1 + (k % 4));
      // Layer 0: neurons 1 and 3 dead; layer 1 (the output layer): every neuron, from step 2 on.
      const dead: DeadTerm[] = [{ offset: 0, nIn: 5, nOut: 4, factor: 0.3 / 7, chosen: Uint8Array.from([0, 1, 0, 1]) }];
      if (step >= 2) dead.push({ offset: 40, nIn: 4, nOut: 3, factor: 0.3 / 11, chosen: Uint8Array.from([1, 1, 1]) });
      const lr = step < 3 ? 0.01 : 0.004;
      const shrink = step === 4 ? 0.999 : 1;
      const adam = clock.next(lr);
      for (const [start, end] of shardRanges(P, slices)) updateSlice({ weights, moments, grads, shards: S, P, start, end, dead, adam, shrink });
      updateSlice({ ...whole, grads, shards: S, P, start: 0, end: P, dead, adam, shrink });
      expect(new Float32Array(whole.weights), `step ${step}, one slice`).toEqual(new Float32Array(weights));
      expect(new Float32Array(whole.moments), `step ${step}, one slice`).toEqual(new Float32Array(moments));
      (optimizer as unknown as { learningRate: number }).learningRate = lr;
      const gt = tf.tensor1d(reduced(g, dead));
      optimizer.applyGradients([{ name: ref.name, tensor: gt }]);
      gt.dispose();
      tf.tidy(() => ref.assign(tf.mul(tf.relu(ref), shrink)));
      const want = ref.dataSync() as Float32Array;
      const got = new Float32Array(weights);
      let worst = 0;
      got.forEach((x, k) => (worst = Math.max(worst, Math.abs(x - want[k]!))));
      expect(worst, `step ${step}`).toBeLessThanOrEqual(lr * 1e-6);
      // Moving the weights back onto tfjs' keeps the comparison one step deep.
      new Float32Array(weights).set(want);
      new Float32Array(whole.weights).set(want);
      // The projection acted: some weight reached exactly zero.
      if (step === 4) expect(got.some((v) => v === 0)).toBe(true);
    }
    optimizer.dispose();
    ref.dispose();
  });

  it('refuses a slice outside the parameters', () => {
    const b = () => new SharedArrayBuffer(P * 8);
    const adam = new AdamClock({ lr: 0.01, ...ADAM_DEFAULTS }).next();
    expect(() =>
      updateSlice({ weights: b(), moments: b(), grads: new SharedArrayBuffer(2 * P * 4), shards: 1, P, start: 10, end: P + 1, dead: [], adam, shrink: 1 }),
    ).toThrow(/slice \[10, 65\) outside the 64 parameters/);
  });
});
