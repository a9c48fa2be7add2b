import { describe, expect, it } from 'vitest';
import { nominalChipProfile } from '../../calibration/chip-profile.ts';
import { deployedDriveError } from '../../calibration/truth-score.ts';
import { backendTarget } from '../../calibration/backend-target.ts';
import { safeCodes } from '../../calibration/weight-mapping.ts';
import { BehavioralChip } from '../../models/chips/behavioral-chip.ts';
import { NMOS } from '../../models/chips/chip-backend.ts';

// A model-form die with every spread at zero: its transistors are the nominal EKV curves, as a nominal profile says.
const still = {
  aVtNmos: 0,
  aVtPmos: 0,
  aBeta: 0,
  globalVthSigma: 0,
  globalKpSigma: 0,
  lambdaSigma: 0,
  globalCapSigma: 0,
  aCap: 0,
  supplySigma: 0,
  temperatureSigmaC: 0,
};

function setUp(gainScale: number) {
  const chip = new BehavioralChip({ seed: 3, sizes: [4, 3, 2], physics: 'ekv', magnitudes: still });
  const t = backendTarget(chip);
  const profile = nominalChipProfile({
    chipId: chip.chipId,
    secondsPerTick: t.tickSeconds,
    layers: t.layers.map((l) => ({ inputs: l.inputs, outputs: l.outputs, rows: l.rowInput.length, horizonTicks: l.horizonTicks })),
  });
  for (const l of profile.layers) {
    l.calibrated = true;
    l.gain.fill(gainScale);
  }
  // Codes spread over each polarity's window, a few at the off code.
  const codes = t.layers.map((g) => {
    const c = new Uint16Array(g.rowInput.length * g.outputs);
    for (let r = 0; r < g.rowInput.length; r++) {
      const [lo, hi] = safeCodes(chip.dac, g.rowPolarity[r] === NMOS ? chip.safe.nmos : chip.safe.pmos);
      for (let i = 0; i < g.outputs; i++) {
        const k = r * g.outputs + i;
        const f = ((k * 7) % 10) / 10;
        c[k] = g.rowPolarity[r] === NMOS ? Math.round(lo + (0.3 + 0.4 * f) * (hi - lo)) : Math.round(hi - (0.3 + 0.4 * f) * (hi - lo));
      }
      if (r === 0) c[0] = g.rowPolarity[r] === NMOS ? lo : hi;
    }
    return c;
  });
  return { chip, profile, codes };
}

describe('deployedDriveError', () => {
  it('is zero where the profile is the die, and the profile gains over the die where they are scaled', () => {
    const exact = setUp(1);
    const e = deployedDriveError(exact.chip, exact.profile, exact.codes);
    expect(e.map((x) => `${x.layer}${x.polarity}`)).toEqual(['0nmos', '0pmos', '1nmos', '1pmos']);
    // Not exactly zero: the die's drive of one polarity includes its partner's at the off code (a few pA).
    for (const x of e) {
      expect(x.count).toBeGreaterThan(0);
      expect(Math.abs(x.weighted)).toBeLessThan(1e-3);
      expect(Math.abs(x.median)).toBeLessThan(1e-3);
    }
    // The off code is not counted: layer 0's first row has one synapse off.
    expect(e[0]!.count).toBe(4 * 3 - 1);
    const high = setUp(1.1);
    for (const x of deployedDriveError(high.chip, high.profile, high.codes)) {
      expect(x.weighted).toBeCloseTo(0.1, 3);
      expect(x.median).toBeCloseTo(0.1, 3);
    }
  });
});
