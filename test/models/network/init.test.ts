import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { initNetwork, randomDenseState } from '../../../models/network/init.ts';
import { defaultConfig, windowStart } from '../../../models/network/network.ts';
import { createSolver } from '../../../models/network/solver.ts';
import { initBackend } from '../../../models/tf/backend.ts';
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

  it('rejects a target outside the window and too little calibration data', () => {
    const cfg = defaultConfig([3, 2]);
    const solver = createSolver('exact');
    expect(() => initNetwork(cfg, { x: data(1, 4, 3), n: 4 }, solver, { seed: 1, targetFraction: 1.2 })).toThrow(/targetFraction/);
    expect(() => initNetwork(cfg, { x: data(1, 2, 3), n: 4 }, solver, { seed: 1 })).toThrow(/calibration needs/);
  });
});
