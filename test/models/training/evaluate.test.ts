import { beforeAll, describe, expect, it } from 'vitest';
import { initNetwork } from '../../../models/network/init.ts';
import { defaultConfig } from '../../../models/network/network.ts';
import { createSolver } from '../../../models/network/solver.ts';
import { evaluateNetwork } from '../../../models/training/evaluate.ts';
import { initBackend } from '../../../models/tf/backend.ts';
import { toySet } from './toy-set.ts';

beforeAll(async () => {
  await initBackend({ prefer: 'cpu' });
});

describe('evaluateNetwork', () => {
  it('reports each batch to onBatch without changing the result', () => {
    const data = toySet(3, 32);
    const solver = createSolver('dstd', { bins: 12 });
    const net = initNetwork(defaultConfig([6, 8, 2]), { x: data.x, n: 32 }, solver, { seed: 1 });
    const batches: number[] = [];
    const small = evaluateNetwork(net, data, solver, { batchSize: 5, onBatch: (n) => batches.push(n) });
    expect(batches).toEqual([5, 5, 5, 5, 5, 5, 2]);
    // Without the hook, and in other batches: a sample's spike times do not depend on its batch (layerGrid).
    const plain = evaluateNetwork(net, data, solver, { batchSize: 32 });
    expect(small.acc).toBe(plain.acc);
    // The loss is summed batch by batch: equal up to the order of that float64 sum.
    expect(small.loss).toBeCloseTo(plain.loss, 12);
    expect(Array.from(small.predictions)).toEqual(Array.from(plain.predictions));
    expect(small.n).toBe(32);
    net.dispose();
  });
});
