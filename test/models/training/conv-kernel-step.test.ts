import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { architectureSchema } from '../../../models/network/arch.ts';
import type { ConvSpikeLayer } from '../../../models/network/conv-layer.ts';
import { initNetwork } from '../../../models/network/init.ts';
import { archConfig } from '../../../models/network/network.ts';
import { createSolver } from '../../../models/network/solver.ts';
import { initBackend } from '../../../models/tf/backend.ts';
import { channelNorms, ConvKernelStep, signedSums, splitChannelGradient, type ConvKernel } from '../../../models/training/conv-kernel-step.ts';
import { trainNetwork } from '../../../models/training/trainer.ts';
import { mulberry } from '../rng.ts';

beforeAll(async () => {
  await initBackend({ prefer: 'cpu' });
});

const SHAPE = [3, 3, 2, 4];
const SIZE = 3 * 3 * 2 * 4;
const C = 4;

function kernel(seed: number): ConvKernel {
  const rnd = mulberry(seed);
  // Signed units: each weight on either pE or pI, as the initialisation draws them; multiples of 1/8,
  // so that half of them is exact in float32 (a gradient exactly along the units has no direction part).
  const w = Array.from({ length: SIZE }, () => Math.round(8 * (rnd() - 0.3)) / 8);
  return {
    pE: tf.variable(
      tf.tensor(
        w.map((v) => Math.max(v, 0)),
        SHAPE,
      ),
    ),
    pI: tf.variable(
      tf.tensor(
        w.map((v) => Math.max(-v, 0)),
        SHAPE,
      ),
    ),
    channels: C,
  };
}

function grads(k: ConvKernel, gE: number[], gI: number[]): tf.NamedTensorMap {
  return { [k.pE.name]: tf.tensor(gE, SHAPE), [k.pI.name]: tf.tensor(gI, SHAPE) };
}

function units(k: ConvKernel): number[] {
  return [...k.pE.dataSync(), ...k.pI.dataSync()];
}

describe('splitChannelGradient', () => {
  it('splits g into a part along each channel (the derivative along its norm, by finite differences) and a part orthogonal to it', () => {
    const rnd = mulberry(5);
    const n = 2 * SIZE;
    const u = Float64Array.from({ length: n }, () => rnd());
    const a = Float64Array.from({ length: n }, () => rnd() - 0.5);
    // L(u) = sum a u^3: g = 3 a u^2.
    const L = (v: Float64Array) => v.reduce((s, x, k) => s + a[k]! * x ** 3, 0);
    const g = u.map((x, k) => 3 * a[k]! * x * x);
    const { along, direction } = splitChannelGradient(u, g, C);
    for (let c = 0; c < C; c++) {
      let norm = 0;
      for (let k = c; k < n; k += C) norm += u[k]! ** 2;
      norm = Math.sqrt(norm);
      // u_c = n_c d_c: scale channel c's norm by (1 +- h / n_c) keeping its direction.
      const h = 1e-5;
      const at = (dn: number) => L(u.map((x, k) => (k % C === c ? x * (1 + dn / norm) : x)));
      const fd = (at(h) - at(-h)) / (2 * h);
      expect(Math.abs(along[c]! - fd)).toBeLessThan(1e-6 * Math.max(1, Math.abs(fd)));
      let dot = 0;
      for (let k = c; k < n; k += C) dot += direction[k]! * u[k]!;
      expect(Math.abs(dot)).toBeLessThan(1e-12);
      for (let k = c; k < n; k += C) expect(direction[k]! + (along[c]! * u[k]!) / norm).toBeCloseTo(g[k]!, 12);
    }
  });
});

describe('ConvKernelStep', () => {
  it("with per-weight moments and no normalisation takes tf.train.adam's step and projection", () => {
    const a = kernel(1);
    const b = kernel(1);
    const rnd = mulberry(2);
    const step = new ConvKernelStep([a], { moment: 'weight', norm: 'free', normRate: 0 });
    const adam = tf.train.adam(0.05);
    for (let t = 0; t < 3; t++) {
      const gE = Array.from({ length: SIZE }, () => rnd() - 0.5);
      const gI = Array.from({ length: SIZE }, () => rnd() - 0.5);
      step.apply(grads(a, gE, gI), 0.05);
      const gb = grads(b, gE, gI);
      adam.applyGradients(Object.keys(gb).map((name) => ({ name, tensor: gb[name]! })));
      b.pE.assign(tf.relu(b.pE));
      b.pI.assign(tf.relu(b.pI));
    }
    const got = units(a);
    const want = units(b);
    for (let k = 0; k < got.length; k++) expect(Math.abs(got[k]! - want[k]!)).toBeLessThan(1e-5);
  });

  it('with one moment per channel steps each weight by lr g / rms of its channel on the first step', () => {
    const k = kernel(3);
    const before = units(k);
    const rnd = mulberry(4);
    const gE = Array.from({ length: SIZE }, () => 0.01 + 0.002 * (rnd() - 0.5));
    const gI = gE.map((v) => -v);
    const g = [...gE, ...gI];
    new ConvKernelStep([k], { moment: 'channel', norm: 'free', normRate: 0 }).apply(grads(k, gE, gI), 0.1);
    const after = units(k);
    for (let c = 0; c < C; c++) {
      let ss = 0;
      let count = 0;
      for (let j = c; j < g.length; j += C) {
        ss += g[j]! ** 2;
        count++;
      }
      const rms = Math.sqrt(ss / count);
      for (let j = c; j < g.length; j += C) expect(after[j]!).toBeCloseTo(Math.max(0, before[j]! - (0.1 * g[j]!) / rms), 5);
    }
  });

  it("with the norm frozen keeps every channel's norm and does not move on a gradient along the weights", () => {
    const k = kernel(6);
    const n0 = channelNorms(k);
    const before = units(k);
    const step = new ConvKernelStep([k], { moment: 'weight', norm: 'frozen', normRate: 0 });
    // A pure gain gradient: g = u / 2.
    step.apply(
      grads(
        k,
        Array.from(k.pE.dataSync(), (v) => 0.5 * v),
        Array.from(k.pI.dataSync(), (v) => 0.5 * v),
      ),
      0.05,
    );
    const same = units(k);
    for (let j = 0; j < same.length; j++) expect(same[j]!).toBeCloseTo(before[j]!, 6);
    const rnd = mulberry(8);
    step.apply(
      grads(
        k,
        Array.from({ length: SIZE }, () => rnd() - 0.5),
        Array.from({ length: SIZE }, () => rnd() - 0.5),
      ),
      0.05,
    );
    const after = units(k);
    expect(after.some((v, j) => Math.abs(v - before[j]!) > 1e-3)).toBe(true);
    expect(after.every((v) => v >= 0)).toBe(true);
    const n1 = channelNorms(k);
    for (let c = 0; c < C; c++) expect(n1[c]!).toBeCloseTo(n0[c]!, 5);
  });

  it('with the norm trained shrinks a channel by normRate x lr on a gradient along its weights, keeping its direction', () => {
    const k = kernel(9);
    const before = units(k);
    new ConvKernelStep([k], { moment: 'weight', norm: 'trained', normRate: 0.5 }).apply(
      grads(
        k,
        Array.from(k.pE.dataSync(), (v) => 0.5 * v),
        Array.from(k.pI.dataSync(), (v) => 0.5 * v),
      ),
      0.1,
    );
    const after = units(k);
    // Adam's first step is lr sign(g) (relative here): n -> n (1 - 0.5 x 0.1).
    for (let j = 0; j < after.length; j++) expect(after[j]!).toBeCloseTo(before[j]! * 0.95, 5);
  });

  it("with norm 'mean' holds each channel's signed sum, keeps the units >= 0, and does not move on a uniform signed gradient", () => {
    const k = kernel(12);
    const s0 = signedSums(k);
    const before = units(k);
    const step = new ConvKernelStep([k], { moment: 'weight', norm: 'mean', normRate: 0 });
    // A pure gain gradient in the signed kernel: +0.01 on every pE, -0.01 on every pI.
    step.apply(grads(k, new Array(SIZE).fill(0.01), new Array(SIZE).fill(-0.01)), 0.05);
    const same = units(k);
    for (let j = 0; j < same.length; j++) expect(same[j]!).toBeCloseTo(before[j]!, 6);
    const rnd = mulberry(13);
    for (let t = 0; t < 3; t++)
      step.apply(
        grads(
          k,
          Array.from({ length: SIZE }, () => rnd() - 0.2),
          Array.from({ length: SIZE }, () => rnd() - 0.8),
        ),
        0.05,
      );
    const after = units(k);
    expect(after.some((v, j) => Math.abs(v - before[j]!) > 1e-3)).toBe(true);
    expect(after.every((v) => v >= 0)).toBe(true);
    const s1 = signedSums(k);
    for (let c = 0; c < C; c++) expect(s1[c]!).toBeCloseTo(s0[c]!, 5);
  });

  it('rejects unknown settings, naming the field', () => {
    const k = kernel(1);
    expect(() => new ConvKernelStep([k], { moment: 'x' as 'weight', norm: 'free', normRate: 0 })).toThrow(/moment/);
    expect(() => new ConvKernelStep([k], { moment: 'weight', norm: 'free', normRate: -1 })).toThrow(/normRate/);
  });
});

describe('trainNetwork with convStep', () => {
  const ARCH = architectureSchema.parse({
    input: { height: 6, width: 6, channels: 1 },
    layers: [
      { type: 'conv', channels: 2, kernel: 3, stride: 2 },
      { type: 'dense', units: 3 },
    ],
  });

  it('keeps the conv kernels at their norms, trains the dense layer with Adam, and leaves ordinary pE, pI', async () => {
    const rnd = mulberry(11);
    const n = 24;
    const x = Float32Array.from({ length: n * 36 }, () => (rnd() < 0.4 ? 0 : rnd()));
    const y = Uint8Array.from({ length: n }, (_, k) => k % 3);
    const solver = createSolver('dstd', { bins: 16 });
    const net = initNetwork(archConfig(ARCH), { x, n }, solver, { seed: 3 });
    const conv = net.layers[0] as ConvSpikeLayer;
    const n0 = channelNorms({ pE: conv.pE, pI: conv.pI, channels: 2 });
    const dense0 = net.states()[1]!.pE;
    const train = { name: 'toy', n, features: 36, classes: 3, x, y, classNames: ['a', 'b', 'c'] };
    await trainNetwork(net, { train }, { epochs: 1, batchSize: 8, lr: 0.05, seed: 1, solver, convStep: { moment: 'channel', norm: 'frozen', normRate: 0 } });
    const n1 = channelNorms({ pE: conv.pE, pI: conv.pI, channels: 2 });
    for (let c = 0; c < 2; c++) expect(n1[c]!).toBeCloseTo(n0[c]!, 4);
    // Saved as an ordinary kernel; the dense layer moved.
    expect(conv.state().pE.length).toBe(3 * 3 * 1 * 2);
    expect(Array.from(net.states()[1]!.pE)).not.toEqual(Array.from(dense0));
    net.dispose();
  });
});
