import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { finishDataset, holdOut, partIndices, stratifiedSplit, stratifiedSubset } from '../../../models/datasets/split.ts';
import type { DatasetPart, RawDataset } from '../../../models/datasets/types.ts';

const labelsArb = fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 200 });

describe('stratifiedSubset', () => {
  it('takes k positions, keeps order, and gives each class its share within one', () => {
    fc.assert(
      fc.property(labelsArb, fc.nat(), (ys, kRaw) => {
        const y = Uint8Array.from(ys);
        const k = kRaw % (y.length + 1);
        const idx = stratifiedSubset(y, 5, k);
        expect(idx.length).toBe(k);
        for (let i = 1; i < idx.length; i++) expect(idx[i]!).toBeGreaterThan(idx[i - 1]!);
        for (let c = 0; c < 5; c++) {
          const total = ys.filter((v) => v === c).length;
          const got = [...idx].filter((i) => y[i] === c).length;
          expect(Math.abs(got - (k * total) / y.length)).toBeLessThan(1);
          // the earliest members of each class are the ones taken
          const firsts = ys
            .map((v, i) => (v === c ? i : -1))
            .filter((i) => i >= 0)
            .slice(0, got);
          expect([...idx].filter((i) => y[i] === c)).toEqual(firsts);
        }
      }),
    );
  });

  it('10 balanced classes, k = 100: exactly 10 each', () => {
    const y = Uint8Array.from({ length: 1000 }, (_, i) => i % 10);
    const idx = stratifiedSubset(y, 10, 100);
    const counts = new Array(10).fill(0);
    idx.forEach((i) => counts[y[i]!]++);
    expect(counts).toEqual(new Array(10).fill(10));
  });
});

describe('stratifiedSplit', () => {
  it('partitions the indices with the requested test count per class', () => {
    fc.assert(
      fc.property(labelsArb, fc.integer(), (ys, seed) => {
        const y = Uint8Array.from(ys);
        const { train, test } = stratifiedSplit(y, 5, (c) => Math.floor(c / 3), seed);
        expect([...train, ...test].sort((a, b) => a - b)).toEqual(ys.map((_, i) => i));
        for (let c = 0; c < 5; c++) {
          const total = ys.filter((v) => v === c).length;
          expect([...test].filter((i) => y[i] === c).length).toBe(Math.floor(total / 3));
        }
      }),
      { numRuns: 50 },
    );
  });
});

describe('finishDataset', () => {
  const raw = (): RawDataset => ({
    name: 'toy',
    source: 'test',
    split: 'toy split',
    features: 2,
    classes: 2,
    shape: [1, 2, 1],
    classNames: ['a', 'b'],
    train: { x: Uint8Array.from([0, 255, 51, 102, 0, 0, 255, 255]), y: Uint8Array.from([0, 1, 0, 1]), n: 4 },
    test: { x: Uint8Array.from([255, 0]), y: Uint8Array.from([1]), n: 1 },
  });

  it('scales uint8 by 1/255 and copies shape and names', () => {
    const ds = finishDataset(raw());
    expect(ds.train.x[1]).toBe(1);
    expect(ds.train.x[2]).toBeCloseTo(0.2, 6);
    expect(ds.train.name).toBe('toy/train');
    expect(ds.test.shape).toEqual([1, 2, 1]);
    expect(ds.train.classNames).toEqual(['a', 'b']);
  });

  it('limits are stratified; seed reorders reproducibly; the split note says so', () => {
    const ds = finishDataset(raw(), { limitTrain: 2 });
    expect([...ds.train.y].sort()).toEqual([0, 1]);
    expect(ds.split).toMatch(/stratified subset 2\/1 of 4\/1/);
    const a = finishDataset(raw(), { seed: 3 });
    const b = finishDataset(raw(), { seed: 3 });
    expect([...a.train.x]).toEqual([...b.train.x]);
    expect(a.split).toMatch(/seed 3/);
  });

  it('rejects negative or fractional limits', () => {
    expect(() => finishDataset(raw(), { limitTrain: -1 })).toThrow(/limitTrain must be a non-negative integer, got -1/);
    expect(() => finishDataset(raw(), { limitTest: 1.5 })).toThrow(/limitTest/);
  });

  it('does not alias the raw arrays (callers may mutate their copy)', () => {
    const r = raw();
    r.train.x = Float32Array.from([0, 1, 0.5, 0.5, 0, 0, 1, 1]);
    const ds = finishDataset(r);
    ds.train.x[0] = 9;
    expect(r.train.x[0]).toBe(0);
  });
});

describe('unseen training samples (LoadOptions.unseenTrain)', () => {
  // Each row's one feature is its position in the raw training part (scaled), so rows can be identified
  // after any reordering; labels cycle over 4 classes with unequal counts.
  const N = 203;
  const raw = (): RawDataset => ({
    name: 'ids',
    source: 'test',
    split: 'ids split',
    features: 1,
    classes: 4,
    classNames: ['a', 'b', 'c', 'd'],
    train: { x: Float32Array.from({ length: N }, (_, i) => i / 1000), y: Uint8Array.from({ length: N }, (_, i) => (i % 7) % 4), n: N },
    test: { x: Float32Array.from([0]), y: Uint8Array.from([0]), n: 1 },
  });
  const ids = (x: Float32Array) => Array.from(x, (v) => Math.round(v * 1000));

  it('partIndices names the raw rows a load keeps, in its order', () => {
    for (const o of [{ limitTrain: 50, seed: 9 }, { seed: 9 }, { limitTrain: 50 }]) {
      const ds = finishDataset(raw(), o);
      expect(Array.from(partIndices(raw(), 'train', o.limitTrain, o.seed)!)).toEqual(ids(ds.train.x));
    }
    expect(partIndices(raw(), 'train', undefined, undefined)).toBeUndefined();
  });

  it('takes samples outside this load and outside the earlier load, stratified and reproducible', () => {
    const seen = new Set(ids(finishDataset(raw(), { limitTrain: 80, seed: 5 }).train.x));
    const ds = finishDataset(raw(), { limitTrain: 40, seed: 11, unseenTrain: { count: 30, seenSeed: 5, seenLimit: 80 } });
    const own = new Set(ids(ds.train.x));
    const u = ds.unseen!;
    expect(u.n).toBe(30);
    expect(ids(u.x)).toEqual(Array.from(u.rows));
    expect(new Set(u.rows).size).toBe(30);
    for (const r of u.rows) {
      expect(seen.has(r)).toBe(false);
      expect(own.has(r)).toBe(false);
      expect(u.y[Array.from(u.rows).indexOf(r)]).toBe(raw().train.y[r]);
    }
    // Each class keeps its share of the training part within one sample.
    const counts = [0, 0, 0, 0];
    for (const c of raw().train.y) counts[c]!++;
    for (let c = 0; c < 4; c++) expect(Math.abs(u.y.filter((v) => v === c).length - (30 * counts[c]!) / N)).toBeLessThanOrEqual(1);
    const again = finishDataset(raw(), { limitTrain: 40, seed: 11, unseenTrain: { count: 30, seenSeed: 5, seenLimit: 80 } });
    expect(Array.from(again.unseen!.rows)).toEqual(Array.from(u.rows));
    // The training part itself is what it is without the option.
    expect(ids(ds.train.x)).toEqual(ids(finishDataset(raw(), { limitTrain: 40, seed: 11 }).train.x));
  });

  it('gives what is left when fewer samples are free, and none when the earlier load held the whole part', () => {
    const few = finishDataset(raw(), { limitTrain: 100, seed: 2, unseenTrain: { count: 500, seenSeed: 7, seenLimit: 150 } });
    const taken = new Set([...ids(few.train.x), ...ids(finishDataset(raw(), { limitTrain: 150, seed: 7 }).train.x)]);
    expect(taken.size).toBeGreaterThan(150);
    expect(few.unseen!.n).toBe(N - taken.size);
    expect(finishDataset(raw(), { limitTrain: 10, unseenTrain: { count: 5 } }).unseen!.n).toBe(0);
  });
});

describe('holdOut', () => {
  // Row i holds the value i, so every row names its position.
  const part = (ys: number[]): DatasetPart => ({
    name: 'toy/train',
    x: Float32Array.from(ys, (_, i) => i),
    y: Uint8Array.from(ys),
    n: ys.length,
    features: 1,
    classes: 5,
    classNames: ['a', 'b', 'c', 'd', 'e'],
  });

  it('splits a part into two disjoint parts that together are the part, the validation classes in their share', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 2, maxLength: 200 }), fc.nat(), fc.nat(), (ys, kRaw, seed) => {
        const p = part(ys);
        const k = kRaw % p.n;
        const h = holdOut(p, k, seed);
        expect(h.val.n).toBe(k);
        expect(h.train.n).toBe(p.n - k);
        const rows = [...Array.from(h.train.x), ...Array.from(h.val.x)].sort((a, b) => a - b);
        expect(rows).toEqual(ys.map((_, i) => i));
        // The rows and labels are the part's at the indices given; the training rest keeps the part's order.
        expect(Array.from(h.val.x)).toEqual(Array.from(h.valIndices));
        expect(Array.from(h.train.x)).toEqual(Array.from(h.trainIndices));
        expect(Array.from(h.trainIndices)).toEqual([...h.trainIndices].sort((a, b) => a - b));
        h.valIndices.forEach((i, r) => expect(h.val.y[r]).toBe(ys[i]));
        for (let c = 0; c < 5; c++) {
          const share = (k * ys.filter((v) => v === c).length) / p.n;
          expect(Math.abs(h.val.y.filter((v) => v === c).length - share)).toBeLessThan(1);
        }
        // The same seed carves the same samples (a resumed run's split).
        expect(Array.from(holdOut(p, k, seed).valIndices)).toEqual(Array.from(h.valIndices));
      }),
    );
  });

  it('refuses a split that leaves no training sample', () => {
    expect(() => holdOut(part([0, 1, 2]), 3, 1)).toThrow(/3 samples does not fit a training part of 3/);
    expect(() => holdOut(part([0, 1, 2]), -1, 1)).toThrow(/does not fit/);
  });
});
