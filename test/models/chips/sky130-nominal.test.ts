import { describe, expect, it } from 'vitest';
import { drainCurrent } from '../../../models/neuron/transfer-curve.ts';
import { reversalPotentials } from '../../../models/neuron/units.ts';
import {
  DEFAULT_SAFE,
  NOMINAL_CIRCUIT,
  NOMINAL_NMOS,
  NOMINAL_PMOS,
  NOMINAL_TEMPERATURE_C,
  OPERATING_GATES,
  sky130NominalCurves,
} from '../../../models/chips/sky130-nominal.ts';

// The nominal EKV parameters are a fit to the SPICE characterisation (spice/data/sky130-devices.json);
// these checks hold them to the data, so a regenerated data file that moves the devices fails here.
describe('sky130 nominal: the EKV fit follows the characterised card', () => {
  const curves = sky130NominalCurves();
  const vm = 0.5 * (NOMINAL_CIRCUIT.vRest + NOMINAL_CIRCUIT.vThreshold);

  for (const [pol, dev, tol] of [
    ['nmos', NOMINAL_NMOS, 0.08],
    ['pmos', NOMINAL_PMOS, 0.14],
  ] as const) {
    it(`${pol}: current at mid-swing within ${tol * 100} % over the operating window`, () => {
      const [lo, hi] = OPERATING_GATES[pol];
      let worst = 0;
      for (let vg = lo; vg <= hi + 1e-9; vg += 0.01) {
        const vds = pol === 'nmos' ? vm : NOMINAL_CIRCUIT.supply - vm;
        const ekv = drainCurrent(dev, vg, NOMINAL_CIRCUIT.supply, NOMINAL_TEMPERATURE_C) * (1 + dev.lambda * vds);
        const spice = Math.abs(curves.current(pol, vg, vm));
        worst = Math.max(worst, Math.abs(ekv / spice - 1));
      }
      expect(worst).toBeLessThan(tol);
      expect(worst).toBeGreaterThan(0.01); // a fit, not the curve itself
    });
  }

  it("the model's one E+ and E- lie inside the card's range over the operating windows", () => {
    const { ePlus, eMinus } = reversalPotentials(NOMINAL_CIRCUIT);
    const range = (pol: 'nmos' | 'pmos') => {
      const [lo, hi] = OPERATING_GATES[pol];
      const e: number[] = [];
      for (let vg = lo; vg <= hi + 1e-9; vg += 0.01) e.push(curves.reversal(pol, vg)!);
      return [Math.min(...e), Math.max(...e)];
    };
    const [pLo, pHi] = range('nmos');
    const [mLo, mHi] = range('pmos');
    expect(ePlus).toBeGreaterThan(pLo);
    expect(ePlus).toBeLessThan(pHi);
    expect(eMinus).toBeGreaterThan(mLo);
    expect(eMinus).toBeLessThan(mHi);
  });

  it('the safe windows keep every synapse under 0.1 mA and contain the operating windows', () => {
    for (const v of [0.6, 1.1, 1.3]) {
      expect(Math.abs(curves.current('nmos', DEFAULT_SAFE.nmos[1], v))).toBeLessThan(1e-4);
      expect(Math.abs(curves.current('pmos', DEFAULT_SAFE.pmos[0], v))).toBeLessThan(1e-4);
    }
    expect(DEFAULT_SAFE.nmos[0]).toBeLessThanOrEqual(OPERATING_GATES.nmos[0]);
    expect(DEFAULT_SAFE.nmos[1]).toBeGreaterThanOrEqual(OPERATING_GATES.nmos[1]);
    expect(DEFAULT_SAFE.pmos[0]).toBeLessThanOrEqual(OPERATING_GATES.pmos[0]);
    expect(DEFAULT_SAFE.pmos[1]).toBeGreaterThanOrEqual(OPERATING_GATES.pmos[1]);
  });
});
