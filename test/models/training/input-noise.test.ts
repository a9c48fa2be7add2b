import { beforeAll, describe, expect, it } from 'vitest';
import { initNetwork } from '../../../models/network/init.ts';
import { defaultConfig } from '../../../models/network/network.ts';
import { createSolver } from '../../../models/network/solver.ts';
import { noisyInputs } from '../../../models/training/input-noise.ts';
import { trainNetwork } from '../../../models/training/trainer.ts';
import { initBackend } from '../../../models/tf/backend.ts';
import { expectOffAtZeroAndRepeatable, toySet } from './toy-set.ts';

beforeAll(async () => {
  await initBackend({ prefer: 'cpu' });
});

const base = { seed: 3, epoch: 0, batch: 0, keepZeros: false };

describe('noisyInputs', () => {
  it('adds zero-mean noise of the given standard deviation away from the edges', () => {
    const n = 200_000;
    const x = new Float32Array(n).fill(0.5);
    const y = noisyInputs(x, { ...base, std: 0.05 });
    let s = 0;
    let s2 = 0;
    for (let i = 0; i < n; i++) {
      const d = y[i]! - 0.5;
      s += d;
      s2 += d * d;
    }
    const mean = s / n;
    const std = Math.sqrt(s2 / n - mean * mean);
    // Standard errors: mean 0.05 / sqrt(n) = 1.1e-4, std about 0.05 / sqrt(2n) = 7.9e-5.
    expect(Math.abs(mean)).toBeLessThan(5e-4);
    expect(Math.abs(std - 0.05)).toBeLessThan(4e-4);
    // A normal's tails: about 4.55 % beyond two standard deviations.
    let beyond = 0;
    for (let i = 0; i < n; i++) if (Math.abs(y[i]! - 0.5) > 0.1) beyond++;
    expect(beyond / n).toBeGreaterThan(0.0435);
    expect(beyond / n).toBeLessThan(0.0475);
  });

  it('clips to [0, 1], leaves its input alone and returns the input itself when off', () => {
    const x = Float32Array.from({ length: 10_000 }, (_, i) => (i % 2 ? 0.98 : 0.02));
    const copy = Float32Array.from(x);
    const y = noisyInputs(x, { ...base, std: 0.2 });
    expect(x).toEqual(copy);
    expect(Math.min(...y)).toBe(0);
    expect(Math.max(...y)).toBe(1);
    expect(noisyInputs(x, { ...base, std: 0 })).toBe(x);
  });

  it('keeps silent inputs silent with keepZeros, and moves them without it', () => {
    const x = Float32Array.from({ length: 1000 }, (_, i) => (i % 2 ? 0 : 0.5));
    const kept = noisyInputs(x, { ...base, std: 0.1, keepZeros: true });
    const moved = noisyInputs(x, { ...base, std: 0.1, keepZeros: false });
    for (let i = 1; i < x.length; i += 2) expect(kept[i]).toBe(0);
    // Half of the zeros go up (the other half clip back to 0).
    const up = Array.from(moved).filter((v, i) => i % 2 === 1 && v > 0).length;
    expect(up).toBeGreaterThan(200);
    expect(up).toBeLessThan(300);
    // Non-zero values are perturbed in both.
    expect(kept.filter((v, i) => i % 2 === 0 && v !== 0.5).length).toBe(500);
  });

  it('is the same for the same (seed, epoch, batch) and differs when any of them changes', () => {
    const x = new Float32Array(64).fill(0.5);
    const a = noisyInputs(x, { ...base, std: 0.1 });
    expect(noisyInputs(x, { ...base, std: 0.1 })).toEqual(a);
    for (const change of [{ seed: 4 }, { epoch: 1 }, { batch: 1 }]) expect(noisyInputs(x, { ...base, std: 0.1, ...change })).not.toEqual(a);
  });

  it('refuses a negative or non-finite standard deviation', () => {
    const x = new Float32Array(4);
    for (const std of [-0.1, Number.NaN, Number.POSITIVE_INFINITY])
      expect(() => noisyInputs(x, { ...base, std })).toThrow(/input noise std must be finite and >= 0.*got/);
  });
});

describe('trainNetwork with inputNoise', () => {
  it('is off at 0, changes the path when on, and repeats exactly for a seed', async () => {
    await expectOffAtZeroAndRepeatable('inputNoise', 0.1);
  });

  it('refuses a standard deviation outside [0, 1)', async () => {
    const trainPart = toySet(1, 8);
    const solver = createSolver('exact');
    const net = initNetwork(defaultConfig([6, 2]), { x: trainPart.x, n: 8 }, solver, { seed: 1 });
    for (const inputNoise of [1, -0.05, Number.NaN]) {
      const run = trainNetwork(net, { train: trainPart }, { epochs: 1, batchSize: 4, lr: 0.1, seed: 1, solver, inputNoise });
      await expect(run).rejects.toThrow(new RegExp(`inputNoise must lie in \\[0, 1\\).*got ${inputNoise}`));
    }
    net.dispose();
  });
});
