import { describe, expect, it } from 'vitest';
import { DRIVE_MATCH_UREF, reversalAt, reversalCurveFor } from '../../calibration/reversal-curve.ts';
import { mapLayer, type LayerCurves } from '../../calibration/weight-mapping.ts';
import { dualRailLayer } from '../../models/chips/chip-backend.ts';
import { gateVoltagesToLayer } from '../../models/chips/gate-to-layer.ts';
import { sky130NominalCurves } from '../../models/chips/sky130-curves.ts';
import { DEFAULT_DAC, DEFAULT_SAFE, NOMINAL_CIRCUIT, NOMINAL_NMOS, NOMINAL_PMOS, NOMINAL_TEMPERATURE_C } from '../../models/chips/sky130-nominal.ts';
import { reversalPotentials } from '../../models/neuron/units.ts';
import { codeToVolts } from '../../wire/dac.ts';

const card = sky130NominalCurves();
const probes = { nmos: [0.54, 0.56, 0.58, 0.6], pmos: [1.14, 1.16, 1.19] };

describe('reversal curve (E+- against the gate)', () => {
  it("is the fitted scalar across the probed gates and the card's E(Vg) relative to the nearer edge beyond them", () => {
    const r = reversalCurveFor({ ePlus: 6.5, eMinus: -3.3 }, probes);
    for (const v of [0.55, 0.57, 0.59]) expect(reversalAt(r, false, v)).toBeCloseTo(6.5, 6);
    for (const v of [1.15, 1.17]) expect(reversalAt(r, true, v)).toBeCloseTo(-3.3, 6);
    // Beyond, on the knots: the card's ratio to the edge.
    expect(reversalAt(r, false, 0.35)).toBeCloseTo((6.5 * card.reversal('nmos', 0.35)!) / card.reversal('nmos', 0.54)!, 6);
    expect(reversalAt(r, false, 0.65)).toBeCloseTo((6.5 * card.reversal('nmos', 0.65)!) / card.reversal('nmos', 0.6)!, 6);
    expect(reversalAt(r, true, 1.4)).toBeCloseTo((-3.3 * card.reversal('pmos', 1.4)!) / card.reversal('pmos', 1.19)!, 6);
    // sky130: E+ falls toward weak NMOS gates, |E-| toward weak PMOS gates (higher Vg).
    expect(reversalAt(r, false, 0.4)).toBeLessThan(6.5);
    expect(Math.abs(reversalAt(r, true, 1.35))).toBeLessThan(3.3);
    for (const e of [...r.ePlus, ...r.eMinus.map((x) => -x)]) expect(e).toBeGreaterThan(0);
  });

  it('without probes of a polarity keeps its scalar everywhere', () => {
    const r = reversalCurveFor({ ePlus: 6.5, eMinus: -3.3 }, { nmos: probes.nmos, pmos: [] });
    expect(new Set(r.eMinus).size).toBe(1);
    expect(r.eMinus[0]).toBe(-3.3);
  });

  it('mapLayer: a code yields the family conductance times (E(gate) - uRef) / (E - uRef); weak NMOS targets take stronger codes', () => {
    const geometry = dualRailLayer(3, 2);
    const t0 = 2e-6;
    const target = { geometry, dac: DEFAULT_DAC, safe: DEFAULT_SAFE, t0 };
    const plain: LayerCurves = { nmos: NOMINAL_NMOS, pmos: NOMINAL_PMOS, circuit: NOMINAL_CIRCUIT, temperatureC: NOMINAL_TEMPERATURE_C };
    const e = reversalPotentials(NOMINAL_CIRCUIT);
    const withCurve: LayerCurves = { ...plain, reversal: reversalCurveFor(e, probes) };
    const gE = Float64Array.from([0.002, 0.01, 0.05, 0.2, 0.5, 1]);
    const gI = Float64Array.from([0.5, 0.2, 0.05, 0.01, 0.003, 0]);
    const a = mapLayer(gE, gI, 3, 2, target, plain);
    const b = mapLayer(gE, gI, 3, 2, target, withCurve);
    // Independent reference: the family's conductance at the uploaded gates (gate-to-layer.ts) times the card's factor.
    const volts = Float64Array.from(b.codes, (c) => codeToVolts(DEFAULT_DAC, c));
    const fam = gateVoltagesToLayer(geometry, volts, {
      nmos: NOMINAL_NMOS,
      pmos: NOMINAL_PMOS,
      circuit: NOMINAL_CIRCUIT,
      temperatureC: NOMINAL_TEMPERATURE_C,
      t0,
      horizon: 1,
    });
    let stronger = 0;
    for (let r = 0; r < geometry.rowInput.length; r++) {
      const pmos = geometry.rowPolarity[r] !== 0;
      for (let i = 0; i < 2; i++) {
        const k = r * 2 + i;
        const j = geometry.rowInput[r]! * 2 + i;
        if (!((pmos ? gI : gE)[j]! > 0)) continue;
        // The card's E at this gate relative to the nearer probed edge (knots 10 mV apart: within 1e-3).
        const pol = pmos ? 'pmos' : 'nmos';
        const scalar = pmos ? e.eMinus : e.ePlus;
        const probed = pmos ? probes.pmos : probes.nmos;
        const v = volts[k]!;
        const edge = v < Math.min(...probed) ? Math.min(...probed) : v > Math.max(...probed) ? Math.max(...probed) : v;
        const eGate = (scalar * card.reversal(pol, v)!) / card.reversal(pol, edge)!;
        const f = (eGate - DRIVE_MATCH_UREF) / (scalar - DRIVE_MATCH_UREF);
        expect((pmos ? b.gI : b.gE)[j]! / ((pmos ? fam.gI : fam.gE)[j]! * f)).toBeCloseTo(1, 3);
        if (!pmos && b.codes[k]! > a.codes[k]!) stronger++;
      }
    }
    expect(stronger).toBeGreaterThan(0);
  });
});
