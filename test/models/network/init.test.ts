import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { calibrateScale, EARLY_LIMIT, initNetwork, randomDenseState } from '../../../models/network/init.ts';
import { architectureSchema } from '../../../models/network/arch.ts';
import { archConfig, defaultConfig, windowStart } from '../../../models/network/network.ts';
import { createSolver } from '../../../models/network/solver.ts';
import { initBackend } from '../../../models/tf/backend.ts';
import { spikesToInputs } from '../../../models/solvers/spike-tensors.ts';
import { mulberry } from '../rng.ts';

beforeAll(async () => {
  await initBackend({ prefer: 'cpu' });
});

function data(seed: number, n: number, f: number): Float32Array {
  const rnd = mulberry(seed);
  return Float32Array.from({ length: n * f }, () => rnd());
}

describe('initNetwork', () => {
  it('is deterministic for a seed and different across seeds', () => {
    const cfg = defaultConfig([8, 6, 3]);
    const x = data(3, 50, 8);
    const solver = createSolver('dstd', { bins: 8 });
    const [a, b, c] = [1, 1, 2].map((seed) => initNetwork(cfg, { x, n: 50 }, solver, { seed }));
    expect(a!.states()).toEqual(b!.states());
    expect(a!.states()[0]!.pE).not.toEqual(c!.states()[0]!.pE);
    [a, b, c].forEach((n) => n!.dispose());
  });

  it('draws weights with the requested mean and splits them by sign', () => {
    const cfg = defaultConfig([400, 50, 3]);
    const s = randomDenseState(cfg, 0, 7, 0.5);
    let mean = 0;
    for (let k = 0; k < s.pE.length; k++) {
      expect(s.pE[k]! === 0 || s.pI[k]! === 0).toBe(true);
      mean += s.pE[k]! - s.pI[k]!;
    }
    expect(mean / s.pE.length).toBeCloseTo(0.5, 1);
  });

  it('calibrates every layer so that its median spike lands at the target inside its window', () => {
    for (const model of ['pnn', 'ideal'] as const) {
      const cfg = defaultConfig([10, 12, 4], { model });
      const x = data(5, 120, 10);
      const solver = createSolver('exact');
      const net = initNetwork(cfg, { x, n: 120 }, solver, { seed: 3, targetFraction: 0.5, outputTargetFraction: 0.3 });
      const medians = tf.tidy(() => {
        const f = net.forward(net.encode(x, 120), solver);
        return f.spikes.map((s) => {
          const t = Float32Array.from(s.times.dataSync()).sort();
          return 0.5 * (t[t.length / 2 - 1]! + t[t.length / 2]!);
        });
      });
      const want = [0.5, 0.3].map((frac, l) => windowStart(cfg, l) + frac * (cfg.horizons[l]! - windowStart(cfg, l)));
      medians.forEach((m, l) => expect(m).toBeCloseTo(want[l]!, 2));
      net.dispose();
    }
  });

  it("sets the scales with a chip's firing levels and delays in place, which the layers then carry", () => {
    const cfg = defaultConfig([10, 12, 4]);
    const x = data(5, 120, 10);
    const solver = createSolver('exact');
    const levels = [
      { thresholdScale: Float32Array.from({ length: 12 }, (_, i) => 1.02 + 0.01 * (i % 5)), delay: new Float32Array(12).fill(0.01) },
      { thresholdScale: Float32Array.from([0.97, 1.05, 1.1, 1]), delay: Float32Array.from([0, 0.02, 0, 0.01]) },
    ];
    const plain = initNetwork(cfg, { x, n: 120 }, solver, { seed: 3, targetFraction: 0.5, outputTargetFraction: 0.3 });
    const chip = initNetwork(cfg, { x, n: 120 }, solver, { seed: 3, targetFraction: 0.5, outputTargetFraction: 0.3, neurons: levels });
    chip.states().forEach((s, l) => {
      expect(s.thresholdScale).toEqual(levels[l]!.thresholdScale);
      expect(s.delay).toEqual(levels[l]!.delay);
    });
    expect(plain.states()[0]!.thresholdScale).toBeUndefined();
    // Higher firing levels need more drive for the same median: the scale was set with them.
    expect(chip.states()[0]!.scale).toBeGreaterThan(plain.states()[0]!.scale);
    const medians = tf.tidy(() =>
      chip.forward(chip.encode(x, 120), solver).spikes.map((s) => {
        const t = Float32Array.from(s.times.dataSync()).sort();
        return 0.5 * (t[t.length / 2 - 1]! + t[t.length / 2]!);
      }),
    );
    const want = [0.5, 0.3].map((frac, l) => windowStart(cfg, l) + frac * (cfg.horizons[l]! - windowStart(cfg, l)));
    medians.forEach((m, l) => expect(m).toBeCloseTo(want[l]!, 2));
    plain.dispose();
    chip.dispose();
  });

  it('rejects a target outside the window and too little calibration data', () => {
    const cfg = defaultConfig([3, 2]);
    const solver = createSolver('exact');
    expect(() => initNetwork(cfg, { x: data(1, 4, 3), n: 4 }, solver, { seed: 1, targetFraction: 1.2 })).toThrow(/targetFraction/);
    expect(() => initNetwork(cfg, { x: data(1, 2, 3), n: 4 }, solver, { seed: 1 })).toThrow(/calibration needs/);
  });
});

describe('initNetwork on a conv net', () => {
  /** 12x12 images, dark but for a bright blob at a random place (as Fashion-MNIST's dark background). */
  function blobs(seed: number, n: number): Float32Array {
    const rnd = mulberry(seed);
    const x = new Float32Array(n * 144);
    for (let s = 0; s < n; s++) {
      const cy = 3 + 6 * rnd();
      const cx = 3 + 6 * rnd();
      const r = 2 + 2 * rnd();
      for (let p = 0; p < 144; p++) {
        const d = Math.hypot(Math.floor(p / 12) - cy, (p % 12) - cx);
        x[s * 144 + p] = d < r ? 0.4 + 0.6 * rnd() : 0;
      }
    }
    return x;
  }
  const arch = {
    input: { height: 12, width: 12, channels: 1 },
    layers: [
      { type: 'conv', channels: 4, kernel: 3 },
      { type: 'pool', size: 2 },
      { type: 'conv', channels: 6, kernel: 3 },
      { type: 'pool', size: 2 },
      { type: 'dense', units: 8 },
      { type: 'dense', units: 4 },
    ],
  } as const;

  /** Per layer, the fraction of (image, neuron) pairs that fire in their window; and per output, the fraction of images it fires on. */
  function firing(net: ReturnType<typeof initNetwork>, x: Float32Array, n: number, solver: ReturnType<typeof createSolver>) {
    return tf.tidy(() => {
      const f = net.forward(net.encode(x, n), solver);
      const layers = f.spikes.map((s) => {
        const m = Array.from(s.mask.dataSync());
        return m.reduce((a, v) => a + v, 0) / m.length;
      });
      const out = f.spikes.at(-1)!;
      const m = out.mask.dataSync();
      const k = out.mask.shape[1]!;
      const perOutput = Array.from({ length: k }, (_, j) => Array.from({ length: n }, (_, b) => m[b * k + j]!).reduce((a, v) => a + v, 0) / n);
      const t = Array.from(out.times.dataSync()).filter((_, i) => m[i]);
      const mean = t.reduce((a, v) => a + v, 0) / t.length;
      const sd = Math.sqrt(t.reduce((a, v) => a + (v - mean) ** 2, 0) / t.length);
      return { layers, perOutput, sd };
    });
  }

  it('makes nearly every neuron of every layer fire on unseen images, where the median alone leaves dark positions silent', () => {
    const solver = createSolver('dstd', { bins: 8 });
    const cal = blobs(11, 32);
    const held = blobs(12, 64);
    for (const model of ['pnn', 'ideal'] as const) {
      const net = initNetwork(archConfig(architectureSchema.parse(arch), { model }), { x: cal, n: 32 }, solver, { seed: 2 });
      const r = firing(net, held, 64, solver);
      for (const f of r.layers) expect(f).toBeGreaterThan(0.88);
      for (const f of r.perOutput) expect(f).toBeGreaterThan(0.9);
      // Output times spread over the output window (width 1), not all at one instant.
      expect(r.sd).toBeGreaterThan(0.03);
      net.dispose();
    }
    // The previous initialisation: zeros silent and the median alone.
    const old = initNetwork(archConfig(architectureSchema.parse(arch), { silentZeros: true }), { x: cal, n: 32 }, solver, { seed: 2, fireFraction: null });
    const r = firing(old, held, 64, solver);
    expect(Math.min(...r.layers)).toBeLessThan(0.75);
    old.dispose();
  });

  it('raises a scale for the firing fraction only as far as its spikes stay after the window start', () => {
    const solver = createSolver('dstd', { bins: 8 });
    const strided = architectureSchema.parse({
      input: { height: 12, width: 12, channels: 1 },
      layers: [
        { type: 'conv', channels: 4, kernel: 5, stride: 2 },
        { type: 'conv', channels: 8, kernel: 3, stride: 2 },
        { type: 'dense', units: 4 },
      ],
    });
    const cfg = archConfig(strided);
    const cal = blobs(21, 16);
    const net = initNetwork(cfg, { x: cal, n: 16 }, solver, { seed: 3 });
    /** Fraction of the fired spikes of a layer that come before `start`. */
    const early = (l: number, x: tf.Tensor2D) =>
      tf.tidy(() => {
        const s = net.layers[l]!.forward(x, solver, { inputGrad: false });
        const m = s.mask.dataSync();
        const t = s.times.dataSync();
        let fired = 0;
        let before = 0;
        for (let k = 0; k < m.length; k++) {
          fired += m[k]!;
          if (m[k]! > 0.5 && t[k]! < windowStart(cfg, l)) before++;
        }
        return before / fired;
      });
    const x0 = net.encode(cal, 16);
    const x1 = tf.tidy(() => spikesToInputs(net.layers[0]!.forward(x0, solver, { inputGrad: false })));
    const layer = net.layers[1] as Parameters<typeof calibrateScale>[0];
    const start = windowStart(cfg, 1);
    const target = start + 0.6 * (cfg.horizons[1]! - start);
    // Raised for 95 % firing alone, a good share of the layer fires before its inputs have all arrived (56 % here).
    calibrateScale(layer, x1, solver, target, 0.95);
    const free = early(1, x1);
    // With the window start the raise stops at EARLY_LIMIT, or at the median scale's share if that is larger.
    calibrateScale(layer, x1, solver, target);
    const atMedian = early(1, x1);
    calibrateScale(layer, x1, solver, target, 0.95, start);
    const capped = early(1, x1);
    const limit = Math.max(EARLY_LIMIT, atMedian);
    expect(free).toBeGreaterThan(2 * limit);
    expect(capped).toBeLessThanOrEqual(limit + 1e-9);
    tf.dispose([x0, x1]);
    net.dispose();
  });

  it('with silent zeros, puts the median of the first spikes that can come at its target and keeps most of them inside the window', () => {
    // Silent zeros: a position over the dark background has no input and never fires. Counted at
    // the horizon, those positions drag the median up and the scale that meets it sends most of
    // the lit positions' spikes before the window start.
    const solver = createSolver('dstd', { bins: 8 });
    const strided = architectureSchema.parse({
      input: { height: 12, width: 12, channels: 1 },
      layers: [
        { type: 'conv', channels: 4, kernel: 3, stride: 2 },
        { type: 'dense', units: 4 },
      ],
    });
    const cfg = archConfig(strided, { silentZeros: true });
    const cal = blobs(31, 32);
    const start = windowStart(cfg, 0);
    const h = cfg.horizons[0]!;
    /** Layer 0 on `x`: fired times relative to its window, and how many outputs fire at a 1e6 times larger scale (those that can). */
    const layer0 = (net: ReturnType<typeof initNetwork>) =>
      tf.tidy(() => {
        const layer = net.layers[0] as Parameters<typeof calibrateScale>[0];
        const x = net.encode(cal, 32);
        const s = layer.forward(x, solver, { inputGrad: false });
        const m = s.mask.dataSync();
        const t = s.times.dataSync();
        const scale = layer.scale;
        layer.scale = scale * 1e6;
        const can = layer.forward(x, solver, { inputGrad: false }).mask.dataSync();
        layer.scale = scale;
        const rel: number[] = [];
        const among: number[] = [];
        for (let k = 0; k < m.length; k++) {
          if (m[k]! > 0.5) rel.push((t[k]! - start) / (h - start));
          if (can[k]! > 0.5) among.push(m[k]! > 0.5 ? (t[k]! - start) / (h - start) : 1);
        }
        among.sort((a, b) => a - b);
        return {
          canFire: among.length / m.length,
          early: rel.filter((v) => v < 0).length / rel.length,
          median: 0.5 * (among[Math.floor((among.length - 1) / 2)]! + among[Math.ceil((among.length - 1) / 2)]!),
        };
      });
    const now = initNetwork(cfg, { x: cal, n: 32 }, solver, { seed: 4, fireFraction: null });
    const before = initNetwork(cfg, { x: cal, n: 32 }, solver, { seed: 4, fireFraction: null, medianOverFireable: false });
    const a = layer0(now);
    const b = layer0(before);
    // The blobs leave a good share of the positions dark: the case this is about.
    expect(a.canFire).toBeLessThan(0.8);
    expect(a.canFire).toBeGreaterThan(0.2);
    expect(a.median).toBeCloseTo(0.6, 2);
    expect(a.early).toBeLessThan(0.25);
    // Over every position (dark ones at the horizon) the median of the lit ones lands early.
    expect(b.early).toBeGreaterThan(0.6);
    expect(b.median).toBeLessThan(0.1);
    now.dispose();
    before.dispose();
  });

  it('rejects a firing fraction outside (0, 1] and an early limit outside [0, 1)', () => {
    const cfg = archConfig(architectureSchema.parse(arch));
    expect(() => initNetwork(cfg, { x: blobs(1, 4), n: 4 }, createSolver('dstd', { bins: 8 }), { seed: 1, fireFraction: 1.5 })).toThrow(/fireFraction/);
    expect(() => initNetwork(cfg, { x: blobs(1, 4), n: 4 }, createSolver('dstd', { bins: 8 }), { seed: 1, earlyLimit: 1 })).toThrow(/earlyLimit/);
  });
});
