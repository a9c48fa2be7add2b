import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { assertSafeCodes, safeCodeRanges, UnsafeWeightsError } from '../../../host/device/weight-safety.ts';

const info = { dac: { bits: 12, vMin: 0, vMax: 1.8 }, safe: { nmos: [0.3, 1.2] as [number, number], pmos: [0.6, 1.8] as [number, number] } };

describe('safe code ranges', () => {
  it('match the board DAC law at the window edges', () => {
    const [n, p] = safeCodeRanges(info);
    const volts = (c: number) => (c * 1.8) / 4095;
    const slack = 1e-9; // float rounding only
    // independent: the first code at or above 0.3 V and the last at or below 1.2 V
    expect(volts(n.lo)).toBeGreaterThanOrEqual(0.3 - slack);
    expect(volts(n.lo - 1)).toBeLessThan(0.3 - slack);
    expect(volts(n.hi)).toBeLessThanOrEqual(1.2 + slack);
    expect(volts(n.hi + 1)).toBeGreaterThan(1.2 + slack);
    expect(p.hi).toBe(4095);
    expect(n.lo).toBe(Math.ceil((0.3 / 1.8) * 4095));
  });

  it('is empty when the window misses the DAC range', () => {
    const [n] = safeCodeRanges({ dac: { bits: 8, vMin: 0, vMax: 1 }, safe: { nmos: [2, 3], pmos: [0, 1] } });
    expect(n.lo).toBeGreaterThan(n.hi);
  });

  it('accepts exactly the codes whose voltage lies in the polarity window', () => {
    const safe = safeCodeRanges(info);
    const rowPolarity = new Uint8Array([0, 1, 0, 1]);
    fc.assert(
      fc.property(fc.uint16Array({ minLength: 8, maxLength: 8, max: 5000 }), (codes) => {
        const expectOk = Array.from(codes).every((c, i) => {
          const v = info.dac.vMin + (c * (info.dac.vMax - info.dac.vMin)) / 4095;
          const w = rowPolarity[Math.floor(i / 2)] === 0 ? info.safe.nmos : info.safe.pmos;
          return c <= 4095 && v >= w[0] - 1e-9 && v <= w[1] + 1e-9;
        });
        let ok = true;
        try {
          assertSafeCodes(info, safe, 0, rowPolarity, 2, codes);
        } catch (e) {
          expect(e).toBeInstanceOf(UnsafeWeightsError);
          ok = false;
        }
        expect(ok).toBe(expectOk);
      }),
    );
  });

  it('names the offending code, row, polarity, voltage and fix', () => {
    const codes = new Uint16Array([1000, 4095, 100, 2000]);
    expect(() => assertSafeCodes(info, safeCodeRanges(info), 2, new Uint8Array([0, 0]), 2, codes)).toThrow(
      /layer 2: code 4095 at index 1 \(row 0, NMOS, output 1\) drives 1\.8000 V, outside the NMOS safe window \[0\.3, 1\.2\] V; clamp NMOS codes to \[683, 2730\]/,
    );
  });
});
