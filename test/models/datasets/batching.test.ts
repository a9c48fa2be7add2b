import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { batches, epochOrder, gatherLabels, gatherRows, miniBatches } from '../../../models/datasets/batching.ts';

describe('miniBatches', () => {
  it('visits every index exactly once, in order, in batches of the given size', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 1, max: 64 }), (n, bs) => {
        const seen: number[] = [];
        const sizes: number[] = [];
        for (const b of miniBatches(n, bs)) {
          seen.push(...b);
          sizes.push(b.length);
        }
        expect(seen).toEqual(Array.from({ length: n }, (_, i) => i));
        expect(sizes.length).toBe(Math.ceil(n / bs));
        sizes.slice(0, -1).forEach((s) => expect(s).toBe(bs));
      }),
      { numRuns: 60 },
    );
  });

  it('dropLast skips the short final batch', () => {
    const sizes = [...miniBatches(10, 4, { dropLast: true })].map((b) => b.length);
    expect(sizes).toEqual([4, 4]);
  });

  it('rejects a bad batch size', () => {
    expect(() => miniBatches(10, 0).next()).toThrow(/batchSize/);
  });
});

describe('epochOrder', () => {
  it('is deterministic per (seed, epoch) and differs between epochs', () => {
    expect([...epochOrder(50, 1, 0)]).toEqual([...epochOrder(50, 1, 0)]);
    expect([...epochOrder(50, 1, 0)]).not.toEqual([...epochOrder(50, 1, 1)]);
    expect([...epochOrder(50, 1, 0)]).not.toEqual([...epochOrder(50, 2, 0)]);
  });
});

describe('gather', () => {
  it('packs the chosen rows and labels', () => {
    const x = Float32Array.from([0, 1, 10, 11, 20, 21]);
    expect([...gatherRows(x, 2, [2, 0])]).toEqual([20, 21, 0, 1]);
    expect([...gatherLabels(Uint8Array.from([5, 6, 7]), [2, 2, 1])]).toEqual([7, 7, 6]);
  });

  it('batches() keeps rows and labels paired', () => {
    const n = 37;
    const features = 3;
    const x = new Float32Array(n * features);
    const y = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      y[i] = i % 7;
      for (let f = 0; f < features; f++) x[i * features + f] = i * 10 + f;
    }
    let total = 0;
    for (const b of batches({ x, y, n, features }, 8, { seed: 4, epoch: 2 })) {
      for (let r = 0; r < b.size; r++) {
        const i = b.x[r * features]! / 10;
        expect(b.indices[r]).toBe(i);
        expect(b.y[r]).toBe(i % 7);
      }
      total += b.size;
    }
    expect(total).toBe(n);
  });
});
