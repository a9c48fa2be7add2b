import { describe, expect, it } from 'vitest';
import { dualRailLayer, NMOS } from '../../../../models/chips/chip-backend.ts';
import { DEFAULT_DESIGN, sigmaVth } from '../../../../models/chips/spice/design.ts';
import { drawMismatch } from '../../../../models/chips/spice/mismatch.ts';

describe('per-device threshold mismatch', () => {
  const geometry = [dualRailLayer(200, 100), dualRailLayer(100, 10)];

  it('follows Pelgrom: sigma = A_VT / sqrt(W L), per polarity', () => {
    // sky130 slopes: 3.356 mV um (NMOS), 7.356 mV um (PMOS); W L = 0.25 um^2.
    expect(sigmaVth(DEFAULT_DESIGN.avtN, DEFAULT_DESIGN.synapse)).toBeCloseTo(6.712e-3, 6);
    expect(sigmaVth(DEFAULT_DESIGN.avtP, DEFAULT_DESIGN.synapse)).toBeCloseTo(14.712e-3, 6);
    const [m] = drawMismatch(7, geometry, DEFAULT_DESIGN);
    const g = geometry[0];
    for (const pol of [0, 1]) {
      let n = 0;
      let s = 0;
      let s2 = 0;
      for (let r = 0; r < g.rowInput.length; r++) {
        if (g.rowPolarity[r] !== pol) continue;
        for (let i = 0; i < g.outputs; i++) {
          const x = m.synapseDvth[r * g.outputs + i];
          n++;
          s += x;
          s2 += x * x;
        }
      }
      const sd = Math.sqrt(s2 / n - (s / n) ** 2);
      const want = pol === NMOS ? 6.712e-3 : 14.712e-3;
      // 20000 draws: the sample sigma is within 2 % of the truth with overwhelming probability.
      expect(Math.abs(sd / want - 1)).toBeLessThan(0.02);
      expect(Math.abs(s / n)).toBeLessThan((4 * want) / Math.sqrt(n));
    }
  });

  it('is fixed by the seed and differs between seeds and layers', () => {
    const a = drawMismatch(3, geometry, DEFAULT_DESIGN);
    const b = drawMismatch(3, geometry, DEFAULT_DESIGN);
    const c = drawMismatch(4, geometry, DEFAULT_DESIGN);
    expect(a[1].synapseDvth).toEqual(b[1].synapseDvth);
    expect(a[0].inverterDvth).toEqual(b[0].inverterDvth);
    expect(a[0].synapseDvth[0]).not.toBe(c[0].synapseDvth[0]);
    expect(a[0].synapseDvth[0]).not.toBe(a[1].synapseDvth[0]);
    expect(a[0].inverterDvth.length).toBe(2 * 100);
  });
});
