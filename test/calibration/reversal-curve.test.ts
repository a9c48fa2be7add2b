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
const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;

describe('reversal curve (E+- against the gate)', () => {
  it("is the card's E(Vg) scaled to the fitted scalar over the probed gates", () => {
    const r = reversalCurveFor({ ePlus: 6.5, eMinus: -3.3 }, probes);
    expect(mean(probes.nmos.map((v) => reversalAt(r, false, v)))).toBeCloseTo(6.5, 2);
    expect(mean(probes.pmos.map((v) => reversalAt(r, true, v)))).toBeCloseTo(-3.3, 2);
    // The shape is the card's: ratios between gates on the knots.
    expect(reversalAt(r, false, 0.35) / reversalAt(r, false, 0.6)).toBeCloseTo(card.reversal('nmos', 0.35)! / card.reversal('nmos', 0.6)!, 6);
    expect(reversalAt(r, true, 1.4) / reversalAt(r, true, 1.1)).toBeCloseTo(card.reversal('pmos', 1.4)! / card.reversal('pmos', 1.1)!, 6);
    // sky130: E+ falls toward weak NMOS gates, |E-| toward weak PMOS gates (higher Vg).
    expect(reversalAt(r, false, 0.4)).toBeLessThan(reversalAt(r, false, 0.6));
    expect(Math.abs(reversalAt(r, true, 1.35))).toBeLessThan(Math.abs(reversalAt(r, true, 1.15)));
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
        // The card's E at this gate, scaled to the scalar over the probes (knots 10 mV apart: within 1e-3).
        if (!((pmos ? gI : gE)[j]! > 0)) continue;
        const pol = pmos ? 'pmos' : 'nmos';
        const scalar = pmos ? e.eMinus : e.ePlus;
        const eGate = (card.reversal(pol, volts[k]!)! * scalar) / mean((pmos ? probes.pmos : probes.nmos).map((v) => card.reversal(pol, v)!));
        const f = (eGate - DRIVE_MATCH_UREF) / (scalar - DRIVE_MATCH_UREF);
        expect((pmos ? b.gI : b.gE)[j]! / ((pmos ? fam.gI : fam.gE)[j]! * f)).toBeCloseTo(1, 3);
        if (!pmos && b.codes[k]! > a.codes[k]!) stronger++;
      }
    }
    expect(stronger).toBeGreaterThan(0);
  });
});
