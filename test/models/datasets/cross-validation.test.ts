import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { foldCountProblem, foldParts, stratifiedFolds, type PooledDataset } from '../../../models/datasets/cross-validation.ts';

describe('stratifiedFolds', () => {
  it('deals every class over the folds evenly, for any labels and fold count', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 200 }), fc.integer({ min: 2, max: 9 }), fc.integer(), (labels, k, seed) => {
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
      }),
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
