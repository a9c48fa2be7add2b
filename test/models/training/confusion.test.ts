import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { addConfusion, classFigures, confusionAccuracy, confusionJson, confusionMatrix } from '../../../models/training/confusion.ts';

describe('confusionMatrix', () => {
  // 3 classes, 8 samples, worked out by hand: rows true class, columns predicted, last column no spike.
  const labels = [0, 0, 0, 1, 1, 2, 2, 2];
  const preds = [0, 0, 1, 1, -1, 2, 1, 1];
  const cm = confusionMatrix(labels, preds, 3);

  it('counts (true, predicted) pairs with silence in its own column', () => {
    expect(Array.from(cm.counts)).toEqual([2, 1, 0, 0, 0, 1, 0, 1, 0, 2, 1, 0]);
    expect(cm.n).toBe(8);
    expect(confusionAccuracy(cm)).toBe(4 / 8);
  });

  it('gives per-class recall, precision, silence and the most frequent confusion', () => {
    const f = classFigures(cm);
    expect(f.map((c) => c.support)).toEqual([3, 2, 3]);
    expect(f.map((c) => c.recall)).toEqual([2 / 3, 1 / 2, 1 / 3]);
    // Class 1 is predicted 4 times (once right), class 2 once (right), class 0 twice (both right).
    expect(f.map((c) => c.precision)).toEqual([1, 1 / 4, 1]);
    expect(f.map((c) => c.noSpike)).toEqual([0, 1, 0]);
    expect(f.map((c) => [c.confusedWith, c.confusedCount])).toEqual([
      [1, 1],
      [-1, 0],
      [1, 2],
    ]);
  });

  it('marks classes without samples or predictions as NaN and breaks confusion ties toward the lower class', () => {
    const f = classFigures(confusionMatrix([1, 1], [0, 2], 3));
    expect(f[0]!.recall).toBeNaN();
    expect(f[1]!.precision).toBeNaN();
    expect([f[1]!.confusedWith, f[1]!.confusedCount]).toEqual([0, 1]);
    expect(confusionAccuracy(confusionMatrix([], [], 2))).toBeNaN();
  });

  it('refuses mismatched lengths, labels and predictions outside the classes, naming the sample', () => {
    expect(() => confusionMatrix([0, 1], [0], 2)).toThrow(/2 labels but 1 predictions/);
    expect(() => confusionMatrix([0, 2], [0, 0], 2)).toThrow(/label 1 is 2; labels must be class indices 0\.\.1/);
    expect(() => confusionMatrix([0, 1], [0, -2], 2)).toThrow(/prediction 1 is -2/);
    expect(() => confusionMatrix([0.5], [0], 2)).toThrow(/label 0 is 0\.5/);
    expect(() => confusionMatrix([0], [0], 0)).toThrow(/classes must be/);
  });

  it('adds matrices cell by cell (pooled cross-validation folds) and refuses other class counts', () => {
    const sum = addConfusion(cm, confusionMatrix([2, 0], [2, -1], 3));
    expect(sum.n).toBe(10);
    expect(sum.counts[2 * 4 + 2]).toBe(2);
    expect(sum.counts[0 * 4 + 3]).toBe(1);
    expect(() => addConfusion(cm, confusionMatrix([0], [0], 2))).toThrow(/3-class matrix to a 2-class/);
  });

  it('writes rows of counts with class names, and refuses a wrong number of names', () => {
    expect(confusionJson(cm, ['a', 'b', 'c'])).toEqual({
      classes: ['a', 'b', 'c'],
      columns: ['a', 'b', 'c', 'no spike'],
      rows: [
        [2, 1, 0, 0],
        [0, 1, 0, 1],
        [0, 2, 1, 0],
      ],
      n: 8,
    });
    expect(() => confusionJson(cm, ['a', 'b'])).toThrow(/2 class names for 3 classes/);
  });

  it('random samples: rows sum to the class counts, the diagonal to the matches, recall averages to accuracy', () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 1, max: 6 })
          .chain((k) =>
            fc.tuple(fc.constant(k), fc.array(fc.tuple(fc.integer({ min: 0, max: k - 1 }), fc.integer({ min: -1, max: k - 1 })), { maxLength: 60 })),
          ),
        ([k, pairs]) => {
          const m = confusionMatrix(
            pairs.map((p) => p[0]),
            pairs.map((p) => p[1]),
            k,
          );
          const figs = classFigures(m);
          let total = 0;
          for (let t = 0; t < k; t++) {
            expect(figs[t]!.support).toBe(pairs.filter((p) => p[0] === t).length);
            expect(figs[t]!.noSpike).toBe(pairs.filter((p) => p[0] === t && p[1] === -1).length);
            total += figs[t]!.support;
          }
          expect(total).toBe(pairs.length);
          const right = pairs.filter((p) => p[0] === p[1]).length;
          if (pairs.length > 0) {
            expect(confusionAccuracy(m)).toBe(right / pairs.length);
            // Support-weighted mean recall is the accuracy.
            const weighted = figs.reduce((s, f) => s + (f.support > 0 ? f.recall * f.support : 0), 0) / pairs.length;
            expect(weighted).toBeCloseTo(right / pairs.length, 12);
          }
        },
      ),
    );
  });
});
