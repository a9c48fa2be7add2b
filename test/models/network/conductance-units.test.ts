import { describe, expect, it } from 'vitest';
import { conductanceFactors, conductancesOf, unitsOf } from '../../../models/network/conductance-units.ts';

const u = { scale: 0.37, ePlus: 9.5, eMinus: -6.25 };

describe('conductance units', () => {
  it('one unit of pE or pI moves the drive at rest (g E) by scale', () => {
    const { kE, kI } = conductanceFactors(u);
    expect(kE * u.ePlus).toBeCloseTo(u.scale, 15);
    expect(kI * -u.eMinus).toBeCloseTo(u.scale, 15);
  });

  it('conductances and units round-trip to float32 precision', () => {
    const pE = Float32Array.from([0, 0.5, 1.25, 3, 1e-4]);
    const pI = Float32Array.from([2, 0, 0.75, 1e-3, 4]);
    const g = conductancesOf(u, pE, pI);
    expect(g.gE[2]).toBeCloseTo((1.25 * u.scale) / u.ePlus, 12);
    expect(g.gI[0]).toBeCloseTo((2 * u.scale) / -u.eMinus, 12);
    const back = unitsOf(u, g.gE, g.gI);
    for (let k = 0; k < pE.length; k++) {
      expect(back.pE[k]).toBeCloseTo(pE[k]!, 6);
      expect(back.pI[k]).toBeCloseTo(pI[k]!, 6);
    }
  });
});
