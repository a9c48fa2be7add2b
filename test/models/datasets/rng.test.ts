import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { deriveSeed, fmix32, mulberry32, Rng, seededPermutation } from '../../../models/datasets/rng.ts';

// The widely published mulberry32 one-liner (Tommy Ettinger's algorithm), kept verbatim
// as an independent reference for the class implementation.
function referenceMulberry32(a: number) {
  return () => {
    a |= 0;
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('Rng', () => {
  it('matches the reference mulberry32 stream for any 32-bit seed', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (seed) => {
        const ref = referenceMulberry32(seed);
        const r = mulberry32(seed);
        for (let i = 0; i < 20; i++) expect(r()).toBe(ref());
      }),
    );
  });

  it('same seed, same stream; different seeds, different streams', () => {
    const a = new Rng(7);
    const b = new Rng(7);
    const c = new Rng(8);
    const sa = Array.from({ length: 10 }, () => a.nextUint32());
    expect(Array.from({ length: 10 }, () => b.nextUint32())).toEqual(sa);
    expect(Array.from({ length: 10 }, () => c.nextUint32())).not.toEqual(sa);
  });

  it('int(n) is uniform (chi-square, 10 bins, 100k draws)', () => {
    const r = new Rng(12345);
    const counts = new Array(10).fill(0);
    const N = 100_000;
    for (let i = 0; i < N; i++) counts[r.int(10)]++;
    const e = N / 10;
    const chi2 = counts.reduce((s, c) => s + ((c - e) * (c - e)) / e, 0);
    expect(chi2).toBeLessThan(27.88); // p = 0.001 for 9 degrees of freedom
  });

  it('int(n) stays in range for odd sizes, including 2^32', () => {
    const r = new Rng(1);
    for (const n of [1, 2, 3, 7, 1000003, 2 ** 31 + 1, 2 ** 32]) {
      for (let i = 0; i < 50; i++) {
        const v = r.int(n);
        expect(Number.isInteger(v) && v >= 0 && v < n).toBe(true);
      }
    }
    expect(() => r.int(0)).toThrow(RangeError);
    expect(() => r.int(2.5)).toThrow(RangeError);
  });

  it('shuffle of 3 elements gives the 6 orders equally often', () => {
    const r = new Rng(99);
    const counts = new Map<string, number>();
    const N = 60_000;
    for (let i = 0; i < N; i++) {
      const k = r.shuffle([0, 1, 2]).join('');
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    expect(counts.size).toBe(6);
    const e = N / 6;
    const chi2 = [...counts.values()].reduce((s, c) => s + ((c - e) * (c - e)) / e, 0);
    expect(chi2).toBeLessThan(20.52); // p = 0.001, 5 dof
  });

  it('permutation is a permutation', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 500 }), fc.integer(), (n, seed) => {
        const p = seededPermutation(n, seed);
        expect([...p].sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
      }),
      { numRuns: 50 },
    );
  });

  it('normal() has mean 0 and variance 1', () => {
    const r = new Rng(3);
    let s = 0;
    let s2 = 0;
    const N = 50_000;
    for (let i = 0; i < N; i++) {
      const v = r.normal();
      s += v;
      s2 += v * v;
    }
    expect(Math.abs(s / N)).toBeLessThan(0.03);
    expect(Math.abs(s2 / N - 1)).toBeLessThan(0.05);
  });

  it('rejects non-integer seeds with a message', () => {
    expect(() => new Rng(1.5)).toThrow(/seed must be an integer, got 1.5/);
    expect(() => new Rng(Number.NaN)).toThrow(/seed/);
  });

  it('seeds beyond 32 bits are not aliased to their low bits', () => {
    expect(new Rng(2 ** 32 + 5).nextUint32()).not.toBe(new Rng(5).nextUint32());
    expect(new Rng(-1).nextUint32()).not.toBe(new Rng(2 ** 32 - 1).nextUint32());
  });
});

describe('deriveSeed / fmix32', () => {
  it('fmix32 matches the murmur3 finaliser on known values', () => {
    // Reference values computed from MurmurHash3's fmix32 (C): fmix32(0) = 0, fmix32(1) = 0x514e28b7.
    expect(fmix32(0)).toBe(0);
    expect(fmix32(1)).toBe(0x514e28b7);
  });

  it('is deterministic and separates epochs and parts', () => {
    expect(deriveSeed(1, 2)).toBe(deriveSeed(1, 2));
    const seen = new Set<number>();
    for (let s = 0; s < 20; s++) for (let e = 0; e < 50; e++) seen.add(deriveSeed(s, e));
    expect(seen.size).toBe(1000);
    expect(deriveSeed(1, 2, 3)).not.toBe(deriveSeed(1, 3, 2));
  });
});
