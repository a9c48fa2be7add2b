import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { foldCountProblem, foldParts, loadPooledDataset, stratifiedFolds, type PooledDataset } from '../../../models/datasets/cross-validation.ts';
import { loadIris, readIrisSamples } from '../../../models/datasets/iris.ts';

describe('stratifiedFolds', () => {
  it('deals every class over the folds evenly, for any labels and fold count', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 200 }),
        fc.integer({ min: 2, max: 9 }),
        fc.integer(),
        (labels, k, seed) => {
          const y = Uint8Array.from(labels);
          const folds = stratifiedFolds(y, 4, k, seed);
          expect(folds.length).toBe(y.length);
          const sizes = new Array(k).fill(0);
          for (let c = 0; c < 4; c++) {
            const per = new Array(k).fill(0);
            y.forEach((v, i) => {
              if (v === c) per[folds[i]!]++;
            });
            expect(Math.max(...per) - Math.min(...per)).toBeLessThanOrEqual(1);
          }
          folds.forEach((f) => {
            expect(f).toBeLessThan(k);
            sizes[f]++;
          });
          expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('is reproducible for a seed and differs between seeds', () => {
    const y = Uint8Array.from({ length: 60 }, (_, i) => i % 3);
    expect(stratifiedFolds(y, 3, 5, 7)).toEqual(stratifiedFolds(y, 3, 5, 7));
    expect(stratifiedFolds(y, 3, 5, 7)).not.toEqual(stratifiedFolds(y, 3, 5, 8));
  });

  it('refuses fold counts outside [2, 255]', () => {
    expect(() => stratifiedFolds(new Uint8Array(4), 1, 1, 0)).toThrow(/folds/);
  });
});

describe('foldCountProblem', () => {
  it('names the smallest class and a fold count that works', () => {
    const y = Uint8Array.from([0, 0, 0, 0, 1, 1, 1]);
    expect(foldCountProblem(y, 2, ['a', 'b'], 3)).toBeUndefined();
    expect(foldCountProblem(y, 2, ['a', 'b'], 4)).toMatch(/class b has 3; use --cv 3/);
  });
});

describe('foldParts', () => {
  // Raw values 0..9 in one feature, two classes; min-max statistics must come from the training folds only.
  const pool: PooledDataset = {
    name: 't',
    source: 'test',
    x: Float32Array.from({ length: 10 }, (_, i) => i),
    y: Uint8Array.from({ length: 10 }, (_, i) => i % 2),
    n: 10,
    features: 1,
    classes: 2,
    classNames: ['even', 'odd'],
    scaling: 'min-max-per-fold',
    part: 'all',
    sampleIndex: Uint32Array.from({ length: 10 }, (_, i) => i),
  };
  it('holds out exactly the fold and scales with the other folds statistics', () => {
    const folds = Uint8Array.from([1, 1, 0, 0, 0, 0, 0, 0, 1, 1]);
    const p = foldParts(pool, folds, 1, 3);
    expect(Array.from(p.testIndices)).toEqual([0, 1, 8, 9]);
    expect(p.normalization).toEqual({ min: [2], max: [7] });
    // Held-out 0, 1 below the training range clip to 0; 8, 9 above clip to 1.
    expect(Array.from(p.test.x)).toEqual([0, 0, 1, 1]);
    expect(p.train.n).toBe(6);
    expect(Array.from(p.train.x).sort((a, b) => a - b)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1].map((v) => Math.fround(v)));
  });
});

describe('loadPooledDataset', () => {
  const rows = (x: ArrayLike<number>, n: number, f: number) => Array.from({ length: n }, (_, r) => Array.from({ length: f }, (_, j) => x[r * f + j]!));
  const sortRows = (r: number[][]) => r.map((v) => v.join(',')).sort();

  it('pools all 150 iris samples raw, in the package order', async () => {
    const pool = await loadPooledDataset('iris');
    const raw = readIrisSamples();
    expect(pool.part).toBe('all');
    expect(pool.n).toBe(150);
    expect(Array.from(pool.sampleIndex)).toEqual(Array.from({ length: 150 }, (_, i) => i));
    expect(Array.from(pool.x)).toEqual(Array.from(raw.x));
    expect(Array.from(pool.y)).toEqual(Array.from(raw.y));
  });

  it("with part train pools exactly the fixed split's 105 training samples, raw, and none of its test samples", async () => {
    const pool = await loadPooledDataset('iris', 'train');
    const raw = readIrisSamples();
    const iris = loadIris();
    expect(pool.part).toBe('train');
    expect(pool.n).toBe(105);
    expect(pool.scaling).toBe('min-max-per-fold');
    expect([0, 1, 2].map((c) => Array.from(pool.y).filter((v) => v === c).length)).toEqual([35, 35, 35]);
    // Each pooled row is the raw sample it names.
    const F = raw.features;
    pool.sampleIndex.forEach((i, r) => {
      expect(Array.from(pool.x.subarray(r * F, (r + 1) * F))).toEqual(Array.from(raw.x.subarray(i * F, (i + 1) * F)));
      expect(pool.y[r]).toBe(raw.y[i]);
    });
    // Scaled with the fixed split's statistics, the pool is the training part the loader gives (as a multiset of rows).
    const { min, max } = iris.normalization!;
    const scaled = rows(pool.x, pool.n, F).map((v) => v.map((x, j) => Math.fround((x - min[j]!) / (max[j]! - min[j]!))));
    expect(sortRows(scaled)).toEqual(sortRows(rows(iris.train.x, iris.train.n, F)));
    // The other 45 samples, scaled the same way, are the test part.
    const inPool = new Set(pool.sampleIndex);
    const rest = Array.from({ length: 150 }, (_, i) => i).filter((i) => !inPool.has(i));
    expect(rest).toHaveLength(45);
    const restScaled = rest.map((i) =>
      Array.from({ length: F }, (_, j) => Math.fround(Math.min(1, Math.max(0, (raw.x[i * F + j]! - min[j]!) / (max[j]! - min[j]!))))),
    );
    expect(sortRows(restScaled)).toEqual(sortRows(rows(iris.test.x, iris.test.n, F)));
  });
});
