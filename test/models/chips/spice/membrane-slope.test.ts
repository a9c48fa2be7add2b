/**
 * The membrane capacitance's slope: the line through a characterised C(v) (exact on a straight
 * curve, blind to the comparator's knee above the threshold), and the characterisation at a supply
 * against a table-mode chip's own membrane at that supply.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { NOMINAL_CIRCUIT } from '../../../../models/chips/sky130-nominal.ts';
import { capacitanceSlope, characteriseCapSlopes, SLOPE_KNEE_VOLTS } from '../../../../models/chips/spice/membrane-slope.ts';
import { SpiceChip } from '../../../../models/chips/spice/spice-chip.ts';
import { drainGrid } from '../../../../models/chips/spice/tables.ts';

const vd = drainGrid(1.8);
const range = { vRest: 1.3, vThreshold: 0.9, vTop: 1.7 };
const curve = (c: (v: number) => number) => Float64Array.from({ length: vd.count }, (_, k) => c(vd.start + k * vd.step));

describe('capacitanceSlope', () => {
  it('recovers k of C(u) = C0 (1 + k u), u = (vRest - v) / (vRest - vThreshold)', () => {
    for (const k of [0.0015, 0.005, -0.01]) {
      const c = curve((v) => 130e-15 * (1 + k * ((1.3 - v) / 0.4)));
      expect(capacitanceSlope(c, vd, range)).toBeCloseTo(k, 12);
    }
  });

  it("ignores the comparator's knee within SLOPE_KNEE_VOLTS of the threshold, and the supply rail above vTop", () => {
    const k = 0.004;
    const knee = curve((v) => 130e-15 * (1 + k * ((1.3 - v) / 0.4)) + (v < 0.9 + SLOPE_KNEE_VOLTS - 1e-9 ? 3e-15 : 0) + (v > 1.7 + 1e-9 ? 5e-15 : 0));
    expect(capacitanceSlope(knee, vd, range)).toBeCloseTo(k, 12);
  });

  it('needs a range with grid points in it', () => {
    expect(() =>
      capacitanceSlope(
        curve(() => 1e-13),
        vd,
        { ...range, vTop: 1.0 },
      ),
    ).toThrow(/at least 3 grid points/);
    expect(() =>
      capacitanceSlope(
        curve(() => 1e-13),
        vd,
        { ...range, vRest: 0.8 },
      ),
    ).toThrow(/must be above/);
  });
});

describe('characteriseCapSlopes', () => {
  let chip: SpiceChip | undefined;
  afterAll(async () => {
    await chip?.close();
  });

  it("gives a table-mode chip's own slope at the same supply, one per layer", async () => {
    chip = await SpiceChip.create({ seed: 3, sizes: [8, 2, 1], mode: 'table', dieSpread: false });
    const vTop = NOMINAL_CIRCUIT.vRest + 0.4;
    const got = await characteriseCapSlopes({ supply: NOMINAL_CIRCUIT.supply, geometry: chip.geometry, vTop });
    const own = chip.geometry.map((_, l) => {
      const m = chip!.tableModel(l);
      return capacitanceSlope(m.capacitance, m.nmos.vd, { vRest: NOMINAL_CIRCUIT.vRest, vThreshold: NOMINAL_CIRCUIT.vThreshold, vTop });
    });
    expect(got).toHaveLength(2);
    for (let l = 0; l < 2; l++) expect(got[l]).toBeCloseTo(own[l], 12);
    // The rows' junctions and the base load tilt C(v) in opposite senses: the 16-row layer's line is flatter
    // than the 4-row one's (0.0053 and 0.0086 here), and both stay a few thousandths.
    expect(got[0]).toBeGreaterThan(0);
    expect(got[1]).toBeGreaterThan(got[0]);
    expect(got[1]).toBeLessThan(0.05);
    await expect(characteriseCapSlopes({ supply: 0.5, geometry: chip.geometry, vTop })).rejects.toThrow(/measured supply/);
  }, 600_000);
});
