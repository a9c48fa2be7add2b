import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ttfsTicks, ttfsTimes } from '../../../models/datasets/coding.ts';
import { SILENT_TICK } from '../../../wire/ticks.ts';

describe('ttfsTimes', () => {
  it('follows t = tIn (1 - x)', () => {
    const t = ttfsTimes([0, 0.25, 0.5, 1], { tIn: 8 });
    expect([...t]).toEqual([8, 6, 4, 0]);
  });

  it('silences values at or below the threshold', () => {
    const t = ttfsTimes([0, 0.1, 0.2, 1], { tIn: 1, silentThreshold: 0.1 });
    expect(t[0]).toBe(Infinity);
    expect(t[1]).toBe(Infinity);
    expect(t[2]).toBeCloseTo(0.8, 6);
    expect(t[3]).toBe(0);
    expect(ttfsTimes([0], { tIn: 1, silentThreshold: 0 })[0]).toBe(Infinity);
    expect(ttfsTimes([0], { tIn: 1 })[0]).toBe(1);
  });

  it('is monotone: brighter is never later; all times inside [0, tIn]', () => {
    fc.assert(
      fc.property(
        fc.float({ min: 0, max: 1, noNaN: true }),
        fc.float({ min: 0, max: 1, noNaN: true }),
        fc.double({ min: 1e-6, max: 1e6, noNaN: true }),
        (a, b, tIn) => {
          const [ta, tb] = ttfsTimes([a, b], { tIn });
          if (a <= b) expect(ta!).toBeGreaterThanOrEqual(tb!);
          expect(ta!).toBeGreaterThanOrEqual(0);
          expect(ta!).toBeLessThanOrEqual(Math.fround(tIn));
        },
      ),
    );
  });

  it('writes into a provided buffer', () => {
    const out = new Float32Array(2);
    expect(ttfsTimes([1, 0], { tIn: 2 }, out)).toBe(out);
    expect([...out]).toEqual([0, 2]);
    expect(() => ttfsTimes([1], { tIn: 2 }, out)).toThrow(/out has 2 elements/);
  });

  it('rejects bad values and options by name', () => {
    expect(() => ttfsTimes([0.5, 1.5], { tIn: 1 })).toThrow(/input 1 is 1.5/);
    expect(() => ttfsTimes([Number.NaN], { tIn: 1 })).toThrow(/input 0 is NaN/);
    expect(() => ttfsTimes([-0.1], { tIn: 1 })).toThrow(/input 0/);
    expect(() => ttfsTimes([0.5], { tIn: 0 })).toThrow(/tIn/);
    expect(() => ttfsTimes([0.5], { tIn: Infinity })).toThrow(/tIn/);
  });
});

describe('ttfsTicks', () => {
  it('rounds horizon (1 - x) to the nearest tick; silent is 0xFFFF', () => {
    const t = ttfsTicks([0, 1, 0.5, 0.3, 0.001], { horizonTicks: 1000, silentThreshold: 0.0005 });
    expect([...t]).toEqual([SILENT_TICK, 0, 500, 700, 999]);
    expect(SILENT_TICK).toBe(0xffff);
  });

  it('x = 0 fires at the horizon when no threshold is set, and never collides with SILENT_TICK', () => {
    expect([...ttfsTicks([0], { horizonTicks: 0xfffe })]).toEqual([0xfffe]);
  });

  it('agrees with the float times scaled to ticks within half a tick', () => {
    fc.assert(
      fc.property(fc.array(fc.float({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 30 }), fc.integer({ min: 1, max: 0xfffe }), (xs, h) => {
        const ticks = ttfsTicks(xs, { horizonTicks: h });
        xs.forEach((x, i) => expect(Math.abs(ticks[i]! - h * (1 - x))).toBeLessThanOrEqual(0.5 + 1e-9));
      }),
    );
  });

  it('rejects horizons that do not fit or collide with the silent marker', () => {
    expect(() => ttfsTicks([0], { horizonTicks: 0xffff })).toThrow(/horizonTicks must be an integer in 1..65534/);
    expect(() => ttfsTicks([0], { horizonTicks: 0 })).toThrow(/horizonTicks/);
    expect(() => ttfsTicks([0], { horizonTicks: 10.5 })).toThrow(/horizonTicks/);
  });
});
