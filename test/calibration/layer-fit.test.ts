/**
 * LayerFitter's residuals: the plain ones are what held-out scores use, the down-weighted ones are
 * what the globals fit and the drift refit minimise (the same Cauchy-style weighting the per-neuron
 * polish minimises, so one pattern that grazes threshold cannot pull E+).
 */
import { describe, expect, it } from 'vitest';
import { backendTarget } from '../../calibration/backend-target.ts';
import { calibrateChip } from '../../calibration/calibrate-chip.ts';
import { BehavioralChip } from '../../models/chips/behavioral-chip.ts';

describe('LayerFitter.residualsFixed', () => {
  it('down-weights as r -> 4 sign(r) sqrt(ln(1 + (r/4)^2)), and leaves small residuals nearly unchanged', async () => {
    const chip = new BehavioralChip({ seed: 31337, sizes: [8, 4] });
    const sup = chip.supply();
    const res = await calibrateChip(backendTarget(chip), {
      chipId: chip.chipId,
      temperatureC: sup.temperatureC,
      supplyV: sup.supplyV,
      layers: [0],
      sizes: { patternsPerConfig: 24, heldOutPatterns: 16 },
    });
    const f = res.fitters.pnn[0]!;
    const g = res.globals;
    // A disturbed E+ makes large residuals too, so both regimes of the weighting are exercised.
    let large = 0;
    let checked = 0;
    for (const globals of [g, { ...g, ePlus: g.ePlus * 1.3 }]) {
      for (let i = 0; i < f.data.input.geometry.outputs; i++) {
        const plain = f.residualsFixed(i, globals);
        const robust = f.residualsFixed(i, globals, 0, 'fit', true);
        expect(robust.length).toBe(plain.length);
        for (let s = 0; s < plain.length; s++) {
          const r = plain[s]!;
          // A sample the model cannot place at all carries the same fixed penalty in both.
          if (r === 50 && robust[s] === 50) continue;
          const expected = Math.sign(r) * 4 * Math.sqrt(Math.log1p((r / 4) ** 2));
          expect(robust[s]).toBeCloseTo(expected, 12);
          expect(Math.abs(robust[s]!)).toBeLessThanOrEqual(Math.abs(r) + 1e-12);
          if (Math.abs(r) < 0.5) expect(Math.abs(robust[s]! - r)).toBeLessThan(0.01);
          if (Math.abs(r) > 20) large++;
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(200);
    expect(large).toBeGreaterThan(0);
  }, 60_000);
});
