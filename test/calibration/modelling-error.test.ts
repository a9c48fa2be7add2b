/** errorTail: the worst pairs of a residual set and their share of the squared error, by hand. */
import { describe, expect, it } from 'vitest';
import { emptyResiduals, errorTail, type ResidualSet } from '../../calibration/modelling-error.ts';

function set(errors: number[]): ResidualSet {
  const r = emptyResiduals();
  errors.forEach((e, k) => {
    r.measured.push(100 + k);
    r.predicted.push(100 + k + e);
    r.layer.push(0);
    r.neuron.push(k % 3);
    r.pattern.push(k);
  });
  return r;
}

describe('errorTail', () => {
  it('takes the largest |error| first and splits the squared error', () => {
    // squares: 1, 4, 100, 0.25, 9 -> total 114.25
    const t = errorTail(set([1, -2, 10, 0.5, -3]), 0.4);
    expect(t.worst).toEqual([2, 4]);
    expect(t.share).toBeCloseTo(109 / 114.25, 12);
    expect(t.rmseRestTicks).toBeCloseTo(Math.sqrt(5.25 / 3), 12);
  });

  it('keeps at least one pair, and handles an empty or error-free set', () => {
    expect(errorTail(set([0.1, 0.2, 0.3]), 0.01).worst).toEqual([2]);
    const none = errorTail(set([]), 0.01);
    expect(none.worst).toEqual([]);
    expect(none.share).toBe(0);
    expect(Number.isNaN(none.rmseRestTicks)).toBe(true);
    const exact = errorTail(set([0, 0]), 0.5);
    expect(exact.share).toBe(0);
    expect(exact.rmseRestTicks).toBe(0);
    expect(Number.isNaN(errorTail(set([4]), 1).rmseRestTicks)).toBe(true);
  });

  it('refuses a fraction outside [0, 1]', () => {
    expect(() => errorTail(set([1]), 1.5)).toThrow(/fraction must be in \[0, 1\], got 1.5/);
    expect(() => errorTail(set([1]), Number.NaN)).toThrow(/fraction/);
  });
});
