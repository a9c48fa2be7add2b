import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mapLayer, offCode, safeCodes, type LayerCurves } from '../../calibration/weight-mapping.ts';
import { dualRailLayer, NMOS } from '../../models/chips/chip-backend.ts';
import { codeToVolts } from '../../wire/dac.ts';
import { gateVoltagesToLayer } from '../../models/chips/gate-to-layer.ts';
import { DEFAULT_DAC, DEFAULT_SAFE, NOMINAL_CIRCUIT, NOMINAL_NMOS, NOMINAL_PMOS, NOMINAL_TEMPERATURE_C } from '../../models/chips/sky130-nominal.ts';

const t0 = 2e-6;
const curves: LayerCurves = {
  nmos: NOMINAL_NMOS,
  pmos: NOMINAL_PMOS,
  circuit: NOMINAL_CIRCUIT,
  temperatureC: NOMINAL_TEMPERATURE_C,
};

/** What the chip side computes from the uploaded codes: the independent reference. */
function chipView(geometry: ReturnType<typeof dualRailLayer>, codes: Uint16Array, c: LayerCurves = curves) {
  const volts = Float64Array.from(codes, (k) => codeToVolts(DEFAULT_DAC, k));
  return gateVoltagesToLayer(geometry, volts, {
    nmos: c.nmos,
    pmos: c.pmos,
    circuit: c.circuit,
    temperatureC: c.temperatureC,
    t0,
    horizon: 1,
    dVth: c.dVth,
    gain: c.gain,
  });
}

describe('mapLayer', () => {
  const geometry = dualRailLayer(6, 4);
  const target = { geometry, dac: DEFAULT_DAC, safe: DEFAULT_SAFE, t0 };

  it('realises what the chip computes from the same codes, within one DAC step of the target', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0.05, max: 3, noNaN: true }), { minLength: 24, maxLength: 24 }),
        fc.array(fc.double({ min: 0.05, max: 3, noNaN: true }), { minLength: 24, maxLength: 24 }),
        (e, i) => {
          const gE = Float64Array.from(e);
          const gI = Float64Array.from(i);
          const m = mapLayer(gE, gI, 6, 4, target, curves);
          const chip = chipView(geometry, m.codes);
          for (let k = 0; k < 24; k++) {
            expect(m.gE[k]).toBeCloseTo(chip.gE[k], 12);
            expect(m.gI[k]).toBeCloseTo(chip.gI[k], 12);
          }
          // One DAC step changes the current by a few percent at these drives; the realised value
          // is the nearest code, so it lies within one step's ratio of the target.
          for (let k = 0; k < 24; k++) {
            expect(Math.abs(Math.log(m.gE[k] / gE[k]))).toBeLessThan(0.08);
            expect(Math.abs(Math.log(m.gI[k] / gI[k]))).toBeLessThan(0.08);
          }
          expect(m.clipped).toBe(0);
        },
      ),
      { numRuns: 30 },
    );
  });

  it('keeps every code inside its polarity safe window and clips what lies beyond', () => {
    const gE = new Float64Array(24).fill(1e6);
    const gI = new Float64Array(24).fill(1e6);
    const m = mapLayer(gE, gI, 6, 4, target, curves);
    const [nLo, nHi] = safeCodes(DEFAULT_DAC, DEFAULT_SAFE.nmos);
    const [pLo, pHi] = safeCodes(DEFAULT_DAC, DEFAULT_SAFE.pmos);
    for (let r = 0; r < geometry.rowInput.length; r++) {
      for (let i = 0; i < 4; i++) {
        const c = m.codes[r * 4 + i];
        if (geometry.rowPolarity[r] === NMOS) expect(c).toBe(nHi);
        else expect(c).toBe(pLo);
        expect(c).toBeGreaterThanOrEqual(geometry.rowPolarity[r] === NMOS ? nLo : pLo);
        expect(c).toBeLessThanOrEqual(geometry.rowPolarity[r] === NMOS ? nHi : pHi);
      }
    }
    expect(m.clipped).toBe(48);
  });

  it('switches off the synapses a smaller network does not use', () => {
    const gE = new Float64Array(2 * 3).fill(1);
    const gI = new Float64Array(2 * 3).fill(1);
    const m = mapLayer(gE, gI, 2, 3, target, curves);
    for (let r = 0; r < geometry.rowInput.length; r++) {
      for (let i = 0; i < 4; i++) {
        const used = geometry.rowInput[r] < 2 && i < 3;
        const off = offCode(DEFAULT_DAC, DEFAULT_SAFE, geometry.rowPolarity[r]);
        if (!used) expect(m.codes[r * 4 + i]).toBe(off);
        else expect(m.codes[r * 4 + i]).not.toBe(off);
      }
    }
  });

  it('inverts per-transistor mismatch so the chip realises the target', () => {
    const rows = geometry.rowInput.length;
    const dVth = Float64Array.from({ length: rows * 4 }, (_, k) => 0.02 * Math.sin(k));
    const gain = Float64Array.from({ length: rows * 4 }, (_, k) => 1 + 0.1 * Math.cos(k));
    const skewed = { ...curves, dVth, gain };
    const gE = new Float64Array(24).fill(0.5);
    const gI = new Float64Array(24).fill(0.5);
    const m = mapLayer(gE, gI, 6, 4, target, skewed);
    const chip = chipView(geometry, m.codes, skewed);
    for (let k = 0; k < 24; k++) {
      expect(Math.abs(Math.log(chip.gE[k] / 0.5))).toBeLessThan(0.08);
      expect(Math.abs(Math.log(chip.gI[k] / 0.5))).toBeLessThan(0.08);
    }
  });

  it('refuses a layer larger than the array', () => {
    expect(() => mapLayer(new Float64Array(35), new Float64Array(35), 7, 5, target, curves)).toThrow(/does not fit/);
  });
});
