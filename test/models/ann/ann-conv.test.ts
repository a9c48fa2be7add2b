import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { annArchitecture, mapAnnToSnn } from '../../../models/ann/mapping.ts';
import { ReluNet, trainReluNet, type AnnConvWeights, type AnnLayerWeights } from '../../../models/ann/relu-net.ts';
import { convShape } from '../../../models/conv/geometry.ts';
import type { DatasetPart } from '../../../models/datasets/types.ts';
import { architectureSchema, type ArchitectureInput } from '../../../models/network/arch.ts';
import { createSolver } from '../../../models/network/solver.ts';
import { exactForward } from '../../../models/solvers/exact.ts';
import { initBackend } from '../../../models/tf/backend.ts';
import { mulberry } from '../rng.ts';
import { unitSumLayer } from './unit-sum.ts';

beforeAll(async () => {
  await initBackend({ prefer: 'cpu' });
});

/** Images h x w x c with a class-dependent bright bar, values in [0, 1]. */
function imageSet(seed: number, n: number, h: number, w: number, c = 1, classes = 3): DatasetPart {
  const rnd = mulberry(seed);
  const f = h * w * c;
  const x = new Float32Array(n * f);
  const y = new Uint8Array(n);
  for (let s = 0; s < n; s++) {
    const k = s % classes;
    y[s] = k;
    for (let p = 0; p < f; p++) {
      const col = Math.floor(p / c) % w;
      x[s * f + p] = Math.min(1, Math.max(0, (col % classes === k ? 0.7 : 0.15) + 0.3 * (rnd() - 0.5)));
    }
  }
  return { name: 'bars', x, y, n, features: f, classes, classNames: Array.from({ length: classes }, (_, i) => `c${i}`) };
}

/** A direct convolution loop (NHWC input, HWIO kernel, zero padding) in float64: [outH * outW * channels]. */
function convLoop(L: AnnConvWeights, img: ArrayLike<number>): Float64Array {
  const g = L.geometry;
  const s = convShape(g);
  const out = new Float64Array(s.outH * s.outW * g.channels);
  for (let oy = 0; oy < s.outH; oy++)
    for (let ox = 0; ox < s.outW; ox++)
      for (let o = 0; o < g.channels; o++) {
        let z = L.b[o]!;
        for (let ky = 0; ky < g.kernelH; ky++)
          for (let kx = 0; kx < g.kernelW; kx++) {
            const iy = oy * g.stride + ky - s.padTop;
            const ix = ox * g.stride + kx - s.padLeft;
            if (iy < 0 || ix < 0 || iy >= g.inH || ix >= g.inW) continue;
            for (let c = 0; c < g.inC; c++) z += img[(iy * g.inW + ix) * g.inC + c]! * L.w[((ky * g.kernelW + kx) * g.inC + c) * g.channels + o]!;
          }
        out[(oy * s.outW + ox) * g.channels + o] = z;
      }
  return out;
}

/** ANN logits in float64 from layer weights: conv loop, ReLU, max pooling, dense. */
function annLogits(layers: AnnLayerWeights[], row: ArrayLike<number>): Float64Array {
  let a: ArrayLike<number> = row;
  layers.forEach((L, l) => {
    let z: Float64Array;
    if (L.kind === 'conv') {
      const conv = convLoop(L, a);
      const s = convShape(L.geometry);
      const C = L.geometry.channels;
      const act = l + 1 < layers.length ? conv.map((v) => Math.max(0, v)) : conv;
      if (L.pool === 1) z = act;
      else {
        const ph = Math.floor(s.outH / L.pool);
        const pw = Math.floor(s.outW / L.pool);
        z = new Float64Array(ph * pw * C).fill(-Infinity);
        for (let y = 0; y < ph * L.pool; y++)
          for (let x = 0; x < pw * L.pool; x++)
            for (let c = 0; c < C; c++) {
              const k = (Math.floor(y / L.pool) * pw + Math.floor(x / L.pool)) * C + c;
              z[k] = Math.max(z[k]!, act[(y * s.outW + x) * C + c]!);
            }
      }
    } else {
      z = Float64Array.from(L.b);
      for (let j = 0; j < L.nIn; j++) for (let i = 0; i < L.nOut; i++) z[i] += a[j]! * L.w[j * L.nOut + i]!;
      if (l + 1 < layers.length) z = z.map((v) => Math.max(0, v));
    }
    a = z;
  });
  return Float64Array.from(a);
}

const small: ArchitectureInput = {
  input: { height: 7, width: 7, channels: 2 },
  layers: [
    { type: 'conv', channels: 3, kernel: 3, stride: 1, padding: 'valid' },
    { type: 'pool', size: 2 },
    { type: 'dense', units: 4 },
    { type: 'dense', units: 3 },
  ],
};

/** Random HWIO kernels summing to 1 per channel, biases of both signs: a conv layer the mapping takes. */
function randomConv(seed: number, geometry: AnnConvWeights['geometry'], pool = 1): AnnConvWeights {
  const { kernelH, kernelW, inC, channels } = geometry;
  // HWIO flat is [kernelH kernelW inC, channels] row-major: each channel is one neuron.
  const { w, b } = unitSumLayer(mulberry(seed), kernelH * kernelW * inC, channels);
  const s = convShape(geometry);
  const nOut = Math.floor(s.outH / pool) * Math.floor(s.outW / pool) * channels;
  return { kind: 'conv', geometry, pool, nIn: s.nIn, nOut, w, b };
}

describe('ReluNet with conv layers', () => {
  it('keeps each channel kernel summing to rowSum, computes what a direct loop computes, and learns', async () => {
    const arch = architectureSchema.parse(small);
    const data = imageSet(1, 60, 7, 7, 2);
    const net = new ReluNet({ arch, seed: 3, rowSum: 1 });
    const h = await trainReluNet(net, { train: data, test: imageSet(2, 30, 7, 7, 2) }, { epochs: 25, batchSize: 10, lr: 0.02, seed: 3 });
    const layers = net.layerWeights();
    expect(layers.map((L) => L.kind ?? 'dense')).toEqual(['conv', 'dense', 'dense']);
    const conv = layers[0] as AnnConvWeights;
    for (let o = 0; o < 3; o++) {
      let s = 0;
      for (let j = 0; j < 3 * 3 * 2; j++) s += conv.w[j * 3 + o]!;
      expect(s).toBeCloseTo(1, 4);
    }
    expect(h.at(-1)!.train_loss).toBeLessThan(h[0]!.train_loss);
    expect(h.at(-1)!.test_acc).toBeGreaterThan(0.9);
    const logits = tf.tidy(() => net.forward(tf.tensor2d(data.x.subarray(0, 5 * 98), [5, 98])).logits.arraySync());
    for (let s = 0; s < 5; s++) {
      const ref = annLogits(layers, data.x.subarray(s * 98, (s + 1) * 98));
      logits[s]!.forEach((v, i) => expect(v).toBeCloseTo(ref[i]!, 4));
    }
    expect(annArchitecture(layers)).toEqual(arch);
    net.dispose();
  });

  it('refuses sizes that are not its architecture', () => {
    expect(() => new ReluNet({ arch: architectureSchema.parse(small), sizes: [98, 27, 4, 3], seed: 1 })).toThrow(/not the architecture's/);
  });
});

describe('mapAnnToSnn with conv layers', () => {
  it("a 'valid' conv layer maps exactly: every position spikes at T0 - tau (z + b)/S", () => {
    const g = { inH: 6, inW: 5, inC: 2, channels: 3, kernelH: 3, kernelW: 3, stride: 2, padding: 'valid' as const };
    const data = imageSet(4, 20, 6, 5, 2);
    const conv = randomConv(7, g);
    const out: AnnLayerWeights = {
      nIn: conv.nOut,
      nOut: 3,
      w: Float32Array.from({ length: conv.nOut * 3 }, (_, k) => ((k * 7) % 5) / 5),
      b: new Float32Array(3),
    };
    const m = mapAnnToSnn([conv, out], { x: data.x, n: data.n }, { percentile: 1 });
    const layer0 = m.net.unrolled().toPnnLayers()[0]!;
    const t = exactForward(
      layer0,
      Float64Array.from(data.x, (v) => 1 - v),
      data.n,
    ).times;
    const T0 = 1 + m.windows[0]!;
    let checked = 0;
    for (let s = 0; s < data.n; s++) {
      const z = convLoop(conv, data.x.subarray(s * 60, (s + 1) * 60));
      z.forEach((v, i) => {
        if (T0 - v <= layer0.horizon) {
          expect(t[s * z.length + i]).toBeCloseTo(T0 - v, 5);
          checked++;
        }
      });
    }
    expect(checked).toBeGreaterThan(150);
    m.net.dispose();
  });

  it('a conv net without hidden layers maps exactly: the earliest spike is the ANN argmax', () => {
    // A 3x3 image through a 3-channel 3x3 'valid' kernel: one position, three class neurons.
    const g = { inH: 3, inW: 3, inC: 1, channels: 3, kernelH: 3, kernelW: 3, stride: 1, padding: 'valid' as const };
    const data = imageSet(8, 60, 3, 3, 1);
    const conv = randomConv(9, g);
    const m = mapAnnToSnn([conv], { x: data.x, n: data.n }, { percentile: 1 });
    expect(m.net.config.arch).toEqual(annArchitecture([conv]));
    const snn = m.net.predict(data.x, data.n, createSolver('exact'));
    const ann = Array.from({ length: data.n }, (_, s) => {
      const z = annLogits([conv], data.x.subarray(s * 9, (s + 1) * 9));
      return z.indexOf(Math.max(...z));
    });
    expect(Array.from(snn)).toEqual(ann);
    // The DSTD solver runs the same network through its convolution path.
    const dstd = m.net.predict(data.x, data.n, createSolver('dstd', { bins: 256 }));
    let agree = 0;
    for (let s = 0; s < data.n; s++) if (dstd[s] === ann[s]) agree++;
    expect(agree).toBeGreaterThanOrEqual(data.n - 2);
    m.net.dispose();
  });

  it("with 'same' padding the interior maps exactly and a cut receptive field fires later than the ANN says", () => {
    const g = { inH: 5, inW: 5, inC: 1, channels: 2, kernelH: 3, kernelW: 3, stride: 1, padding: 'same' as const };
    const data = imageSet(10, 20, 5, 5, 1);
    // Positive kernels: a cut receptive field loses slope, never gains it.
    const conv = randomConv(11, g);
    conv.w.forEach((_, k) => (conv.w[k] = 1 / 9));
    const m = mapAnnToSnn(
      [conv, { nIn: conv.nOut, nOut: 3, w: new Float32Array(conv.nOut * 3).fill(0.02), b: new Float32Array(3) }],
      { x: data.x, n: data.n },
      { percentile: 1 },
    );
    const layer0 = m.net.unrolled().toPnnLayers()[0]!;
    const r = exactForward(
      layer0,
      Float64Array.from(data.x, (v) => 1 - v),
      data.n,
    );
    const T0 = 1 + m.windows[0]!;
    let interior = 0;
    let border = 0;
    for (let s = 0; s < data.n; s++) {
      const z = convLoop(conv, data.x.subarray(s * 25, (s + 1) * 25));
      z.forEach((v, i) => {
        const pos = Math.floor(i / 2);
        const [y, x] = [Math.floor(pos / 5), pos % 5];
        const t = r.times[s * z.length + i]!;
        if (y > 0 && y < 4 && x > 0 && x < 4) {
          expect(t).toBeCloseTo(T0 - v, 5);
          interior++;
        } else {
          expect(t).toBeGreaterThan(T0 - v + 1e-3);
          border++;
        }
      });
    }
    expect(interior).toBe(20 * 9 * 2);
    expect(border).toBe(20 * 16 * 2);
    m.net.dispose();
  });
});
