import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { initNetwork } from '../../../models/network/init.ts';
import { defaultConfig, type SpikingNetwork } from '../../../models/network/network.ts';
import { createSolver } from '../../../models/network/solver.ts';
import { restoreWeights, snapshotWeights } from '../../../models/network/weights-snapshot.ts';
import { initBackend } from '../../../models/tf/backend.ts';
import { mulberry } from '../rng.ts';

beforeAll(async () => {
  await initBackend({ prefer: 'cpu' });
});

const made: SpikingNetwork[] = [];
afterEach(() => made.splice(0).forEach((n) => n.dispose()));

function net(sizes: number[], seed: number): SpikingNetwork {
  const rnd = mulberry(seed);
  const x = Float32Array.from({ length: 16 * sizes[0]! }, () => rnd());
  const n = initNetwork(defaultConfig(sizes), { x, n: 16 }, createSolver('dstd', { bins: 8 }), { seed });
  made.push(n);
  return n;
}

const values = (n: SpikingNetwork) => n.trainableVariables().map((v) => Array.from(v.dataSync()));

describe('weight snapshots', () => {
  it('copies every trainable variable, detached: later changes to the network do not reach the copy', () => {
    const a = net([6, 5, 3], 1);
    const before = values(a);
    const snap = snapshotWeights(a);
    expect(snap.map((w) => Array.from(w))).toEqual(before);
    restoreWeights(a, snapshotWeights(net([6, 5, 3], 2)));
    expect(values(a)).not.toEqual(before);
    expect(snap.map((w) => Array.from(w))).toEqual(before);
  });

  it('restores a snapshot bit for bit, and the network keeps its variables (same objects, new values)', () => {
    const a = net([6, 5, 3], 1);
    const vars = a.trainableVariables();
    const snap = snapshotWeights(a);
    const other = net([6, 5, 3], 2);
    restoreWeights(a, snapshotWeights(other));
    expect(values(a)).toEqual(values(other));
    restoreWeights(a, snap);
    expect(values(a)).toEqual(snap.map((w) => Array.from(w)));
    expect(a.trainableVariables().every((v, i) => v === vars[i])).toBe(true);
  });

  it('refuses a snapshot of another shape of network before changing any variable', () => {
    const a = net([6, 5, 3], 1);
    const before = values(a);
    expect(() => restoreWeights(a, snapshotWeights(net([6, 4, 3], 2)))).toThrow(/snapshot variable 0 holds 24 values/);
    expect(() => restoreWeights(a, snapshotWeights(a).slice(1))).toThrow(/snapshot of 3 variables does not fit a network of 4/);
    const wrongLast = snapshotWeights(a);
    wrongLast[3] = new Float32Array(2);
    expect(() => restoreWeights(a, wrongLast)).toThrow(/snapshot variable 3/);
    expect(values(a)).toEqual(before);
  });
});
