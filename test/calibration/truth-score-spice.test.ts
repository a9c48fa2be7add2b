/**
 * The drive score of a profile against a SPICE die's tables: which synapses it reads, that it
 * follows the profile's drive one polarity at a time, and that the nominal design lands near the
 * die in units (a calibrated profile lands within about 1 %, docs/RESULTS.md; the nominal one, without the
 * die's mismatch and parasitic capacitance, within tens of per cent).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { nominalChipProfile, profileLayerCurves, type ChipProfile } from '../../calibration/chip-profile.ts';
import { LayerCodeRule } from '../../calibration/weight-mapping.ts';
import { spiceDeployedDriveError, spiceDriveError } from '../../calibration/truth-score-spice.ts';
import { SpiceChip } from '../../models/chips/spice/spice-chip.ts';

/** A cold table cache means SPICE characterisation first. */
const LONG = 240_000;

let chip: SpiceChip | undefined;
afterAll(async () => {
  await chip?.close();
});

function nominal(c: SpiceChip): ChipProfile {
  const p = nominalChipProfile({
    chipId: c.chipId,
    secondsPerTick: c.timing.tickSeconds,
    layers: c.geometry.map((g, l) => ({ inputs: g.inputs, outputs: g.outputs, rows: g.rowInput.length, horizonTicks: c.timing.horizonTicks[l] })),
  });
  p.layers[0].calibrated = true;
  p.notes = { 'layer0.nmosCodes': '300,330', 'layer0.pmosCodes': '640,660' };
  return p;
}

describe('spiceDriveError', () => {
  it(
    'scores every driven synapse at each probe code, and follows the profile polarity by polarity',
    async () => {
      chip = await SpiceChip.create({ seed: 5, mode: 'table', sizes: [4, 2] });
      const profile = nominal(chip);
      const base = spiceDriveError(chip, profile);
      // 4 inputs x 2 outputs x 2 codes, for each polarity; layer 1 is not calibrated.
      expect(base.count).toBe(32);
      // The nominal design carries no mismatch and the nominal capacitance (the die adds its parasitics and
      // its own threshold draws), so it is off by tens of per cent, not by a unit's factor (t0, ticks, swing).
      expect(Math.abs(base.meanNmos)).toBeLessThan(0.4);
      expect(Math.abs(base.meanPmos)).toBeLessThan(1);
      expect(base.median).toBeLessThanOrEqual(base.p95);
      expect(base.p95).toBeLessThanOrEqual(base.max);
      expect(spiceDriveError(chip, profile, [2]).count).toBe(16);

      // Every NMOS 5 % stronger in the profile: its mean moves by exactly that factor, the PMOS's not at all.
      const stronger = nominal(chip);
      const rows = stronger.layers[0].rows;
      const g = chip.geometry[0];
      for (let r = 0; r < rows; r++) if (g.rowPolarity[r] === 0) stronger.layers[0].gain.fill(1.05, r * g.outputs, (r + 1) * g.outputs);
      const s = spiceDriveError(chip, stronger);
      expect(1 + s.meanNmos).toBeCloseTo(1.05 * (1 + base.meanNmos), 10);
      expect(s.meanPmos).toBeCloseTo(base.meanPmos, 12);

      // A profile fitted with a capacitance slope k divides its drive by 1 + k u: at mid-swing by 1 + k / 2.
      const sloped = nominal(chip);
      sloped.layers[0].capSlope = 0.02;
      const c = spiceDriveError(chip, sloped);
      expect(1 + c.meanNmos).toBeCloseTo((1 + base.meanNmos) / 1.01, 10);
      expect(1 + c.meanPmos).toBeCloseTo((1 + base.meanPmos) / 1.01, 10);
    },
    LONG,
  );
});

describe('spiceDeployedDriveError', () => {
  it(
    "scores a network's codes as spiceDriveError scores the probe codes, and tells the synapses beyond the probes apart",
    async () => {
      chip ??= await SpiceChip.create({ seed: 5, mode: 'table', sizes: [4, 2] });
      const profile = nominal(chip);
      const g = chip.geometry[0];
      const n = g.outputs;
      // Every NMOS at probe code 300, every PMOS at 640: what the probe score reads at those codes.
      const atProbes = Uint16Array.from({ length: g.rowInput.length * n }, (_, k) => (g.rowPolarity[Math.floor(k / n)] === 0 ? 300 : 640));
      const probeScore = (pol: 0 | 1, code: number) => {
        const p = nominal(chip!);
        p.notes = { 'layer0.nmosCodes': String(pol === 0 ? code : 300), 'layer0.pmosCodes': String(pol === 1 ? code : 640) };
        return spiceDriveError(chip!, p);
      };
      const [nm, pm] = spiceDeployedDriveError(chip, profile, [atProbes]);
      expect([nm!.polarity, pm!.polarity]).toEqual(['nmos', 'pmos']);
      expect([nm!.count, pm!.count]).toEqual([8, 8]);
      expect(nm!.weakerThanProbes).toBe(0);
      expect(Number.isNaN(nm!.medianWeaker)).toBe(true);
      // Every synapse at a probe code: the same ratios as the probe score at that code alone.
      expect(nm!.mean).toBeCloseTo(probeScore(0, 300).meanNmos, 12);
      expect(pm!.mean).toBeCloseTo(probeScore(1, 640).meanPmos, 12);
      // Half the NMOS a step weaker than the weakest probe code, a PMOS at the off code: counted apart, the off one not at all.
      const codes = atProbes.slice();
      for (let r = 0; r < g.rowInput.length; r++) if (g.rowPolarity[r] === 0 && g.rowInput[r]! < 2) codes.fill(280, r * n, (r + 1) * n);
      const offRow = g.rowPolarity.indexOf(1);
      codes[offRow * n] = new LayerCodeRule({ geometry: g, dac: chip.dac, safe: chip.safe, t0: profile.t0Seconds }, profileLayerCurves(profile, 0)).off(offRow);
      const [nw, pw] = spiceDeployedDriveError(chip, profile, [codes]);
      expect(nw!.count).toBe(8);
      expect(nw!.weakerThanProbes).toBeCloseTo(0.5, 12);
      expect(Number.isNaN(nw!.medianWeaker)).toBe(false);
      expect(pw!.count).toBe(7);
      expect(pw!.weakerThanProbes).toBe(0);
    },
    LONG,
  );
});
