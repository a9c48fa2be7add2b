import { describe, expect, it } from 'vitest';
import {
  DRIVE_MATCH_UREF,
  driveFactor,
  effectiveGate,
  processPosition,
  REVERSAL_ANCHOR_VOLTS,
  reversalAt,
  reversalCurveFor,
  reversalShape,
} from '../../calibration/reversal-curve.ts';
import { mapLayer, type LayerCurves } from '../../calibration/weight-mapping.ts';
import { dualRailLayer } from '../../models/chips/chip-backend.ts';
import { gateVoltagesToLayer } from '../../models/chips/gate-to-layer.ts';
import { sky130DieCurves, sky130NominalCurves } from '../../models/chips/sky130-curves.ts';
import { DEFAULT_DAC, DEFAULT_SAFE, NOMINAL_CIRCUIT, NOMINAL_NMOS, NOMINAL_PMOS, NOMINAL_TEMPERATURE_C } from '../../models/chips/sky130-nominal.ts';
import { drainCurrent } from '../../models/neuron/transfer-curve.ts';
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

  it("anchored at REVERSAL_ANCHOR_VOLTS, times the card's E at the anchor gives the card's E at every gate (PMOS read at the supply-shifted gate)", () => {
    const a = REVERSAL_ANCHOR_VOLTS;
    const sh = reversalShape(a, NOMINAL_CIRCUIT.supply);
    expect(reversalAt(sh, false, a.nmos)).toBeCloseTo(1, 12);
    expect(reversalAt(sh, true, a.pmos)).toBeCloseTo(1, 12);
    for (const v of [0.4, 0.5, 0.53, 0.6, 0.65]) expect(reversalAt(sh, false, v) * card.reversal('nmos', a.nmos)!).toBeCloseTo(card.reversal('nmos', v)!, 6);
    for (const v of [1.0, 1.06, 1.12, 1.2, 1.3]) expect(reversalAt(sh, true, v) * card.reversal('pmos', a.pmos)!).toBeCloseTo(card.reversal('pmos', v)!, 6);
    // 20 mV above the card's supply: the die's PMOS at v is the card's at v - 20 mV, the anchor's too.
    const hi = reversalShape(a, NOMINAL_CIRCUIT.supply + 0.02);
    for (const v of [1.02, 1.1, 1.2]) expect(reversalAt(hi, true, v)).toBeCloseTo(card.reversal('pmos', v - 0.02)! / card.reversal('pmos', a.pmos - 0.02)!, 6);
    // A transistor's own gate: a PMOS 20 mV strong (dVth -0.02) at 1.1 V has the card's E at 1.08 V; an NMOS the other way.
    expect(effectiveGate(true, 1.1, -0.02)).toBeCloseTo(1.08, 12);
    expect(effectiveGate(false, 0.55, 0.01)).toBeCloseTo(0.54, 12);
    // sky130: |E-| grows toward strong PMOS gates, about 5 % from 1.1 to 1.06 V, which is what a weak NMOS beside it must see.
    expect(reversalAt(sh, true, 1.06)).toBeGreaterThan(1.04);
    // The layer's curve with the anchor: the fitted scalar times the shape everywhere (inside the probes too), anchors carried.
    const r = reversalCurveFor({ ePlus: 6.3, eMinus: -3.3 }, probes, undefined, a);
    expect(r.anchorN).toBe(a.nmos);
    expect(r.anchorP).toBe(a.pmos);
    for (const v of [0.35, 0.55, 0.58]) expect(reversalAt(r, false, v)).toBeCloseTo((6.3 * card.reversal('nmos', v)!) / card.reversal('nmos', a.nmos)!, 6);
    for (const v of [1.15, 1.4]) expect(reversalAt(r, true, v)).toBeCloseTo((-3.3 * card.reversal('pmos', v)!) / card.reversal('pmos', a.pmos)!, 6);
    expect(r.strengthN).toBe(1);
    // With fitted strengths k: the scalar times the card's shape to the power k, per polarity, the strengths carried (knots only:
    // between knots the curve is linear in the powered values).
    const rk = reversalCurveFor({ ePlus: 6.3, eMinus: -3.3, shapeN: 0.4, shapeP: 1.6 }, probes, undefined, a);
    expect([rk.strengthN, rk.strengthP]).toEqual([0.4, 1.6]);
    for (const v of [0.35, 0.5, 0.6])
      expect(reversalAt(rk, false, v)).toBeCloseTo(6.3 * (card.reversal('nmos', v)! / card.reversal('nmos', a.nmos)!) ** 0.4, 6);
    for (const v of [1.0, 1.2, 1.4]) expect(reversalAt(rk, true, v)).toBeCloseTo(-3.3 * (card.reversal('pmos', v)! / card.reversal('pmos', a.pmos)!) ** 1.6, 6);
    expect(reversalCurveFor({ ePlus: 6.3, eMinus: -3.3 }, probes).anchorN).toBeUndefined();
  });

  it("places the die's process point from the fitted families' conductance level at the probed gates", () => {
    const c = NOMINAL_CIRCUIT;
    const vMid = 0.5 * (c.vRest + c.vThreshold);
    const temperatureC = 40;
    const die = sky130DieCurves({ temperatureC, zN: 0.8, zP: -1.2 });
    const lnSlope = (pol: 'nmos' | 'pmos', v: number) => Math.log(Math.abs(die.current(pol, v, vMid + 0.1) - die.current(pol, v, vMid - 0.1)) / 0.2);
    // Families with the nominal shape, scaled so their mean log conductance over the probes is the die's.
    const scaled = (pol: 'nmos' | 'pmos') => {
      const p = pol === 'pmos' ? NOMINAL_PMOS : NOMINAL_NMOS;
      const vs = pol === 'pmos' ? probes.pmos : probes.nmos;
      const d = vs.map((v) => lnSlope(pol, v) - Math.log(drainCurrent(p, v, c.supply, temperatureC) * p.lambda));
      return { ...p, kp: p.kp * Math.exp(d.reduce((a, b) => a + b) / d.length) };
    };
    const fam = { nmos: scaled('nmos'), pmos: scaled('pmos'), supply: c.supply, temperatureC, vMid };
    expect(processPosition(false, probes.nmos, fam)).toBeCloseTo(0.8, 3);
    expect(processPosition(true, probes.pmos, fam)).toBeCloseTo(-1.2, 3);
    expect(processPosition(true, [], fam)).toBe(0);
  });

  it("reads a die's PMOS at the card's gate shifted by the measured supply: the supply is not taken for a process shift", () => {
    const c = NOMINAL_CIRCUIT;
    const vMid = 0.5 * (c.vRest + c.vThreshold);
    const temperatureC = 30;
    // 15 mV above the card's supply: the die's PMOS at gate v conducts as the card's at v - 15 mV (its source is the supply).
    const dSupply = 0.015;
    const supply = c.supply + dSupply;
    const die = sky130DieCurves({ temperatureC, zN: 0.6, zP: 1.3 });
    const lnSlope = (v: number) => Math.log(Math.abs(die.current('pmos', v - dSupply, vMid + 0.1) - die.current('pmos', v - dSupply, vMid - 0.1)) / 0.2);
    const d = probes.pmos.map((v) => lnSlope(v) - Math.log(drainCurrent(NOMINAL_PMOS, v, supply, temperatureC) * NOMINAL_PMOS.lambda));
    const pmos = { ...NOMINAL_PMOS, kp: NOMINAL_PMOS.kp * Math.exp(d.reduce((a, b) => a + b) / d.length) };
    const fam = { nmos: NOMINAL_NMOS, pmos, supply, temperatureC, vMid };
    expect(processPosition(true, probes.pmos, fam)).toBeCloseTo(1.3, 3);
    // Beyond the probes the factor carries the die's shape: family times factor over the edge's follows the die.
    const r = reversalCurveFor({ ePlus: 6.5, eMinus: -3.3 }, probes, fam);
    const edge = Math.max(...probes.pmos);
    const famG = (v: number) => drainCurrent(pmos, v, supply, temperatureC);
    const gFactor = (v: number) => driveFactor(r, true, v, -3.3) / ((reversalAt(r, true, v) - DRIVE_MATCH_UREF) / (-3.3 - DRIVE_MATCH_UREF));
    for (const v of [1.3, 1.4]) {
      const predicted = (famG(v) * gFactor(v)) / (famG(edge) * gFactor(edge));
      expect(predicted / Math.exp(lnSlope(v) - lnSlope(edge))).toBeCloseTo(1, 2);
    }
  });

  it("with the fitted families, carries the die's conductance shape beyond the probed gates relative to the family's", () => {
    const c = NOMINAL_CIRCUIT;
    const vMid = 0.5 * (c.vRest + c.vThreshold);
    // A PMOS family steeper than the card's (the slope factor fitted from a few strong codes).
    const fam = { nmos: NOMINAL_NMOS, pmos: { ...NOMINAL_PMOS, n: NOMINAL_PMOS.n * 1.05 }, supply: c.supply, temperatureC: NOMINAL_TEMPERATURE_C, vMid };
    const r = reversalCurveFor({ ePlus: 6.5, eMinus: -3.3 }, probes, fam);
    const plain = reversalCurveFor({ ePlus: 6.5, eMinus: -3.3 }, probes);
    const die = sky130DieCurves({
      temperatureC: NOMINAL_TEMPERATURE_C,
      zN: processPosition(false, probes.nmos, fam),
      zP: processPosition(true, probes.pmos, fam),
    });
    const slope = (pol: 'nmos' | 'pmos', v: number) => Math.abs(die.current(pol, v, vMid + 0.1) - die.current(pol, v, vMid - 0.1)) / 0.2;
    const ratio = (pol: 'nmos' | 'pmos', v: number) => slope(pol, v) / drainCurrent(pol === 'pmos' ? fam.pmos : fam.nmos, v, c.supply, NOMINAL_TEMPERATURE_C);
    for (const [pmos, v, edge] of [
      [false, 0.4, 0.54],
      [false, 0.65, 0.6],
      [true, 1.3, 1.19],
      [true, 1.4, 1.19],
      [true, 1.05, 1.14],
    ] as const) {
      const pol = pmos ? 'pmos' : 'nmos';
      const expected = ((reversalAt(r, pmos, v) - DRIVE_MATCH_UREF) / ((pmos ? -3.3 : 6.5) - DRIVE_MATCH_UREF)) * (ratio(pol, v) / ratio(pol, edge));
      expect(driveFactor(r, pmos, v, pmos ? -3.3 : 6.5) / expected).toBeCloseTo(1, 6);
    }
    // Between the edges nothing changes; a PMOS family shallower in the log than the die over-predicts weak gates, so the factor falls there.
    for (const v of [1.15, 1.17]) expect(driveFactor(r, true, v, -3.3)).toBeCloseTo(driveFactor(plain, true, v, -3.3), 9);
    expect(driveFactor(r, true, 1.35, -3.3)).toBeLessThan(driveFactor(plain, true, 1.35, -3.3));
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
