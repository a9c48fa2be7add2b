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
    // Same batches without the hook. (Other batch sizes can differ in float rounding: a layer with a
    // time offset extends its grid back to the batch's earliest input (layerGrid), so its times are
    // computed from a batch-dependent origin, which can flip a neuron that only grazes its threshold.)
    const plain = evaluateNetwork(net, data, solver, { batchSize: 5 });
    expect(small.acc).toBe(plain.acc);
    expect(small.loss).toBe(plain.loss);
    expect(Array.from(small.predictions)).toEqual(Array.from(plain.predictions));
    expect(small.n).toBe(32);
    net.dispose();
  });
});
